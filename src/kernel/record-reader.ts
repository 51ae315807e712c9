// Reads whole 40-byte fault records from a fault fd. The kernel's fault fd
// always returns whole groups; the kernel emulator's stream socket may return
// any byte count, so a partial record left at the end of one read is carried
// to the front of the next. An empty fd reads as 0 bytes whether it says so
// with 0 (the kernel: read() ignores O_NONBLOCK) or with EAGAIN (a socket).
//
// A reader may start with a seed: bytes a previous reader of the same fd read
// but never handed out (from the journal, after a crash): the records of
// groups still waiting for their last record and a partial record. They are
// handed out first, so a stream resumes at the right byte.
import * as libc from "./libc.js";
import { EAGAIN, EINTR } from "./errno.js";
import { FAULT_RECORD_SIZE } from "./uapi-structs.js";

export class RecordReader {
  readonly #carry: Buffer;
  #carryLen: number;
  /** True once a read returned 0 bytes with no error: EOF on a socket, or an empty kernel queue. */
  lastReadEmpty = false;
  /**
   * True when the last readInto filled all the room it had, so more may wait.
   * After a short read the caller polls instead of reading again: on this
   * project's VMs a syscall costs tens of microseconds, and at low rates the
   * read that finds the fd empty was a third of the reader's calls.
   */
  lastReadFull = false;

  constructor(readonly fd: number, seed: Uint8Array = new Uint8Array(0)) {
    this.#carry = Buffer.alloc(Math.max(FAULT_RECORD_SIZE, seed.length));
    this.#carry.set(seed);
    this.#carryLen = seed.length;
  }

  /** Whole seeded records are waiting: readInto hands them out without reading. */
  get seeded(): boolean {
    return this.#carryLen >= FAULT_RECORD_SIZE;
  }

  /**
   * Fills buf[0, capacity) (capacity a multiple of 40) with whole records and
   * returns their byte count, or -errno for a failure other than EAGAIN/EINTR.
   * onRead sees the bytes of a successful read() exactly as read, before they
   * are returned (the journal); seeded records are not read, so not shown.
   */
  readInto(buf: Buffer, capacity: number, onRead?: (bytes: Buffer) => void): number {
    if (this.seeded) return this.#handOutSeed(buf, capacity);
    const carried = this.#carryLen;
    if (carried > 0) this.#carry.copy(buf, 0, 0, carried);
    let n: number;
    do {
      n = libc.read(this.fd, carried > 0 ? buf.subarray(carried) : buf, capacity - carried);
    } while (n === -EINTR);
    if (n === -EAGAIN) n = 0;
    if (n < 0) return n;
    this.lastReadEmpty = n === 0;
    this.lastReadFull = n === capacity - carried;
    if (n > 0) onRead?.(buf.subarray(carried, carried + n));
    const total = carried + n;
    const whole = total - (total % FAULT_RECORD_SIZE);
    this.#carryLen = total - whole;
    if (this.#carryLen > 0) buf.copy(this.#carry, 0, whole, total);
    return whole;
  }

  #handOutSeed(buf: Buffer, capacity: number): number {
    const n = Math.min(capacity, this.#carryLen - (this.#carryLen % FAULT_RECORD_SIZE));
    this.#carry.copy(buf, 0, 0, n);
    this.#carry.copyWithin(0, n, this.#carryLen);
    this.#carryLen -= n;
    this.lastReadEmpty = false;
    this.lastReadFull = true;
    return n;
  }
}
