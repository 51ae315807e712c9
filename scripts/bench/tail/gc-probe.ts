// Loaded into the relay and the agent with `node --import` by the tail
// section: prints every garbage collection of the main thread as one line,
// its start on CLOCK_MONOTONIC (the kernel emulator's and perf's clock) and
// its pause, so that each slow group can be put beside the collections that
// ran while it waited. V8's --trace-gc stamps whole milliseconds since the
// isolate started, too coarse for a 1 ms tail and on no clock the others use.
import { performance, PerformanceObserver, constants } from "node:perf_hooks";
import { GC_LINE_PREFIX } from "./gc-line.js";

// performance.now() counts from timeOrigin on the monotonic clock that process.hrtime reads.
const originNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;

new PerformanceObserver((list) => {
  let lines = "";
  for (const e of list.getEntries()) {
    const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
    const major = kind === constants.NODE_PERFORMANCE_GC_MAJOR ? 1 : 0;
    lines += `${GC_LINE_PREFIX}${Math.round(originNs + e.startTime * 1e6)} ${Math.round(e.duration * 1e6)} ${major}\n`;
  }
  process.stderr.write(lines);
}).observe({ entryTypes: ["gc"] });
