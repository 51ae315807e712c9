// The recent latency window: the last seconds' answers only, one histogram
// per second reused in a ring, beside the since-start histogram that
// Prometheus scrapes.
import test from "ava";
import { LatencyHistogram, LatencyRecorder, RECENT_WINDOW_S, RecentLatency } from "../../src/relay/latency-histogram.js";

function clock(): { now: () => number; set(s: number): void } {
  let t = 0;
  return { now: () => t, set: (s) => (t = s) };
}

test("a burst at start leaves the window once its seconds have passed; the since-start view keeps it", (t) => {
  const c = clock();
  const r = new LatencyRecorder(c.now);
  for (let i = 0; i < 1000; i++) r.record(200_000);
  c.set(RECENT_WINDOW_S + 5);
  for (let i = 0; i < 100; i++) r.record(100);
  const recent = r.recent.snapshot();
  t.is(recent.count, 100);
  t.true(recent.quantile(0.99) <= 112 && recent.quantile(0.99) >= 100, String(recent.quantile(0.99)));
  t.is(recent.maxUs, 100);
  t.is(r.count, 1100);
  t.true(r.quantile(0.99) >= 175_000, "since start, the burst still dominates");
});

test("every second of the window counts, the current one included; older ones do not", (t) => {
  const c = clock();
  const w = new RecentLatency(4, c.now);
  for (let s = 0; s < 10; s++) {
    c.set(s);
    for (let i = 0; i <= s; i++) w.record(1000 * (s + 1));
  }
  // Seconds 6..9 are in the window: 7 + 8 + 9 + 10 samples.
  const h = w.snapshot();
  t.is(h.count, 34);
  t.is(h.maxUs, 10_000);
  t.is(h.sumUs, 7 * 7000 + 8 * 8000 + 9 * 9000 + 10 * 10_000);
  // A quiet spell longer than the window empties it without a record to rotate the slots.
  c.set(20);
  t.is(w.snapshot().count, 0);
});

test("add() sums histograms bucket by bucket", (t) => {
  const a = new LatencyHistogram();
  const b = new LatencyHistogram();
  const both = new LatencyHistogram();
  for (const us of [3, 70, 900, 12_000]) {
    a.record(us);
    both.record(us);
  }
  for (const us of [5, 800, 450_000]) {
    b.record(us);
    both.record(us);
  }
  a.add(b);
  t.deepEqual(a.cumulative([10, 100, 1000, 100_000, 1_000_000]), both.cumulative([10, 100, 1000, 100_000, 1_000_000]));
  t.is(a.quantile(0.5), both.quantile(0.5));
  t.is(a.maxUs, 450_000);
});

test("each value falls in the bucket whose bounds hold it (clz32 below 2^32, log2 above)", (t) => {
  const values: number[] = [];
  for (let v = 1; v <= 1 << 16; v++) values.push(v);
  for (let k = 16; k <= 39; k++) values.push(2 ** k - 1, 2 ** k, 2 ** k + 1, 3 * 2 ** (k - 1));
  const wrong = values.filter((v) => {
    const b = LatencyHistogram.bucketOf(v);
    return !(LatencyHistogram.upperBound(b) >= v && (b === 0 || LatencyHistogram.upperBound(b - 1) < v));
  });
  t.deepEqual(wrong, []);
});
