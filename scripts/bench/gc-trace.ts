// The live JS heap after each full collection, from node --trace-gc lines:
// RSS swings as V8 grows and shrinks its heap, so a flat RSS trend alone
// cannot tell a leak from heap sizing; the heap left after a mark-compact can.
import type { Child } from "./child.js";

// "[pid:0x..]  57293 ms: Mark-Compact 61.2 (95.6) -> 15.4 (90.9) MB, ..." (V8's MB are MiB)
const MARK_COMPACT = /: Mark-Compact [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/;

export interface HeapSample {
  seconds: number;
  liveMiB: number;
}

/** Collects, from now on, the live heap after every full collection the child reports, timed from t0 (Date.now()). */
export function followLiveHeap(child: Child, t0: number): HeapSample[] {
  const samples: HeapSample[] = [];
  child.follow((line) => {
    const m = MARK_COMPACT.exec(line);
    if (m) samples.push({ seconds: (Date.now() - t0) / 1000, liveMiB: Number(m[1]) });
  });
  return samples;
}
