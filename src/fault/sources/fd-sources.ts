// Fault sources on file descriptors: the kernel's fault fds and the kernel
// emulator's. One FaultPump (one worker thread) watches all of them, and fds
// join and leave while it runs; each fd is a FaultSource of its own, so
// answers go back to the fd the group came from. A source's id is its fd
// number, unique among the fds open at one time.
import { FaultPump, type FdKind, type PumpEvent } from "../../kernel/fault-pump.js";
import { FaultAnswer, FaultRecord, FaultSource, SourceListener, WriteOutcome } from "../fault-source.js";

export interface FdSpec {
  fd: number;
  /** "kernel": an iommufd fault fd or the emulator's kernel-exact file; "stream": the emulator's socket. */
  kind: FdKind;
  description: string;
  /**
   * Answer SUCCESS to the cookies a previous reader may have left before the
   * first read (an inherited or handed-over fd); not for a fault queue this
   * process allocated.
   */
  sweep: boolean;
}

type Delivery = { records: FaultRecord[] } | { failed: Error; answerable: boolean } | { swept: number | null; bound: number };

class FdSource implements FaultSource {
  #listener: SourceListener | null = null;
  /**
   * What the pump handed out before start(): the pump reads from the moment
   * the fd is added, and records read from the kernel must reach the relay.
   */
  #early: Delivery[] = [];
  #closed: Promise<void> | null = null;

  constructor(
    readonly spec: FdSpec,
    private readonly set: FdSourceSet,
  ) {}

  get id(): number {
    return this.spec.fd;
  }

  get description(): string {
    return this.spec.description;
  }

  start(listener: SourceListener): void {
    this.#listener = listener;
    for (const d of this.#early.splice(0)) this.deliver(d);
  }

  deliver(d: Delivery): void {
    const l = this.#listener;
    if (!l) this.#early.push(d);
    else if ("records" in d) l.records(d.records);
    else if ("failed" in d) l.failed(d.failed, d.answerable);
    else l.swept(d.swept, d.bound);
  }

  writeAnswers(answers: FaultAnswer[]): WriteOutcome {
    const result = this.set.pump.answer(this.spec.fd, answers);
    return {
      written: result.written,
      refused: result.rejected.map((r) => ({ cookie: r.answer.cookie, reason: `${r.error.code}: ${r.error.message}` })),
      queued: result.queued,
      gone: result.gone,
    };
  }

  setReadLimit(groups: number): void {
    this.set.pump.setLimit(groups);
  }

  forget(groups: number): void {
    this.set.pump.release(groups);
  }

  /**
   * Stops reading this fd. Records the pump had already read are still
   * delivered before this resolves: they were read from the kernel, so they
   * must reach the relay to be answered. The fd stays open (its owner
   * closes it).
   */
  close(): Promise<void> {
    this.#closed ??= this.set.remove(this);
    return this.#closed;
  }
}

/** The pump and the sources on it. */
export class FdSourceSet {
  readonly #sources = new Map<number, FdSource>();
  readonly #removed = new Map<number, () => void>();
  #delivered: Promise<void> = Promise.resolve();

  private constructor(readonly pump: FaultPump) {}

  /** Starts the pump (with no fd yet). maxHeld bounds what the relay holds, and so what a sweep must cover. */
  static async start(opts: { maxHeld: number }): Promise<FdSourceSet> {
    const pump = new FaultPump({ maxHeld: opts.maxHeld });
    await pump.start();
    const set = new FdSourceSet(pump);
    set.#delivered = set.#deliverAll();
    return set;
  }

  /** The cookies a sweep answers: 1 to this. */
  get sweepBound(): number {
    return this.pump.sweepBound;
  }

  /** Starts reading fd (after its sweep, if asked) and returns its source. */
  add(spec: FdSpec): FaultSource {
    if (this.#sources.has(spec.fd)) throw new Error(`${spec.description}: fd ${spec.fd} is already a fault source of this relay`);
    const source = new FdSource(spec, this);
    this.#sources.set(spec.fd, source);
    this.pump.add(spec.fd, spec.kind, { sweep: spec.sweep });
    return source;
  }

  get size(): number {
    return this.#sources.size;
  }

  /**
   * Lets go of a closed source for good (a queue detached at runtime): its
   * answers must all be written first. Returns those that could not be
   * (a stream that stayed full). The fd is still the owner's to close.
   */
  async release(source: FaultSource): Promise<number> {
    const s = this.#sources.get(source.id);
    if (s !== source) return 0;
    await s.close();
    this.#sources.delete(source.id);
    return this.pump.forget(source.id);
  }

  /** Stops the pump once every source is closed; returns the answers that could not be written. */
  async stop(): Promise<number> {
    await Promise.all([...this.#sources.values()].map((s) => s.close()));
    const unsent = await this.pump.stop();
    await this.#delivered;
    return unsent;
  }

  remove(source: FdSource): Promise<void> {
    const done = new Promise<void>((resolve) => this.#removed.set(source.id, resolve));
    this.pump.remove(source.id);
    return done;
  }

  async #deliverAll(): Promise<void> {
    for await (const ev of this.pump) this.#deliver(ev);
    // The worker is gone: nothing more comes, whatever was asked.
    for (const resolve of this.#removed.values()) resolve();
  }

  #deliver(ev: PumpEvent): void {
    const source = this.#sources.get(ev.fd);
    if (!source) return;
    switch (ev.type) {
      case "records":
        source.deliver({ records: ev.records });
        return;
      case "swept":
        source.deliver({ swept: ev.accepted, bound: ev.bound });
        return;
      case "fd-error":
        // A stream that ended or a fd that was closed takes no answers; a fault fd whose read failed still does.
        source.deliver({ failed: new Error(`${source.description}: ${ev.message}`), answerable: source.spec.kind === "kernel" && ev.errno !== 0 });
        return;
      case "removed":
        // The source stays: answers for the groups it delivered still go to its fd.
        this.#removed.get(ev.fd)?.();
        this.#removed.delete(ev.fd);
        return;
    }
  }
}
