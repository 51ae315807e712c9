// The fault pump: a worker thread watches fault fds (Node cannot poll them)
// and reads their records into a shared ring; the main thread decodes them
// batch by batch and writes answers in batches. The main thread never makes
// a call that can block: O_NONBLOCK belongs to the open file and is shared
// with every holder of an inherited fd, so nothing here relies on it.
//
//   const pump = new FaultPump();
//   await pump.start([faultFd], { journal: { path, fds: [faultFd] } });  // the journal is optional
//   for await (const ev of pump) if (ev.type === "records") pump.answer(ev.fd, answersFor(ev.records));
//   // elsewhere: await pump.stop();  the loop then ends after the records already read.
import { Worker } from "node:worker_threads";
import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import * as libc from "./libc.js";
import { EINVAL, errnoName } from "./errno.js";
import { FaultQueue, DEFAULT_RECORDS_PER_READ, type AnswerResult } from "./fault-queue.js";
import {
  CTRL_HEAD, CTRL_PAUSE, CTRL_PAUSED, CTRL_STOP, CTRL_TAIL, PAUSED_FOR_GOOD, KIND_RECORDS, SLOT_BYTES_OR_REVENTS, SLOT_ERRNO, SLOT_FD, SLOT_KIND,
  ringLayout, slotDataOffset, slotOffset, type RingLayout,
} from "./fault-ring.js";
import { decodeFaultRecords, FAULT_RECORD_SIZE, type FaultAnswer, type FaultRecord } from "./uapi-structs.js";
import type { PumpWorkerData } from "./fault-pump-worker.js";

