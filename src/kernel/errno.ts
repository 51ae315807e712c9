// The one error type of the kernel layer: which syscall failed, with which
// errno, on what, and what the operator can do about it. Errno names come from
// Node's own table for this platform, so they match the kernel's numbering.
import { constants } from "node:os";

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // The table lists aliases (EWOULDBLOCK after EAGAIN); keep the first, canonical one.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}

export const EAGAIN = constants.errno.EAGAIN;
export const EINTR = constants.errno.EINTR;
export const EINVAL = constants.errno.EINVAL;

/** "EINVAL" for 22; "errno 999" for a number this platform has no name for. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

// What to do, by errno, when the caller has nothing more specific to say.
const defaultHints: Record<string, string> = {
  EACCES: "run as root or give this user access to the device node",
  EPERM: "run as root (CAP_SYS_ADMIN for the iommufd selftest commands)",
  ENOENT: "check that the path exists and the kernel driver is loaded",
  EBADF: "the fd was closed or never opened: check who owns it",
  EMFILE: "too many open fds in this process: raise the limit (ulimit -n) or close unused fds",
  ENFILE: "the system ran out of file handles: raise fs.file-max",
  ENOTTY: "the fd does not support this ioctl: wrong fd, or a kernel without this command",
  ENOMEM: "the kernel is out of memory for this request",
  EFAULT: "a buffer passed to the kernel was invalid: this is a bug in iopf-relay",
  EBUSY: "the object is still in use: release its users (fds, HWPTs, attached devices) first",
};

export class SyscallError extends Error {
  override readonly name = "SyscallError";
  /** The errno name, "EINVAL", as Node's own system errors call it. */
  readonly code: string;

  constructor(
    readonly syscall: string,
    readonly errno: number,
    /** What was being attempted, e.g. "ioctl IOMMU_HWPT_ALLOC on iommufd fd 5". */
    readonly what: string,
    /** What to do about it; defaults to a hint by errno. */
    readonly hint: string = defaultHints[errnoName(errno)] ?? "see the man page of this syscall for this errno",
  ) {
    super(`${syscall} failed with ${errnoName(errno)} (${errno}) during ${what}: ${hint}`);
    this.code = errnoName(errno);
  }
}
