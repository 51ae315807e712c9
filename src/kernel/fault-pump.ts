// The fault pump: a worker thread watches fault fds (Node cannot poll them)
// and reads their records into a shared ring; the main thread decodes them
// batch by batch and writes answers in batches. The main thread never makes
// a call that can block: O_NONBLOCK belongs to the open file and is shared
// with every holder of an inherited fd, so nothing here relies on it.
//
// It also bounds what the relay holds (groups read and not yet answered):
// a read never takes that past maxHeld plus one read, so a relay that dies
// leaves no cookie above that bound, and the next reader answers them all
// before its first read (`sweep` on add, sweep.ts).
//
//   const pump = new FaultPump({ maxHeld: 1024 });
//   await pump.start();
//   pump.add(faultFd, "kernel", { sweep: true });
//   pump.setLimit(4096);                              // flow control: hold at most this many
//   for await (const ev of pump) if (ev.type === "records") pump.answer(ev.fd, answersFor(ev.records));
//   // elsewhere: await pump.stop();  the loop then ends after the records already read.
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import * as libc from "./libc.js";
import { errnoName } from "./errno.js";
import { FaultQueue, DEFAULT_RECORDS_PER_READ, type AnswerResult } from "./fault-queue.js";
import {
  CTRL_CHANGE, CTRL_HEAD, CTRL_LIMIT, CTRL_READ, CTRL_RELEASED, CTRL_STOP, CTRL_TAIL, CTRL_WAITING,
  ERRNO_GROUP_TOO_LARGE, KIND_FD_ERROR, KIND_RECORDS, KIND_REMOVED, KIND_SWEPT, SLOT_A, SLOT_B, SLOT_FD, SLOT_KIND,
  ringLayout, slotDataOffset, slotOffset, type RingLayout,
} from "./fault-ring.js";
import type { FdKind } from "./record-reader.js";
import { decodeFaultRecords, FAULT_RECORD_SIZE, type FaultAnswer, type FaultRecord } from "./uapi-structs.js";
import type { PumpCommand, PumpWorkerData } from "./fault-pump-worker.js";

export type { FdKind };

