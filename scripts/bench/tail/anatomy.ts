// What the slowest groups' time was made of: each group's wait (from its
// delivery to its answer, on the emulator's clock) is cut into 5 us bins, and
// each bin takes the first of these states that holds at that moment, so no
// time counts twice: a collection in the relay or the agent (the main thread
// is paused), a thread of the path waiting for a core (woken, not running),
// a thread of the path running, or none of them (the path idle, waiting for
// nothing of its own: the bytes in flight between processes, a timer).
import type { SlowAnswer } from "../../../src/fault/emulator/kernel-emulator.js";

export interface Interval {
  startNs: number;
  endNs: number;
}

export interface State {
  name: string;
  intervals: Interval[];
}

export interface Anatomy {
  groups: number;
  /** Sum of the groups' latencies, ns. */
  totalNs: number;
  /** Share of totalNs in each state, in the order given, and "idle" last. */
  shares: { name: string; share: number }[];
  /** Share of the groups whose wait overlaps at least one pause of a collection in the relay or the agent. */
  withGc: number;
}

const BIN_NS = 5000;

function overlapping(sorted: Interval[], from: number, to: number): Interval[] {
  // Intervals are sorted by start and may overlap each other; a binary search finds the first that can end after `from`.
  let lo = 0, hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.startNs < from - 1e9) lo = mid + 1; // nothing a thread does lasts over a second in one stretch
    else hi = mid;
  }
  const out: Interval[] = [];
  for (let i = lo; i < sorted.length && sorted[i]!.startNs < to; i++) if (sorted[i]!.endNs > from) out.push(sorted[i]!);
  return out;
}

/** states: highest priority first; gcStates: the names whose overlap counts a group as "with a collection". */
export function anatomy(groups: SlowAnswer[], states: State[], gcStates: string[]): Anatomy {
  const sorted = states.map((s) => ({ name: s.name, intervals: [...s.intervals].sort((a, b) => a.startNs - b.startNs) }));
  const binsByState = new Array<number>(states.length + 1).fill(0);
  let totalBins = 0, withGc = 0, totalNs = 0;
  for (const g of groups) {
    const from = g.deliveredNs, to = g.deliveredNs + g.latencyNs;
    totalNs += g.latencyNs;
    const n = Math.max(1, Math.ceil(g.latencyNs / BIN_NS));
    const bins = new Int16Array(n).fill(states.length); // idle unless painted
    let gc = false;
    // Lowest priority first, so a higher one paints over it.
    for (let s = sorted.length - 1; s >= 0; s--) {
      for (const iv of overlapping(sorted[s]!.intervals, from, to)) {
        if (gcStates.includes(sorted[s]!.name)) gc = true;
        const a = Math.max(0, Math.floor((iv.startNs - from) / BIN_NS)), b = Math.min(n, Math.ceil((iv.endNs - from) / BIN_NS));
        bins.fill(s, a, b);
      }
    }
    for (const b of bins) binsByState[b]!++;
    totalBins += n;
    if (gc) withGc++;
  }
  return {
    groups: groups.length,
    totalNs,
    shares: [...states.map((s) => s.name), "idle"].map((name, i) => ({ name, share: totalBins > 0 ? binsByState[i]! / totalBins : NaN })),
    withGc: groups.length > 0 ? withGc / groups.length : NaN,
  };
}