// Atomics.waitAsync is in Node 20's V8 but in TypeScript's lib only from ES2024.
type WaitAsync = (ta: Int32Array, index: number, value: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export type PumpEvent =
  /** Records read from fd in one read(): whole groups from the kernel; a stream source may split a group across events. */
  | { type: "records"; fd: number; records: FaultRecord[] }
  /** The fd reported POLLERR/POLLHUP/POLLNVAL or a read failed; the pump no longer watches it. */
  | { type: "fd-error"; fd: number; revents: number; errno: number; message: string };

export interface FaultPumpOptions {
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

const PAUSE_ACK_TIMEOUT_MS = 100;

export interface PumpStartOptions {
  /**
   * Append every read() of these fds to the file at path, as a RAW record,
   * before its records are handed out (src/kernel/read-journal.ts). The file
   * must exist; the worker opens it with O_APPEND.
   */
  journal?: { path: string; fds: readonly number[] };
  /** Per fd, bytes a previous reader read and never handed out (from the journal): handed out first. */
  carry?: ReadonlyMap<number, Uint8Array>;
}

export class FaultPump implements AsyncIterable<PumpEvent> {
  readonly #layout: RingLayout;
  readonly #sab: SharedArrayBuffer;
  readonly #ctrl: Int32Array;
  readonly #view: DataView;
  readonly #turnBudgetMs: number;
  readonly #queues = new Map<number, FaultQueue>();
  #worker: Worker | undefined;
  #wakeFd = -1;
  #tail = 0;
  #exited: Promise<void> = Promise.resolve();
  #running = false;
  #failure: Error | undefined;
  #turnStart = 0;
  #iterating = false;
  #pauseGeneration = 0;
  // process.exit() terminates workers and waits for them; a worker blocked in
  // poll() inside ffi-rs never returns, so the process would hang for ever.
  // Waking the worker on "exit" lets every exit path, including Node's own on
  // an uncaught exception, end the process.
  readonly #wakeOnExit = (): void => this.#wake();

  constructor(opts: FaultPumpOptions = {}) {
    this.#layout = ringLayout(opts.slots ?? 64, opts.recordsPerRead ?? DEFAULT_RECORDS_PER_READ, FAULT_RECORD_SIZE);
    this.#sab = new SharedArrayBuffer(this.#layout.totalBytes);
    this.#ctrl = new Int32Array(this.#sab, 0, 16);
    this.#view = new DataView(this.#sab);
    this.#turnBudgetMs = opts.turnBudgetMs ?? 2;
  }

  /** Starts watching fds (fault fds or emulator sockets, owned by the caller) and resolves once the worker runs. */
  async start(fds: readonly number[], opts: PumpStartOptions = {}): Promise<void> {
    if (this.#worker) throw new Error("FaultPump.start: already started; stop() it first");
    Atomics.store(this.#ctrl, CTRL_STOP, 0);
    Atomics.store(this.#ctrl, CTRL_PAUSE, 0);
    Atomics.store(this.#ctrl, CTRL_PAUSED, 0);
    this.#failure = undefined;
    for (const fd of fds) this.#queues.set(fd, new FaultQueue(fd, this.#layout.recordsPerSlot));
    this.#wakeFd = libc.eventfd();
    const data: PumpWorkerData = {
      sab: this.#sab, layout: this.#layout, wakeFd: this.#wakeFd, fds: [...fds],
      journal: opts.journal ? { path: opts.journal.path, fds: [...opts.journal.fds] } : null,
      carry: [...(opts.carry ?? new Map<number, Uint8Array>())],
    };
    const worker = new Worker(new URL("./fault-pump-worker.js", import.meta.url), { workerData: data });
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
      this.#queues.clear();
      throw err;
    }
  }

  /**
   * Stops the worker by waking its poll() (never by terminate(): that crashes
   * the process inside an ffi-rs call) and resolves once it exited. Records it
   * had read are still handed out by the iterator, which then ends.
   */
  async stop(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    this.#wake();
    await this.#exited;
    process.off("exit", this.#wakeOnExit);
    this.#worker = undefined;
    libc.close(this.#wakeFd);
    this.#wakeFd = -1;
    for (const q of this.#queues.values()) q.dispose();
  }

  /**
   * Returns once the worker appends nothing to the journal and has closed
   * it: it finished any read in progress (journaled and published it) and
   * waits. resume() lets it reopen the journal's path (renamed over by a
   * rewrite) and read on. This blocks the calling thread for a thread
   * wake-up (0.2-0.6 ms median on 2 busy cores): the worker acks between two reads, from poll() (the eventfd wakes it) or
   * from waiting for ring space (notified), and never waits for this thread
   * meanwhile. Waiting here rather than on the event loop keeps the pause as
   * short as the caller's rewrite. Throws when no ack came within 100 ms.
   */
  pause(): void {
    if (!this.#worker || !this.#running) return;
    const generation = (this.#pauseGeneration = (this.#pauseGeneration % 0x7fffffff) + 1);
    Atomics.store(this.#ctrl, CTRL_PAUSE, generation);
    this.#kick();
    const deadline = performance.now() + PAUSE_ACK_TIMEOUT_MS;
    for (;;) {
      const acked = Atomics.load(this.#ctrl, CTRL_PAUSED);
      if (acked === generation || acked === PAUSED_FOR_GOOD) return;
      const left = deadline - performance.now();
      if (left <= 0) {
        this.resume();
        throw new Error(`FaultPump.pause: expected the worker to ack within ${PAUSE_ACK_TIMEOUT_MS} ms, got no ack (it is stuck in a read or an append); the journal was not paused, try again later`);
      }
      Atomics.wait(this.#ctrl, CTRL_PAUSED, acked, left);
    }
  }

  resume(): void {
    Atomics.store(this.#ctrl, CTRL_PAUSE, 0);
    Atomics.notify(this.#ctrl, CTRL_PAUSE);
  }

  /** Tells the worker to stop and wakes it. */
  #wake(): void {
    Atomics.store(this.#ctrl, CTRL_STOP, 1);
    this.#kick();
  }

  /** Wakes the worker from poll() (eventfd), from waiting for ring space, or from a pause. */
  #kick(): void {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    libc.write(this.#wakeFd, one, 8);
    Atomics.notify(this.#ctrl, CTRL_TAIL);
    Atomics.notify(this.#ctrl, CTRL_PAUSE);
  }

  /** Writes answers for groups read from fd, in one write() when the fd takes them all. */
  answer(fd: number, answers: readonly FaultAnswer[]): AnswerResult {
    const q = this.#queues.get(fd);
    if (!q) throw new Error(`FaultPump.answer: fd ${fd} is not one the pump was started with (${[...this.#queues.keys()].join(", ")})`);
    return q.writeAnswers(answers);
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
    const ev: PumpEvent = words[SLOT_KIND] === KIND_RECORDS
      ? { type: "records", fd, records: decodeFaultRecords(this.#view, slotDataOffset(this.#layout, this.#tail), words[SLOT_BYTES_OR_REVENTS]! / FAULT_RECORD_SIZE) }
      : fdError(fd, words[SLOT_BYTES_OR_REVENTS]!, words[SLOT_ERRNO]!, this.#layout.recordsPerSlot);
    this.#tail = (this.#tail + 1) | 0;
    Atomics.store(this.#ctrl, CTRL_TAIL, this.#tail);
    Atomics.notify(this.#ctrl, CTRL_TAIL);
    return ev;
  }
}

function fdError(fd: number, revents: number, errno: number, recordsPerRead: number): PumpEvent {
  let message: string;
  if (errno === EINVAL) {
    message = `fault fd ${fd}: a waiting group does not fit in ${recordsPerRead} records; restart the pump with a larger recordsPerRead`;
  } else if (errno !== 0) {
    message = `fault fd ${fd}: read failed with ${errnoName(errno)}; the pump stopped watching it`;
  } else {
    const bits = [[libc.POLLERR, "POLLERR"], [libc.POLLHUP, "POLLHUP"], [libc.POLLNVAL, "POLLNVAL"]] as const;
    const names = bits.filter(([b]) => revents & b).map(([, n]) => n).join("|");
    message = `fault fd ${fd}: poll reported ${names} (${names.includes("NVAL") ? "the fd was closed" : "the source went away"}); the pump stopped watching it`;
  }
  return { type: "fd-error", fd, revents, errno, message };
}
