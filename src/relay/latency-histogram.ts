// A log-linear latency histogram in microseconds: 8 sub-buckets per power of
// two, so any percentile is within 12.5% of the truth, in fixed memory
// whatever the number of samples. The relay keeps two views of it: every
// sample since start (what Prometheus scrapes and rates itself) and the last
// few seconds (what screens show: a burst at start must not pin their p99).
const SUB = 8;
const MAX_POW = 40;

export class LatencyHistogram {
  private readonly counts = new Float64Array(MAX_POW * SUB);
  count = 0;
  sumUs = 0;
  maxUs = 0;

  record(us: number): void {
    const v = Math.max(1, Math.round(us));
    this.addSample(LatencyHistogram.bucketOf(v), v);
  }

  /** One sample already rounded to whole microseconds (at least 1), in its bucket (bucketOf): to find it once for several histograms. */
  addSample(bucket: number, v: number): void {
    this.counts[bucket]!++;
    this.count++;
    this.sumUs += v;
    if (v > this.maxUs) this.maxUs = v;
  }

  /** Adds another histogram's samples to this one. */
  add(other: LatencyHistogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i]! += other.counts[i]!;
    this.count += other.count;
    this.sumUs += other.sumUs;
    if (other.maxUs > this.maxUs) this.maxUs = other.maxUs;
  }

  clear(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sumUs = 0;
    this.maxUs = 0;
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

  static bucketOf(v: number): number {
    // clz32 is exact and cheap below 2^32 us (71 minutes); log2 beyond.
    const pow = v < 0x1_0000_0000 ? 31 - Math.clz32(v) : Math.floor(Math.log2(v));
    if (pow < 3) return v;
    const sub = Math.floor((v - 2 ** pow) / 2 ** (pow - 3));
    return Math.min(pow * SUB + sub, MAX_POW * SUB - 1);
  }

  static upperBound(bucket: number): number {
    if (bucket < SUB) return bucket;
    const pow = Math.floor(bucket / SUB);
    const sub = bucket % SUB;
    return 2 ** pow + (sub + 1) * 2 ** (pow - 3) - 1;
  }
}

/** How many seconds "recent" latency spans, on every screen (live view, iopfctl, dashboard). */
export const RECENT_WINDOW_S = 10;

let coarseNow = 0;
let ticker: NodeJS.Timeout | null = null;

/**
 * Whole seconds from one timer: the recent window needs to know the second
 * of each sample, and reading the clock per answer would cost more than the
 * rest of recording it.
 */
export function coarseSeconds(): number {
  if (ticker === null) {
    ticker = setInterval(() => coarseNow++, 1000);
    ticker.unref();
  }
  return coarseNow;
}

/** The samples of the last windowS seconds: one histogram per second, reused in a ring. */
export class RecentLatency {
  private readonly slots: LatencyHistogram[];
  private readonly slotSecond: number[];

  constructor(
    readonly windowS: number = RECENT_WINDOW_S,
    private readonly clock: () => number = coarseSeconds,
  ) {
    this.slots = Array.from({ length: windowS }, () => new LatencyHistogram());
    this.slotSecond = new Array<number>(windowS).fill(-Infinity);
  }

  record(us: number): void {
    this.slot().record(us);
  }

  /** This second's histogram, emptied first if it last held an older second. */
  slot(): LatencyHistogram {
    const now = this.clock();
    const i = now % this.windowS;
    if (this.slotSecond[i] !== now) {
      this.slots[i]!.clear();
      this.slotSecond[i] = now;
    }
    return this.slots[i]!;
  }

  /** One histogram of the seconds still in the window (the current one, partly over, included). */
  snapshot(): LatencyHistogram {
    const now = this.clock();
    const h = new LatencyHistogram();
    for (let i = 0; i < this.windowS; i++) if (this.slotSecond[i]! > now - this.windowS) h.add(this.slots[i]!);
    return h;
  }
}

/** Since start, and the recent window beside it: what RelayMetrics records each answer into. */
export class LatencyRecorder extends LatencyHistogram {
  readonly recent: RecentLatency;

  constructor(clock?: () => number) {
    super();
    this.recent = new RecentLatency(RECENT_WINDOW_S, clock);
  }

  /** One bucket lookup for both views: this runs once or twice per answer. */
  override record(us: number): void {
    const v = Math.max(1, Math.round(us));
    const bucket = LatencyHistogram.bucketOf(v);
    this.addSample(bucket, v);
    this.recent.slot().addSample(bucket, v);
  }
}
