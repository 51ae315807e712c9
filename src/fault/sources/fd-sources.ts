// Fault sources on file descriptors: the kernel's fault fds and the kernel
// emulator's socket. One FaultPump (one worker thread) watches all of them;
// each fd is a FaultSource of its own, so answers go back to the fd the
// group came from.
import { FaultPump } from "../../kernel/fault-pump.js";
import { FaultRecord, FaultSource, ResponseEntry, WriteOutcome } from "../fault-source.js";

class FdSource implements FaultSource {
  onRecords: ((records: FaultRecord[]) => void) | null = null;
  onError: ((err: Error) => void) | null = null;

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly description: string,
    private readonly pump: FaultPump,
    private readonly release: () => Promise<void>,
  ) {}

  start(onRecords: (records: FaultRecord[]) => void, onError: (err: Error) => void): void {
    this.onRecords = onRecords;
    this.onError = onError;
  }

  writeAnswers(answers: ResponseEntry[]): WriteOutcome {
    const result = this.pump.answer(this.fd, answers);
    return { refused: result.rejected.map((r) => ({ cookie: r.answer.cookie, reason: `${r.error.code}: ${r.error.message}` })) };
  }

  /**
   * Stops reading. Records the pump had already read are still delivered
   * before this resolves: they were read from the kernel, so they must reach
   * the relay to be answered.
   */
  close(): Promise<void> {
    return this.release();
  }
}

export interface FdSpec {
  id: number;
  fd: number;
  description: string;
}

/**
 * Starts one pump over all the fds and returns a FaultSource per fd. The pump
 * stops when the last source is closed; the fds stay open (their owner, the
 * keeper or the caller, closes them).
 */
export async function startFdSources(specs: FdSpec[]): Promise<FaultSource[]> {
  const pump = new FaultPump();
  await pump.start(specs.map((s) => s.fd));
  let open = specs.length;
  let stopping: Promise<void> | null = null;
  const sources = new Map<number, FdSource>();
  const delivered = (async () => {
    for await (const ev of pump) {
      const source = sources.get(ev.fd);
      if (!source) continue;
      if (ev.type === "records") source.onRecords?.(ev.records);
      else source.onError?.(new Error(`${source.description}: ${ev.message} (revents 0x${ev.revents.toString(16)}, errno ${ev.errno}); the fd is no longer watched`));
    }
  })();
  const release = (): Promise<void> => {
    open--;
    if (open > 0) return Promise.resolve();
    stopping ??= pump.stop().then(() => delivered);
    return stopping;
  };
  for (const s of specs) sources.set(s.fd, new FdSource(s.id, s.fd, s.description, pump, release));
  return [...sources.values()];
}