// Atomics.waitAsync is in Node 20's V8 but in TypeScript's lib only from ES2024.
type WaitAsync = (ta: Int32Array, index: number, value: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export type PumpEvent =
  /** Records read from fd: whole groups from a kernel fd (a group larger than a slot spans several events); a stream may split a group anywhere. */
  | { type: "records"; fd: number; records: FaultRecord[] }
  /** The fd failed (poll error, read error, a stream's end, a group too large to read); the pump no longer watches it. */
  | { type: "fd-error"; fd: number; revents: number; errno: number; message: string }
  /** Before its first read, fd's cookies 1..bound were answered SUCCESS; `accepted` of them were outstanding (null: a stream cannot tell). */
  | { type: "swept"; fd: number; accepted: number | null; bound: number }
  /** remove(fd) took effect: nothing more comes from fd. */
  | { type: "removed"; fd: number };

export interface FaultPumpOptions {
  /** The most groups the relay holds read and unanswered; a read may add one read's worth on top (the relay's limits.maxHeld). */
  maxHeld: number;
  /** Ring slots, a power of two; each holds one read(). Default 64. */
  slots?: number;
  /** Records per read(), the in-tree users' 100 by default. */
  recordsPerRead?: number;
  /**
   * The iterator hands out ready batches back to back for at most this long,
   * then yields to the event loop once, so a busy fault source cannot starve
   * timers and I/O. Default 2 ms.
   */
  turnBudgetMs?: number;
}

/** The highest cookie a reader holding at most maxHeld groups can leave outstanding: a sweep answers 1 to this. */
export function sweepBound(maxHeld: number, recordsPerRead = DEFAULT_RECORDS_PER_READ): number {
  return maxHeld + recordsPerRead;
}

export class FaultPump implements AsyncIterable<PumpEvent> {
  readonly #layout: RingLayout;
  readonly #sab: SharedArrayBuffer;
  readonly #ctrl: Int32Array;
  readonly #view: DataView;
  readonly #turnBudgetMs: number;
  readonly #queues = new Map<number, FaultQueue>();
  readonly #heldBound: number;
  #commands: MessagePort | undefined;
  #worker: Worker | undefined;
  #wakeFd = -1;
  #tail = 0;
  #released = 0;
  #exited: Promise<void> = Promise.resolve();
  #running = false;
  #failure: Error | undefined;
  #turnStart = 0;
  #iterating = false;
  // process.exit() terminates workers and waits for them; a worker blocked in
  // poll() inside ffi-rs never returns, so the process would hang for ever.
  // Waking the worker on "exit" lets every exit path, including Node's own on
  // an uncaught exception, end the process.
  readonly #wakeOnExit = (): void => this.#stopWorker();

  constructor(opts: FaultPumpOptions) {
    const recordsPerRead = opts.recordsPerRead ?? DEFAULT_RECORDS_PER_READ;
    this.#layout = ringLayout(opts.slots ?? 64, recordsPerRead, FAULT_RECORD_SIZE);
    this.#heldBound = sweepBound(opts.maxHeld, recordsPerRead);
    this.#sab = new SharedArrayBuffer(this.#layout.totalBytes);
    this.#ctrl = new Int32Array(this.#sab, 0, 16);
    this.#view = new DataView(this.#sab);
    this.#turnBudgetMs = opts.turnBudgetMs ?? 2;
  }

  /** The cookies a sweep answers: 1 to this. */
  get sweepBound(): number {
    return this.#heldBound;
  }

  /** Groups read and not yet released, those in the ring included. */
  get held(): number {
    return (Atomics.load(this.#ctrl, CTRL_READ) - Atomics.load(this.#ctrl, CTRL_RELEASED)) | 0;
  }

  /** The worker has a readable fd and waits for the relay to hold fewer groups (back-pressure). */
  get waitingForRoom(): boolean {
    return Atomics.load(this.#ctrl, CTRL_WAITING) !== 0;
  }

  /** Starts the worker with no fd (add() gives it some) and resolves once it runs. Reads wait for setLimit(). */
  async start(): Promise<void> {
    if (this.#worker) throw new Error("FaultPump.start: already started; stop() it first");
    for (const i of [CTRL_STOP, CTRL_READ, CTRL_RELEASED, CTRL_LIMIT, CTRL_WAITING]) Atomics.store(this.#ctrl, i, 0);
    this.#released = 0;
    this.#failure = undefined;
    this.#wakeFd = libc.eventfd();
    const { port1, port2 } = new MessageChannel();
    this.#commands = port1;
    const data: PumpWorkerData = { sab: this.#sab, layout: this.#layout, wakeFd: this.#wakeFd, commands: port2, heldBound: this.#heldBound };
    const worker = new Worker(new URL("./fault-pump-worker.js", import.meta.url), { workerData: data, transferList: [port2] });
    this.#worker = worker;
    this.#running = true;
    process.once("exit", this.#wakeOnExit);
    this.#exited = new Promise<void>((resolve) => {
      worker.once("exit", (code) => {
        if (code !== 0 && !this.#failure) this.#failure = new Error(`fault pump worker exited with code ${code}`);
        this.#running = false;
        Atomics.notify(this.#ctrl, CTRL_HEAD); // wake an iterator waiting for records
        resolve();
      });
    });
    worker.on("error", (err) => {
      this.#failure = new Error(`fault pump worker failed: ${err.message}`, { cause: err });
    });
    try {
      await new Promise<void>((resolve, reject) => {
        worker.once("message", () => resolve());
        void this.#exited.then(() => reject(this.#failure ?? new Error("fault pump worker exited before it started")));
      });
    } catch (err) {
      this.#worker = undefined;
      process.off("exit", this.#wakeOnExit);
      libc.close(this.#wakeFd);
      this.#wakeFd = -1;
      throw err;
    }
  }

  /**
   * Watches fd (a fault fd or an emulator's, owned by the caller). With
   * sweep, its cookies 1..sweepBound are answered SUCCESS first: the fd may
   * have been read by a reader that is gone (it must be gone: one reader per
   * fault queue).
   */
  add(fd: number, kind: FdKind, opts: { sweep: boolean }): void {
    if (this.#queues.has(fd)) throw new Error(`FaultPump.add: fd ${fd} is already watched`);
    this.#queues.set(fd, new FaultQueue(fd, {
      flushed: (n) => this.release(n),
      gone: () => undefined, // the next answer() reports it to its caller
    }));
    this.#command({ op: "add", fd, kind, sweep: opts.sweep });
  }

  /**
   * Stops reading fd; a "removed" event follows once the worker let go of it
   * (records read before come first). Answers can still be written to it
   * until stop().
   */
  remove(fd: number): void {
    this.#command({ op: "remove", fd });
  }

  /**
   * Forgets a fd removed before (its "removed" event came): no more answers
   * go to it, and the fd number may be added again. Returns the answers that
   * could not be written (a stream that stayed full).
   */
  forget(fd: number): number {
    const q = this.#queues.get(fd);
    if (!q) return 0;
    this.#queues.delete(fd);
    return q.dispose();
  }

  /** The worker reads while fewer than `groups` are held. */
  setLimit(groups: number): void {
    if (Atomics.load(this.#ctrl, CTRL_LIMIT) === groups) return;
    Atomics.store(this.#ctrl, CTRL_LIMIT, groups);
    this.#changed();
  }

  /** Groups no longer held without an answer written through answer(): ended by the kernel, or of a source that is gone. */
  release(groups: number): void {
    if (groups <= 0) return;
    this.#released = (this.#released + groups) | 0;
    Atomics.store(this.#ctrl, CTRL_RELEASED, this.#released);
    this.#changed();
  }

  /**
   * Stops the worker by waking its poll() (never by terminate(): that crashes
   * the process inside an ffi-rs call) and resolves once it exited. Records it
   * had read are still handed out by the iterator, which then ends. Returns
   * the answers that could not be written (a stream that stayed full).
   */
  async stop(): Promise<number> {
    const worker = this.#worker;
    if (!worker) return 0;
    this.#stopWorker();
    await this.#exited;
    process.off("exit", this.#wakeOnExit);
    this.#worker = undefined;
    this.#commands?.close();
    libc.close(this.#wakeFd);
    this.#wakeFd = -1;
    let unsent = 0;
    for (const q of this.#queues.values()) unsent += q.dispose();
    this.#queues.clear();
    return unsent;
  }

  /** Writes answers for groups read from fd, in one write() when the fd takes them all; written and refused ones release their groups. */
  answer(fd: number, answers: readonly FaultAnswer[]): AnswerResult {
    const q = this.#queues.get(fd);
    if (!q) throw new Error(`FaultPump.answer: fd ${fd} is not watched (${[...this.#queues.keys()].join(", ") || "none"})`);
    const result = q.writeAnswers(answers);
    this.release(result.written + result.rejected.length);
    return result;
  }

  /** One consumer at a time; iteration ends after stop() once every read record was handed out. */
  [Symbol.asyncIterator](): AsyncIterator<PumpEvent> {
    if (this.#iterating) throw new Error("FaultPump: already being iterated; a pump has one consumer");
    this.#iterating = true;
    this.#turnStart = performance.now();
    return {
      next: () => this.#next(),
      return: async () => {
        this.#iterating = false;
        return { done: true, value: undefined };
      },
    };
  }

  #command(cmd: PumpCommand): void {
    if (!this.#commands || !this.#running) throw new Error(`FaultPump: cannot ${cmd.op} fd ${cmd.fd}, the pump is not running; start() it first`);
    this.#commands.postMessage(cmd);
    this.#kick();
  }

  /** Tells the worker to stop and wakes it. */
  #stopWorker(): void {
    Atomics.store(this.#ctrl, CTRL_STOP, 1);
    this.#kick();
  }

  /** Something the worker may wait for changed: wake it if it waits. */
  #changed(): void {
    Atomics.add(this.#ctrl, CTRL_CHANGE, 1);
    if (Atomics.load(this.#ctrl, CTRL_WAITING) !== 0) Atomics.notify(this.#ctrl, CTRL_CHANGE);
  }

  /** Wakes the worker from poll() (eventfd), from waiting for ring space, or from waiting for room. */
  #kick(): void {
    if (this.#wakeFd < 0) return;
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    libc.write(this.#wakeFd, one, 8);
    Atomics.add(this.#ctrl, CTRL_CHANGE, 1);
    Atomics.notify(this.#ctrl, CTRL_CHANGE);
    Atomics.notify(this.#ctrl, CTRL_TAIL);
  }

  async #next(): Promise<IteratorResult<PumpEvent>> {
    for (;;) {
      const head = Atomics.load(this.#ctrl, CTRL_HEAD);
      if (head !== this.#tail) {
        if (performance.now() - this.#turnStart > this.#turnBudgetMs) {
          await nextTurn();
          this.#turnStart = performance.now();
        }
        return { done: false, value: this.#take() };
      }
      if (this.#failure) throw this.#failure;
      if (!this.#running) {
        this.#iterating = false;
        return { done: true, value: undefined };
      }
      const wait = waitAsync(this.#ctrl, CTRL_HEAD, head);
      if (wait.async) {
        await wait.value;
        this.#turnStart = performance.now(); // woken from the event loop: a fresh turn
      }
    }
  }

  /** Decodes the slot at TAIL and frees it. */
  #take(): PumpEvent {
    const base = slotOffset(this.#layout, this.#tail);
    const words = new Int32Array(this.#sab, base, 4);
    const fd = words[SLOT_FD]!;
    const a = words[SLOT_A]!;
    const b = words[SLOT_B]!;
    let ev: PumpEvent;
    switch (words[SLOT_KIND]) {
      case KIND_RECORDS:
        ev = { type: "records", fd, records: decodeFaultRecords(this.#view, slotDataOffset(this.#layout, this.#tail), a / FAULT_RECORD_SIZE) };
        break;
      case KIND_SWEPT:
        ev = { type: "swept", fd, accepted: a < 0 ? null : a, bound: b };
        break;
      case KIND_REMOVED:
        ev = { type: "removed", fd };
        break;
      case KIND_FD_ERROR:
        ev = fdError(fd, a, b, this.#heldBound);
        break;
      default:
        throw new Error(`fault pump: slot ${this.#tail} holds kind ${words[SLOT_KIND]}, which no worker writes: the ring is corrupt`);
    }
    this.#tail = (this.#tail + 1) | 0;
    Atomics.store(this.#ctrl, CTRL_TAIL, this.#tail);
    Atomics.notify(this.#ctrl, CTRL_TAIL);
    return ev;
  }
}

function fdError(fd: number, revents: number, errno: number, heldBound: number): PumpEvent {
  let message: string;
  if (errno === ERRNO_GROUP_TOO_LARGE) {
    message = `fault fd ${fd}: its first waiting group has more than ${heldBound} records, the most one read may take (limits.maxHeld plus one read); ` +
      "every device on this fault queue waits until it is detached: raise limits.maxHeld";
  } else if (errno !== 0) {
    message = `fault fd ${fd}: failed with ${errnoName(errno)}; the pump stopped watching it`;
  } else if (revents & libc.POLLIN) {
    message = `fault fd ${fd}: the stream ended (the emulator at its other end went away); the pump stopped watching it`;
  } else {
    const bits = [[libc.POLLERR, "POLLERR"], [libc.POLLHUP, "POLLHUP"], [libc.POLLNVAL, "POLLNVAL"]] as const;
    const names = bits.filter(([bit]) => revents & bit).map(([, n]) => n).join("|");
    message = `fault fd ${fd}: poll reported ${names} (${names.includes("NVAL") ? "the fd was closed" : "the source went away"}); the pump stopped watching it`;
  }
  return { type: "fd-error", fd, revents, errno, message };
}
