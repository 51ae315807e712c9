// Fault sources on file descriptors: the kernel's fault fds and the kernel
// emulator's socket. One FaultPump (one worker thread) watches all of them;
// each fd is a FaultSource of its own, so answers go back to the fd the
// group came from. A source's id is its fd number: the journal keys groups
// by (fd, cookie), and the keeper hands a restarted relay the same fds at
// the same numbers.
import { FaultPump, type PumpStartOptions } from "../../kernel/fault-pump.js";
import { FaultRecord, FaultSource, ResponseEntry, WriteOutcome } from "../fault-source.js";

type Delivery = { records: FaultRecord[] } | { error: Error };

class FdSource implements FaultSource {
  #onRecords: ((records: FaultRecord[]) => void) | null = null;
  #onError: ((err: Error) => void) | null = null;
  /**
   * What the pump handed out before start(): the pump reads from the moment
   * it starts, and a restarted relay's first reads (a backlog) come before
   * the core took the source. Records read from the kernel must reach it.
   */
  #early: Delivery[] = [];

  constructor(
    readonly id: number,
    readonly fd: number,
    readonly description: string,
    private readonly pump: FaultPump,
    private readonly release: () => Promise<void>,
  ) {}

  start(onRecords: (records: FaultRecord[]) => void, onError: (err: Error) => void): void {
    this.#onRecords = onRecords;
    this.#onError = onError;
    for (const d of this.#early.splice(0)) this.deliver(d);
  }

  deliver(d: Delivery): void {
    if (!this.#onRecords || !this.#onError) this.#early.push(d);
    else if ("records" in d) this.#onRecords(d.records);
    else this.#onError(d.error);
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
  /** The fd by default; with a journal it must be the fd. */
  id?: number;
  fd: number;
  description: string;
}

export interface FdSources {
  sources: FaultSource[];
  /** Pauses the pump's journal appends (see FaultPump.pause); returns the function that resumes them. */
  pauseReads(): () => void;
}

/** startFdSources for callers that journal nothing. */
export async function startFdSources(specs: FdSpec[]): Promise<FaultSource[]> {
  return (await openFdSources(specs)).sources;
}

/**
 * Starts one pump over all the fds and returns a FaultSource per fd. The pump
 * stops when the last source is closed; the fds stay open (their owner, the
 * keeper or the caller, closes them).
 */
export async function openFdSources(specs: FdSpec[], opts: PumpStartOptions = {}): Promise<FdSources> {
  const misnamed = specs.find((s) => s.id !== undefined && s.id !== s.fd);
  if (opts.journal && misnamed) {
    throw new Error(`fault source ${misnamed.description}: expected its id to be its fd ${misnamed.fd} (the journal's key), got ${misnamed.id}; leave the id out`);
  }
  const pump = new FaultPump();
  await pump.start(specs.map((s) => s.fd), opts);
  let open = specs.length;
  let stopping: Promise<void> | null = null;
  const sources = new Map<number, FdSource>();
  const delivered = (async () => {
    for await (const ev of pump) {
      const source = sources.get(ev.fd);
      if (!source) continue;
      if (ev.type === "records") source.deliver({ records: ev.records });
      else source.deliver({ error: new Error(`${source.description}: ${ev.message} (revents 0x${ev.revents.toString(16)}, errno ${ev.errno}); the fd is no longer watched`) });
    }
  })();
  const release = (): Promise<void> => {
    open--;
    if (open > 0) return Promise.resolve();
    stopping ??= pump.stop().then(() => delivered);
    return stopping;
  };
  for (const s of specs) sources.set(s.fd, new FdSource(s.id ?? s.fd, s.fd, s.description, pump, release));
  return {
    sources: [...sources.values()],
    pauseReads: () => {
      pump.pause();
      return () => pump.resume();
    },
  };
}
