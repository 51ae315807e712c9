// One fault fd, read and answered from the calling thread without ever
// blocking: reads return at once (the kernel's fault fd ignores O_NONBLOCK
// and returns 0 when empty; the emulator's socket is O_NONBLOCK), and the
// kernel's write() never blocks. Each read() takes up to `recordsPerRead`
// records in one syscall and each writeAnswers() sends a whole batch in one
// write(), because every FFI call costs microseconds.
//
// What happened to each answer is part of the result: written (the fd has
// it), queued (a full stream: sent later, `flushed` says when), refused (the
// kernel's EINVAL), or the fd is gone (a stream whose other end closed):
// nothing counts as answered before its bytes are written.
import * as libc from "./libc.js";
import { EAGAIN, EINTR, EINVAL, SyscallError } from "./errno.js";
import { RecordReader, type FdKind } from "./record-reader.js";
import { decodeFaultRecords, encodePageResponses, FAULT_RECORD_SIZE, PAGE_RESPONSE_SIZE, type FaultAnswer, type FaultRecord } from "./uapi-structs.js";

export const DEFAULT_RECORDS_PER_READ = 100;

export interface RejectedAnswer {
  /** Index in the answers passed to writeAnswers. */
  index: number;
  answer: FaultAnswer;
  error: SyscallError;
}

export interface AnswerResult {
  /** Answers the fd took. */
  written: number;
  /** Answers waiting for a full stream socket to drain; `flushed` reports them once written. */
  queued: number;
  /**
   * Answers the kernel refused. The kernel stops a write at the first bad
   * answer and returns the bytes before it; the queue writes again from that
   * answer, which the kernel then refuses with its errno (EINVAL: unknown or
   * already answered cookie, or a code other than 0/1), skips it, and goes on.
   */
  rejected: RejectedAnswer[];
  /** The fd is gone (EPIPE, ECONNRESET, EBADF...): these answers and every later one go nowhere. */
  gone: SyscallError | null;
}

export interface FaultQueueOptions {
  kind?: FdKind;
  recordsPerRead?: number;
  /** Queued answers were written, in order (from a timer). */
  flushed?: (count: number) => void;
  /** Queued answers could not be written: the fd went away (from a timer). */
  gone?: (err: SyscallError, unsent: number) => void;
}

// A full stream socket is retried this often; the emulator drains it within microseconds.
const STREAM_RETRY_MS = 1;

export class FaultQueue {
  readonly #reader: RecordReader;
  readonly #readBuf: Buffer;
  readonly #readView: DataView;
  readonly #opts: FaultQueueOptions;
  #writeBuf = Buffer.alloc(PAGE_RESPONSE_SIZE * 128);
  #pending = Buffer.alloc(0);
  #gone: SyscallError | null = null;
  #retry: NodeJS.Timeout | undefined;

  /** Reads and answers fd; the caller keeps ownership of fd and closes it after dispose(). */
  constructor(readonly fd: number, opts: FaultQueueOptions = {}) {
    this.#opts = opts;
    const recordsPerRead = opts.recordsPerRead ?? DEFAULT_RECORDS_PER_READ;
    this.#reader = new RecordReader(fd, opts.kind ?? "kernel");
    this.#readBuf = Buffer.alloc(recordsPerRead * FAULT_RECORD_SIZE);
    this.#readView = new DataView(this.#readBuf.buffer, this.#readBuf.byteOffset, this.#readBuf.length);
  }

