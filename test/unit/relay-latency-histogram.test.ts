// The relay's latency histogram: every quantile within one bucket (12.5%)
// above the truth, from a microsecond to hours.
import test from "ava";
import fc from "fast-check";
import { LatencyHistogram } from "../../src/relay/latency-histogram.js";

test("a sample's bucket bounds it from above within 12.5%, small and large", (t) => {
  fc.assert(fc.property(fc.oneof(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 2 ** 40 - 1 })), (v) => {
    const h = new LatencyHistogram();
    h.record(v);
    h.record(2 ** 41); // above every bucket: the median is v's bucket bound, not the maximum
    const bound = h.quantile(0.5);
    return bound >= v && bound <= v + Math.max(0, v / 8);
  }), { numRuns: 5000 });
  t.pass();
});

test("quantiles follow the samples' order", (t) => {
  // Values recorded by hand, not time measured.
  const h = new LatencyHistogram();
  for (let v = 1; v <= 1000; v++) h.record(v);
  t.is(h.quantile(1), 1000);
  const median = h.quantile(0.5), q99 = h.quantile(0.99);
  t.true(median >= 500 && median <= 500 * 1.125, String(median));
  t.true(q99 >= 990 && q99 <= 1000, String(q99));
});
