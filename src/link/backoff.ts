// Retry delays that double from min to max, with jitter so that many guests
// restarting together do not knock on their hosts in step, and a sleep that
// stop() can cut short.

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