  /** Up to recordsPerRead records, whole groups from the kernel; [] when none wait. */
  read(): FaultRecord[] {
    const n = this.#reader.readInto(this.#readBuf, this.#readBuf.length);
    if (n < 0) {
      throw new SyscallError("read", -n, `reading fault fd ${this.fd}`,
        -n === EINVAL ? `a waiting group has more than ${this.#readBuf.length / FAULT_RECORD_SIZE} records: read with a larger recordsPerRead` : undefined);
    }
    return decodeFaultRecords(this.#readView, 0, n / FAULT_RECORD_SIZE);
  }

  /** Bytes of answers waiting for a full stream socket. */
  get pendingBytes(): number {
    return this.#pending.length;
  }

  /** Writes all answers, in order, in as few write() calls as the fd allows. */
  writeAnswers(answers: readonly FaultAnswer[]): AnswerResult {
    const result: AnswerResult = { written: 0, queued: 0, rejected: [], gone: this.#gone };
    if (this.#gone) return result;
    if (this.#pending.length > 0) {
      // Bytes already waiting go first: a stream must not reorder or interleave answers.
      this.#queue(answers, 0, answers.length);
      result.queued = answers.length;
      this.#flush();
      return result;
    }
    const bytes = answers.length * PAGE_RESPONSE_SIZE;
    if (this.#writeBuf.length < bytes) this.#writeBuf = Buffer.alloc(Math.max(bytes, this.#writeBuf.length * 2));
    encodePageResponses(answers, 0, answers.length, this.#writeBuf);
    let done = 0;
    while (done < bytes) {
      const n = libc.write(this.fd, done === 0 ? this.#writeBuf : this.#writeBuf.subarray(done), bytes - done);
      if (n > 0) {
        done += n;
        continue;
      }
      if (n === -EINTR) continue;
      if (n === -EAGAIN || n === 0) {
        // A full socket (a stream may also take part of an answer): the retry timer sends the rest.
        this.#pending = Buffer.from(this.#writeBuf.subarray(done, bytes));
        result.queued = Math.ceil((bytes - done) / PAGE_RESPONSE_SIZE);
        this.#scheduleRetry();
        break;
      }
      const index = done / PAGE_RESPONSE_SIZE;
      const answer = answers[index];
      if (n !== -EINVAL || answer === undefined || !Number.isInteger(index)) {
        this.#gone = new SyscallError("write", -n, `answering ${answers.length} faults on fault fd ${this.fd}`,
          "the fault source went away (EPIPE/ECONNRESET/EBADF); its unanswered groups are gone with it");
        result.gone = this.#gone;
        break;
      }
      // The kernel refused the answer at `done`: record it and go on after it.
      result.rejected.push({
        index, answer,
        error: new SyscallError("write", EINVAL, `answering cookie ${answer.cookie} with code ${answer.code} on fault fd ${this.fd}`,
          "the cookie is unknown or already answered (the kernel answers a detached device's groups itself), or the code is not 0/1"),
      });
      done += PAGE_RESPONSE_SIZE;
    }
    // A stream may have taken part of an answer: that one counts as queued.
    result.written = Math.floor(done / PAGE_RESPONSE_SIZE) - result.rejected.length;
    return result;
  }

  /** Stops the retry timer after one last attempt; returns how many answers could not be sent. */
  dispose(): number {
    if (this.#pending.length > 0 && !this.#gone) this.#flush();
    clearTimeout(this.#retry);
    this.#retry = undefined;
    return Math.ceil(this.#pending.length / PAGE_RESPONSE_SIZE);
  }

  #queue(answers: readonly FaultAnswer[], start: number, end: number): void {
    const extra = Buffer.alloc((end - start) * PAGE_RESPONSE_SIZE);
    encodePageResponses(answers, start, end, extra);
    this.#pending = Buffer.concat([this.#pending, extra]);
  }

  #flush(): void {
    const before = this.#pending.length;
    while (this.#pending.length > 0) {
      const n = libc.write(this.fd, this.#pending, this.#pending.length);
      if (n === -EINTR) continue;
      if (n === -EAGAIN || n === 0) break;
      if (n < 0) {
        this.#gone = new SyscallError("write", -n, `sending queued answers on fault fd ${this.fd}`, "the fault source went away; its unanswered groups are gone with it");
        const unsent = Math.ceil(this.#pending.length / PAGE_RESPONSE_SIZE);
        this.#pending = Buffer.alloc(0);
        this.#opts.gone?.(this.#gone, unsent);
        return;
      }
      this.#pending = this.#pending.subarray(n);
    }
    // Whole answers completed by this flush: those whose last byte went out.
    const completed = Math.ceil(before / PAGE_RESPONSE_SIZE) - Math.ceil(this.#pending.length / PAGE_RESPONSE_SIZE);
    if (completed > 0) this.#opts.flushed?.(completed);
    if (this.#pending.length > 0) this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retry !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#flush();
    }, STREAM_RETRY_MS);
  }
}
