// Memory under a flood: samples the process's RSS while an action runs, so a
// test can assert a stated bound on growth. The hostile guest runs in the same
// process as the relay, so the figure includes the flood's own buffers: the
// bound is an upper bound on what the relay may hold.

export interface MemoryFigure {
  baselineMb: number;
  peakMb: number;
  growthMb: number;
  heapAfterMb: number;
}

const mb = (bytes: number): number => Math.round((bytes / (1024 * 1024)) * 10) / 10;

export async function measureRss<T>(action: () => Promise<T>): Promise<{ result: T; memory: MemoryFigure }> {
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 5);
  try {
    const result = await action();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, memory: { baselineMb: mb(baseline), peakMb: mb(peak), growthMb: mb(peak - baseline), heapAfterMb: mb(process.memoryUsage().heapUsed) } };
  } finally {
    clearInterval(sampler);
  }
}
