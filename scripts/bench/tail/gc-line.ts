// The line gc-probe.ts prints per collection, and its parser.
import type { Child } from "../child.js";

export const GC_LINE_PREFIX = "iopf-bench-gc ";

/** One collection's pause on the main thread, CLOCK_MONOTONIC nanoseconds. */
export interface GcPause {
  startNs: number;
  endNs: number;
  major: boolean;
}

/** Collects the child's collections from now on. */
export function followGc(child: Child): GcPause[] {
  const pauses: GcPause[] = [];
  child.follow((line) => {
    if (!line.startsWith(GC_LINE_PREFIX)) return;
    const [start, duration, major] = line.slice(GC_LINE_PREFIX.length).split(" ").map(Number);
    if (Number.isFinite(start) && Number.isFinite(duration)) pauses.push({ startNs: start!, endNs: start! + duration!, major: major === 1 });
  });
  return pauses;
}
