// The libc calls the kernel layer needs, through ffi-rs but for read and
// write (Node's fs: below). Every call is
// synchronous on the calling thread (never runInNewThread: ffi-rs lets a
// Buffer be garbage-collected while such a call runs), so only the pump's
// worker thread may make a call that blocks (poll). Buffers are passed as
// U8Array, which ffi-rs hands to C as the Buffer's own memory, so out-structs
// and poll()'s revents land in them without a copy.
//
// Two shapes of wrapper:
// - setup calls (open, eventfd, socketpair, socket, fcntl, dup, close, ioctl) throw a
//   SyscallError on failure;
// - data-path calls (read, write, poll, sendto) return the result or -errno, because
//   there EAGAIN, EINVAL or EINTR are outcomes the caller decides about, and an
//   exception per empty read would cost more than the read.
// errno is captured by ffi-rs right after the call (errno: true) and looked at
// only when the call returned -1.
//
// read and write go through Node's own fs.readSync/fs.writeSync, which work
// on any fd: a call through ffi-rs costs several times the system call
// itself (the bench's profile section measures both). Node reports a failure
// as an exception, which costs more than a call, but on the data path a
// failure is rare: the fault fd is read after poll() said it is readable,
// and the kernel's read returns 0 when empty.
//
// Constants are the Linux generic values, the same on x86-64 and arm64.
import { readSync, writeSync } from "node:fs";
import { DataType, load, open as ffiOpen } from "ffi-rs";
import { SyscallError } from "./errno.js";

const LIB = "iopf-relay-libc";
ffiOpen({ library: LIB, path: "libc.so.6" });

export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;
const F_DUPFD_CLOEXEC = 1030;
const F_GETFL = 3;
const F_SETFL = 4;
const EFD_CLOEXEC = 0o2000000;
const EFD_NONBLOCK = 0o4000;
const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
/** send flag: no SIGPIPE when the peer is gone (the call fails with EPIPE instead). */
export const MSG_NOSIGNAL = 0x4000;
const SOCK_CLOEXEC = 0o2000000;
const MNT_DETACH = 2;
export const POLLIN = 0x1;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;
/** struct pollfd: int fd; short events; short revents. */
export const POLLFD_SIZE = 8;

export interface Raw {
  value: number;
  errnoCode: number;
}

/** One libc call through ffi-rs, with errno captured; for the kernel layer's other wrappers (unix-rights.ts). */
export function call(funcName: string, retType: DataType, paramsType: DataType[], paramsValue: unknown[]): Raw {
  return load({ library: LIB, funcName, retType, paramsType, paramsValue, errno: true }) as unknown as Raw;
}

/** The call's value, or a SyscallError when it returned -1. */
export function checked(r: Raw, syscall: string, what: string, hint?: string): number {
  if (r.value === -1) throw new SyscallError(syscall, r.errnoCode, what, hint);
  return r.value;
}

/** -errno when the call failed, else its value. */
export function rawResult(r: Raw): number {
  return r.value === -1 ? -r.errnoCode : r.value;
}

/** open(2) with O_CLOEXEC added; the hint says what to do when it fails. */
export function open(path: string, flags: number, hint?: string): number {
  return checked(call("open", DataType.I32, [DataType.String, DataType.I32], [path, flags | O_CLOEXEC]), "open", `open ${path}`, hint);
}

export function close(fd: number): void {
  checked(call("close", DataType.I32, [DataType.I32], [fd]), "close", `close fd ${fd}`);
}

/** dup(2), close-on-exec, so the copy never leaks into spawned children. */
export function dup(fd: number): number {
  return checked(call("fcntl", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [fd, F_DUPFD_CLOEXEC, 0]), "fcntl", `F_DUPFD_CLOEXEC of fd ${fd}`);
}

/** Sets or clears O_NONBLOCK. It belongs to the open file: every holder of a dup or inherited copy sees the change. */
export function setNonBlocking(fd: number, on: boolean): void {
  const flags = checked(call("fcntl", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [fd, F_GETFL, 0]), "fcntl", `F_GETFL of fd ${fd}`);
  const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (next !== flags) {
    checked(call("fcntl", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [fd, F_SETFL, next]), "fcntl", `F_SETFL of fd ${fd}`);
  }
}

