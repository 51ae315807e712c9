// The benchmark's own statistics: nearest-rank quantiles, the RSS trend, and
// ratios that never print Infinity.
import test from "ava";
import { median, quantile, ratio, slope } from "../../scripts/bench/statistics.js";

test("quantile takes the nearest rank of the sorted samples", (t) => {
  const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  t.is(quantile(samples, 0.5), 5);
  t.is(quantile(samples, 0.99), 10);
  t.is(quantile(samples, 0), 1);
  t.is(quantile(samples, 1), 10);
  t.is(median([3, 1, 2]), 2);
  t.deepEqual(samples, [5, 1, 4, 2, 3, 10, 9, 8, 7, 6], "the input is not sorted in place");
});

test("quantile of nothing is NaN, and q outside 0..1 is refused", (t) => {
  t.true(Number.isNaN(quantile([], 0.5)));
  t.throws(() => quantile([1], 1.5), { message: /expected q in 0\.\.1, got 1\.5/ });
});

test("slope is the least-squares trend, 0 when flat or undefined", (t) => {
  t.is(slope([{ x: 0, y: 1 }, { x: 1, y: 3 }, { x: 2, y: 5 }]), 2);
  t.is(slope([{ x: 0, y: 7 }, { x: 1, y: 7 }, { x: 2, y: 7 }]), 0);
  t.is(slope([{ x: 1, y: 1 }]), 0);
  t.is(slope([{ x: 1, y: 1 }, { x: 1, y: 2 }]), 0);
  const noisy = Array.from({ length: 100 }, (_, i) => ({ x: i, y: 50 + 0.5 * i + (i % 2 ? 1 : -1) }));
  t.true(Math.abs(slope(noisy) - 0.5) < 0.01);
});

test("ratio is null without a usable baseline", (t) => {
  t.is(ratio(10, 4), 2.5);
  t.is(ratio(1, 0), null);
  t.is(ratio(null, 3), null);
  t.is(ratio(3, NaN), null);
});
