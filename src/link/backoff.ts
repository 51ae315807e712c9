// The one backoff of the project: retry delays that double from min to max,
// with jitter so that many peers retrying together (guests restarting, a
// resync, a reconnect, a keeper restarting its relay) do not do it in step;
// and a sleep that an abort cuts short.

export class Backoff {
  private next: number;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.next = minMs;
  }

  /** The delay before the next attempt; each call doubles the one after. */
  delay(): number {
    const d = this.next;
    this.next = Math.min(this.next * 2, this.maxMs);
    return d / 2 + (Math.random() * d) / 2;
  }

  reset(): void {
    this.next = this.minMs;
  }
}

/** Resolves after ms, or at once when signal aborts. The timer keeps the process alive: waiting is the agent's work. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