export function isNonBlocking(fd: number): boolean {
  const flags = checked(call("fcntl", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [fd, F_GETFL, 0]), "fcntl", `F_GETFL of fd ${fd}`);
  return (flags & O_NONBLOCK) !== 0;
}

/** A non-blocking, close-on-exec eventfd counter starting at 0. */
export function eventfd(): number {
  return checked(call("eventfd", DataType.I32, [DataType.I32, DataType.I32], [0, EFD_CLOEXEC | EFD_NONBLOCK]), "eventfd", "creating an eventfd");
}

/** An AF_UNIX SOCK_STREAM pair, both ends close-on-exec. */
export function socketpair(): [number, number] {
  const sv = Buffer.alloc(8);
  checked(
    call("socketpair", DataType.I32, [DataType.I32, DataType.I32, DataType.I32, DataType.U8Array], [AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv]),
    "socketpair",
    "creating an AF_UNIX stream socket pair",
  );
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}

/** An AF_UNIX SOCK_DGRAM socket, close-on-exec (Node's dgram has no AF_UNIX). */
export function unixDatagramSocket(): number {
  return checked(call("socket", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0]), "socket", "creating an AF_UNIX datagram socket");
}

/** sendto(2) of buf[0, length) to the socket address in addr (its whole length): bytes sent, or -errno. */
export function sendto(fd: number, buf: Buffer, length: number, flags: number, addr: Buffer): number {
  return rawResult(call("sendto", DataType.I64, [DataType.I32, DataType.U8Array, DataType.U64, DataType.I32, DataType.U8Array, DataType.I32],
    [fd, buf, length, flags, addr, addr.length]));
}

/**
 * ioctl(fd, request, arg) with the fixed (int, unsigned long, pointer)
 * signature: ffi-rs has no variadic calls, and this matches the calling
 * convention of x86-64 and arm64. The struct is read and written in place.
 */
export function ioctl(fd: number, request: number, arg: Buffer, what: string, hint?: string): void {
  checked(call("ioctl", DataType.I32, [DataType.I32, DataType.U64, DataType.U8Array], [fd, request, arg]), "ioctl", what, hint);
}

/** umount2(path, MNT_DETACH); a path that is not a mount point is left alone. */
export function unmountLazily(path: string): void {
  call("umount2", DataType.I32, [DataType.String, DataType.I32], [path, MNT_DETACH]);
}

/** -errno of a failed fs call (libuv reports errno negated), for the data path's "result or -errno" shape. */
function negErrno(err: unknown): number {
  const errno = (err as NodeJS.ErrnoException).errno;
  if (typeof errno !== "number") throw err;
  return errno;
}

/** read(2) into buf[0, length): bytes read, or -errno. */
export function read(fd: number, buf: Buffer, length: number): number {
  try {
    return readSync(fd, buf, 0, length, null);
  } catch (err) {
    return negErrno(err);
  }
}

/** write(2) of buf[0, length): bytes written, or -errno. */
export function write(fd: number, buf: Buffer, length: number): number {
  try {
    return writeSync(fd, buf, 0, length);
  } catch (err) {
    return negErrno(err);
  }
}

/** poll(2) over nfds struct pollfd in fds: the number ready, 0 on timeout, or -errno. Blocks: worker thread only. */
export function poll(fds: Buffer, nfds: number, timeoutMs: number): number {
  return rawResult(call("poll", DataType.I32, [DataType.U8Array, DataType.U64, DataType.I32], [fds, nfds, timeoutMs]));
}

/**
 * The address of a Buffer's memory, for uAPI structs that carry a user
 * pointer (iommu_hwpt_alloc.data_uptr). memmove(buf, buf, 0) returns its first
 * argument. Valid only while the caller keeps buf referenced.
 */
export function addressOf(buf: Buffer): number {
  return (load({ library: LIB, funcName: "memmove", retType: DataType.U64, paramsType: [DataType.U8Array, DataType.U8Array, DataType.U64], paramsValue: [buf, buf, 0] }) as unknown as number);
}
