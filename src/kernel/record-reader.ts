// Reads whole 40-byte fault records from a fault fd. What a read() says
// depends on what the fd is:
// - "kernel": the iommufd fault fd (or the emulator's kernel-exact file). It
//   returns whole groups only and never blocks: 0 when nothing waits, and
//   when the first waiting group does not fit the buffer, EINVAL (6.12) or
//   0 (later kernels) while poll() still says readable.
// - "stream": the kernel emulator's socket. Any byte count, so a partial
//   record left at the end of one read is carried to the front of the next;
//   EAGAIN when empty, 0 when the emulator went away.
import * as libc from "./libc.js";
import { EAGAIN, EINTR } from "./errno.js";
import { failpoint } from "./failpoint.js";
import { FAULT_RECORD_SIZE } from "./uapi-structs.js";

export type FdKind = "kernel" | "stream";

export class RecordReader {
  readonly #carry = Buffer.alloc(FAULT_RECORD_SIZE);
  #carryLen = 0;
  /** True when the last read gave no bytes: an empty queue (or, on a kernel fd, a group too large for it). */
  lastReadEmpty = false;
  /** A stream whose other end went away (a read returned 0 on the socket). */
  ended = false;
  /**
   * True when the last readInto filled all the room it had, so more may wait.
   * After a short read the caller polls instead of reading again: on this
   * project's VMs a syscall costs tens of microseconds, and at low rates the
   * read that finds the fd empty was a third of the reader's calls.
   */
  lastReadFull = false;

  constructor(readonly fd: number, readonly kind: FdKind) {}

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
    const wouldBlock = n === -EAGAIN;
    if (wouldBlock) n = 0;
    if (n < 0) return n;
    this.ended = this.kind === "stream" && n === 0 && !wouldBlock;
    if (n > 0) failpoint("worker-after-read");
    this.lastReadEmpty = n === 0;
    this.lastReadFull = n === capacity - carried;
    const total = carried + n;
    const whole = total - (total % FAULT_RECORD_SIZE);
    this.#carryLen = total - whole;
    if (this.#carryLen > 0) buf.copy(this.#carry, 0, whole, total);
    return whole;
  }
}
