// SIGTERM and SIGINT, handled from a program's first moment. Node's default
// for both is to die at once: a stop asked for while the relay starts (it
// may have read groups already) or while the keeper opens what it holds
// would abandon them. A stop asked for before the program can stop in order
// is carried out as soon as it can.
export class StopSignals {
  private stop: ((cause: string) => void) | null = null;
  private asked: string | null = null;

  constructor(signals: readonly NodeJS.Signals[] = ["SIGTERM", "SIGINT"]) {
    for (const signal of signals) process.on(signal, () => this.ask(signal));
  }

  /** A stop for cause (a signal's name, or what else ended the program's purpose). */
  ask(cause: string): void {
    if (this.stop) this.stop(cause);
    else this.asked ??= cause;
  }

  /** From now on every stop goes to stop; the first one asked for before is carried out now. */
  handle(stop: (cause: string) => void): void {
    this.stop = stop;
    if (this.asked !== null) stop(this.asked);
  }
}
