// Answers SUCCESS to every cookie from 1 to a bound, on a fault fd whose
// previous reader may have died holding groups (or handed the fd over). The
// kernel gives each group a cookie when it is read, the lowest positive one
// not outstanding, so while readers hold at most `bound` groups no cookie
// exceeds it. An answer to a cookie that is not outstanding gets EINVAL and
// harms nothing; a batched write stops at the first such cookie and returns
// the bytes before it, so a sweep costs one write per refused cookie plus
// one per run of accepted ones. SUCCESS, never INVALID: nobody looked at
// these faults, and SUCCESS makes each device retry, so its fault comes back
// as a new group. Only valid before anyone reads the fd again: a cookie
// read after the sweep started could be a new group's.
import * as libc from "./libc.js";
import { EAGAIN, EINTR, EINVAL, SyscallError } from "./errno.js";
import { failpoint } from "./failpoint.js";
import type { FdKind } from "./record-reader.js";
import { encodePageResponses, PAGE_RESPONSE_SIZE, type FaultAnswer } from "./uapi-structs.js";

const IOMMUFD_PAGE_RESP_SUCCESS = 0;
/** A stream that stays full this long is reported instead of waited for. */
const STREAM_STALL_MS = 5000;

export interface SweepResult {
  /** Cookies the kernel took: groups a previous reader left unanswered. Null on a stream, which cannot refuse. */
  accepted: number | null;
  /** write() calls made. */
  writes: number;
}

export function sweepCookies(fd: number, kind: FdKind, bound: number): SweepResult {
  const answers: FaultAnswer[] = Array.from({ length: bound }, (_, i) => ({ cookie: i + 1, code: IOMMUFD_PAGE_RESP_SUCCESS }));
  const buf = Buffer.alloc(bound * PAGE_RESPONSE_SIZE);
  const bytes = encodePageResponses(answers, 0, bound, buf);
  let done = 0;
  let accepted = 0;
  let writes = 0;
  while (done < bytes) {
    const n = libc.write(fd, done === 0 ? buf : buf.subarray(done), bytes - done);
    writes++;
    if (writes === 2) failpoint("worker-mid-sweep");
    if (n > 0) {
      done += n;
      accepted += n / PAGE_RESPONSE_SIZE;
      continue;
    }
    if (n === -EINTR) continue;
    if (n === -EINVAL && kind === "kernel") {
      done += PAGE_RESPONSE_SIZE; // not outstanding: nothing to answer
      continue;
    }
    if ((n === -EAGAIN || n === 0) && kind === "stream") {
      const pfd = Buffer.alloc(libc.POLLFD_SIZE);
      pfd.writeInt32LE(fd, 0);
      pfd.writeInt16LE(libc.POLLOUT, 4);
      if (libc.poll(pfd, 1, STREAM_STALL_MS) > 0) continue;
      throw new SyscallError("write", EAGAIN, `answering cookies 1..${bound} SUCCESS on fault fd ${fd}`, `the stream stayed full for ${STREAM_STALL_MS} ms: is the emulator at its other end stuck?`);
    }
    throw new SyscallError("write", -n, `answering cookies 1..${bound} SUCCESS on fault fd ${fd} before its first read`);
  }
  return { accepted: kind === "stream" ? null : accepted, writes };
}
