// Reads whole 40-byte fault records from a fault fd. The kernel's fault fd
// always returns whole groups; the kernel emulator's stream socket may return
// any byte count, so a partial record left at the end of one read is carried
// to the front of the next. An empty fd reads as 0 bytes whether it says so
// with 0 (the kernel: read() ignores O_NONBLOCK) or with EAGAIN (a socket).
import * as libc from "./libc.js";
import { EAGAIN, EINTR } from "./errno.js";
import { FAULT_RECORD_SIZE } from "./uapi-structs.js";

export class RecordReader {
  readonly #carry = Buffer.alloc(FAULT_RECORD_SIZE);
  #carryLen = 0;
  /** True once a read returned 0 bytes with no error: EOF on a socket, or an empty kernel queue. */
  lastReadEmpty = false;

  constructor(readonly fd: number) {}

  /**
   * Fills buf[0, capacity) (capacity a multiple of 40) with whole records and
   * returns their byte count, or -errno for a failure other than EAGAIN/EINTR.
   */
  readInto(buf: Buffer, capacity: number): number {
    const carried = this.#carryLen;
    if (carried > 0) this.#carry.copy(buf, 0, 0, carried);
    let n: number;
    do {
      n = libc.read(this.fd, carried > 0 ? buf.subarray(carried) : buf, capacity - carried);
    } while (n === -EINTR);
    if (n === -EAGAIN) n = 0;
    if (n < 0) return n;
    this.lastReadEmpty = n === 0;
    const total = carried + n;
    const whole = total - (total % FAULT_RECORD_SIZE);
    this.#carryLen = total - whole;
    if (this.#carryLen > 0) buf.copy(this.#carry, 0, whole, total);
    return whole;
  }
}
