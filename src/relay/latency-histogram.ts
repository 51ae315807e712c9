// A log-linear latency histogram in microseconds: 8 sub-buckets per power of
// two, so any percentile is within 12.5% of the truth, in fixed memory
// whatever the number of samples.
const SUB = 8;
const MAX_POW = 40;

export class LatencyHistogram {
  private readonly counts = new Float64Array(MAX_POW * SUB);
  count = 0;
  sumUs = 0;
  maxUs = 0;

  record(us: number): void {
    const v = Math.max(1, Math.round(us));
    this.counts[LatencyHistogram.bucketOf(v)]!++;
    this.count++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
  }

  /** The upper bound of the bucket holding the q-th quantile (0 < q <= 1), in microseconds. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(LatencyHistogram.upperBound(i), this.maxUs);
    }
    return this.maxUs;
  }

  /** Cumulative counts at the given bounds (microseconds), for Prometheus-style export. */
  cumulative(boundsUs: number[]): number[] {
    return boundsUs.map((b) => {
      let n = 0;
      for (let i = 0; i < this.counts.length && LatencyHistogram.upperBound(i) <= b; i++) n += this.counts[i]!;
      return n;
    });
  }

  private static bucketOf(v: number): number {
    const pow = Math.floor(Math.log2(v));
    if (pow < 3) return v;
    const sub = Math.floor((v - 2 ** pow) / 2 ** (pow - 3));
    return Math.min(pow * SUB + sub, MAX_POW * SUB - 1);
  }

  private static upperBound(bucket: number): number {
    if (bucket < SUB) return bucket;
    const pow = Math.floor(bucket / SUB);
    const sub = bucket % SUB;
    return 2 ** pow + (sub + 1) * 2 ** (pow - 3) - 1;
  }
}
