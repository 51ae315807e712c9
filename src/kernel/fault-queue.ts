// One fault fd, read and answered from the calling thread without ever
// blocking: reads return at once (the kernel's fault fd ignores O_NONBLOCK
// and returns 0 when empty; the emulator's socket is O_NONBLOCK), and the
// kernel's write() never blocks. Each read() takes up to `recordsPerRead`
// records in one syscall and each writeAnswers() sends a whole batch in one
// write(), because every FFI call costs microseconds.
import * as libc from "./libc.js";
import { EAGAIN, EINTR, EINVAL, SyscallError } from "./errno.js";
import { RecordReader } from "./record-reader.js";
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
  /** Answers waiting for a full socket to drain (stream fds only); they are sent by a retry timer. */
  queued: number;
  /**
   * Answers the kernel refused. The kernel stops a write at the first bad
   * answer and returns the bytes before it; the queue writes again from that
   * answer, which the kernel then refuses with its errno (EINVAL: unknown or
   * already answered cookie, or a code other than 0/1), skips it, and goes on.
   */
  rejected: RejectedAnswer[];
}

// A full stream socket is retried this often; the emulator drains it within microseconds.
const STREAM_RETRY_MS = 1;

export class FaultQueue {
  readonly #reader: RecordReader;
  readonly #readBuf: Buffer;
  readonly #readView: DataView;
  #writeBuf = Buffer.alloc(PAGE_RESPONSE_SIZE * 128);
  #pending = Buffer.alloc(0);
  #retry: NodeJS.Timeout | undefined;

  /** Reads and answers fd; the caller keeps ownership of fd and closes it after dispose(). */
  constructor(readonly fd: number, readonly recordsPerRead = DEFAULT_RECORDS_PER_READ) {
    this.#reader = new RecordReader(fd);
    this.#readBuf = Buffer.alloc(recordsPerRead * FAULT_RECORD_SIZE);
    this.#readView = new DataView(this.#readBuf.buffer, this.#readBuf.byteOffset, this.#readBuf.length);
  }

  /** Up to recordsPerRead records, whole groups from the kernel; [] when none wait. */
  read(): FaultRecord[] {
    const n = this.#reader.readInto(this.#readBuf, this.#readBuf.length);
    if (n < 0) {
      throw new SyscallError("read", -n, `reading fault fd ${this.fd}`,
        -n === EINVAL ? `a waiting group has more than ${this.recordsPerRead} records: read with a larger recordsPerRead` : undefined);
    }
    return decodeFaultRecords(this.#readView, 0, n / FAULT_RECORD_SIZE);
  }

  /** Bytes of answers waiting for a full stream socket. */
  get pendingBytes(): number {
    return this.#pending.length;
  }

  /** Writes all answers, in order, in as few write() calls as the fd allows. */
  writeAnswers(answers: readonly FaultAnswer[]): AnswerResult {
    const result: AnswerResult = { written: 0, queued: 0, rejected: [] };
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
        throw new SyscallError("write", -n, `answering ${answers.length} faults on fault fd ${this.fd}`,
          "EPIPE/ECONNRESET: the fault source went away; ESPIPE/EFAULT: a bug in iopf-relay");
      }
      // The kernel refused the answer at `done`: record it and go on after it.
      result.rejected.push({
        index, answer,
        error: new SyscallError("write", EINVAL, `answering cookie ${answer.cookie} with code ${answer.code} on fault fd ${this.fd}`,
          "the cookie is unknown or already answered (the kernel answers a detached device's groups itself), or the code is not 0/1"),
      });
      done += PAGE_RESPONSE_SIZE;
    }
    result.written = answers.length - result.queued - result.rejected.length;
    return result;
  }

  /** Stops the retry timer after one last attempt; returns the answer bytes that could not be sent. */
  dispose(): number {
    if (this.#pending.length > 0) this.#flush();
    clearTimeout(this.#retry);
    this.#retry = undefined;
    return this.#pending.length;
  }

  #queue(answers: readonly FaultAnswer[], start: number, end: number): void {
    const extra = Buffer.alloc((end - start) * PAGE_RESPONSE_SIZE);
    encodePageResponses(answers, start, end, extra);
    this.#pending = Buffer.concat([this.#pending, extra]);
  }

  #flush(): void {
    while (this.#pending.length > 0) {
      const n = libc.write(this.fd, this.#pending, this.#pending.length);
      if (n === -EINTR) continue;
      if (n === -EAGAIN || n === 0) break;
      if (n < 0) throw new SyscallError("write", -n, `sending queued answers on fault fd ${this.fd}`);
      this.#pending = this.#pending.subarray(n);
    }
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
