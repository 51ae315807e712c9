// The few statistics the benchmark computes itself (the emulator computes
// the latency percentiles): quantiles of samples, the trend of a series over
// time, and ratios that stay readable when a baseline is zero.

/** The q-quantile (0..1) of the samples by the nearest-rank method; NaN for none. */
export function quantile(samples: readonly number[], q: number): number {
  if (samples.length === 0) return NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile: expected q in 0..1, got ${q}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1]!;
}

export function median(samples: readonly number[]): number {
  return quantile(samples, 0.5);
}

/** Least-squares slope of y over x (units of y per unit of x); 0 for fewer than two distinct x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0, sy = 0;
  for (const p of points) {
    sx += p.x;
    sy += p.y;
  }
  const mx = sx / n, my = sy / n;
  let sxy = 0, sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  return sxx === 0 ? 0 : sxy / sxx;
}

/** value / baseline, or null when the baseline is zero or either is missing: a table shows "n/a", never Infinity. */
export function ratio(value: number | null, baseline: number | null): number | null {
  if (value === null || baseline === null || !Number.isFinite(value) || !Number.isFinite(baseline) || baseline === 0) return null;
  return value / baseline;
}
