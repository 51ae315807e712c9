// What an inherited fd is, checked before the relay reads it: reading the
// wrong fd (a config file on stdin, /dev/zero, a pipe) would turn its bytes
// into fault records. The kernel's fault fd is an anonymous inode named
// "[iommufd-pgfault]" (every kernel version), which /proc/self/fd shows as
// "anon_inode:[iommufd-pgfault]"; fstat cannot tell, since every anonymous
// inode is the same inode.
import { fstatSync, readlinkSync } from "node:fs";
import type { FdKind } from "./record-reader.js";

export const FAULT_FD_LINK = "anon_inode:[iommufd-pgfault]";

/** What /proc/self/fd says fd is, or null when it is not open. */
export function fdTarget(fd: number): string | null {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return null;
  }
}

export type FdCheck = { ok: true; kind: FdKind } | { ok: false; why: string };

/** An iommufd fault fd, or why not. */
export function checkFaultFd(fd: number): FdCheck {
  const target = fdTarget(fd);
  if (target === null) return { ok: false, why: `fd ${fd} is not open in this process (was it passed to it?)` };
  if (target !== FAULT_FD_LINK) return { ok: false, why: `fd ${fd} is ${target}, not an iommufd fault fd (${FAULT_FD_LINK})` };
  return { ok: true, kind: "kernel" };
}

/**
 * A kernel emulator's fd (for tests and benchmarks): its socket (a stream)
 * or its kernel-exact FUSE file (read like the kernel's fault fd).
 */
export function checkEmulatorFd(fd: number): FdCheck {
  const target = fdTarget(fd);
  if (target === null) return { ok: false, why: `fd ${fd} is not open in this process (was it passed to it?)` };
  if (target === FAULT_FD_LINK) return { ok: true, kind: "kernel" };
  const st = fstatSync(fd);
  if (st.isSocket()) return { ok: true, kind: "stream" };
  if (st.isFile() && /\/fault$/.test(target)) return { ok: true, kind: "kernel" };
  return { ok: false, why: `fd ${fd} is ${target}, neither a kernel emulator's socket nor its kernel-exact file` };
}
