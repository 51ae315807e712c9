// AF_UNIX SOCK_SEQPACKET sockets that carry fds (SCM_RIGHTS) and tell who
// is at the other end (SO_PEERCRED, SO_PEERPIDFD), through ffi-rs: Node's
// net module can neither pass fds nor read a peer's credentials, and a
// socket Node's event loop reads loses the fds sent with it (the kernel
// closes fds whose message is read without a control buffer). So a socket
// that carries fds is read only with recvmsg, here.
//
// SOCK_SEQPACKET: every message is one datagram, and the fds a message
// carries arrive with it, so no framing is needed.
//
// Struct layouts are x86-64 and arm64 Linux (LP64): msghdr 56 bytes, iovec
// 16, cmsghdr 16 plus data, sockaddr_un 110, ucred 12.
import { DataType } from "ffi-rs";
import { EAGAIN, EINTR, SyscallError } from "./errno.js";
import { addressOf, call, checked, rawResult } from "./libc.js";

const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
const MSG_CTRUNC = 0x8;
const MSG_TRUNC = 0x20;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CMSG_CLOEXEC = 0x40000000;
const SYS_PIDFD_OPEN = 434;
const SUN_PATH_MAX = 107;

/** The most fds one message may carry. */
export const MAX_FDS_PER_MESSAGE = 16;
const CMSG_HEADER = 16;
const MSGHDR_SIZE = 56;

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

function sockaddrUn(path: string): Buffer {
  const bytes = Buffer.from(path);
  if (bytes.length > SUN_PATH_MAX) throw new RangeError(`unix socket path ${path}: ${bytes.length} bytes, at most ${SUN_PATH_MAX} fit in sun_path`);
  const addr = Buffer.alloc(2 + bytes.length + 1);
  addr.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(addr, 2);
  return addr;
}

/** A non-blocking, close-on-exec SOCK_SEQPACKET socket listening at path (the caller removed a stale file). */
export function listenSeqpacket(path: string, backlog = 16): number {
  const fd = checked(call("socket", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0]), "socket", "creating a SOCK_SEQPACKET socket");
  try {
    const addr = sockaddrUn(path);
    checked(call("bind", DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32], [fd, addr, addr.length]), "bind", `binding ${path}`);
    checked(call("listen", DataType.I32, [DataType.I32, DataType.I32], [fd, backlog]), "listen", `listening on ${path}`);
    return fd;
  } catch (err) {
    call("close", DataType.I32, [DataType.I32], [fd]);
    throw err;
  }
}

/** A blocking, close-on-exec SOCK_SEQPACKET socket connected to path. */
export function connectSeqpacket(path: string): number {
  const fd = checked(call("socket", DataType.I32, [DataType.I32, DataType.I32, DataType.I32], [AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0]), "socket", "creating a SOCK_SEQPACKET socket");
  const addr = sockaddrUn(path);
  const r = call("connect", DataType.I32, [DataType.I32, DataType.U8Array, DataType.I32], [fd, addr, addr.length]);
  if (r.value === -1) {
    call("close", DataType.I32, [DataType.I32], [fd]);
    throw new SyscallError("connect", r.errnoCode, `connecting to ${path}`);
  }
  return fd;
}

/** A connected SOCK_SEQPACKET pair, both ends close-on-exec (the keeper's channel to its relay). */
export function seqpacketPair(): [number, number] {
  const sv = Buffer.alloc(8);
  checked(call("socketpair", DataType.I32, [DataType.I32, DataType.I32, DataType.I32, DataType.U8Array], [AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv]), "socketpair", "creating a SOCK_SEQPACKET pair");
  return [sv.readInt32LE(0), sv.readInt32LE(4)];
}

/** An accepted connection (non-blocking, close-on-exec), null when none waits, or -errno. */
export function accept(fd: number): number | null {
  const r = rawResult(call("accept4", DataType.I32, [DataType.I32, DataType.U64, DataType.U64, DataType.I32], [fd, 0, 0, SOCK_NONBLOCK | SOCK_CLOEXEC]));
  return r === -EAGAIN || r === -EINTR ? null : r;
}

/** Who is at the other end of a connected unix socket. */
export function peerCred(fd: number): PeerCred {
  const buf = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(12);
  checked(call("getsockopt", DataType.I32, [DataType.I32, DataType.I32, DataType.I32, DataType.U8Array, DataType.U8Array], [fd, SOL_SOCKET, SO_PEERCRED, buf, len]), "getsockopt", `SO_PEERCRED of fd ${fd}`);
  return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
}

/**
 * A pidfd of the peer process: SO_PEERPIDFD (Linux 6.5+) names the very
 * process that connected; before 6.5, pidfd_open of its pid (which a pid
 * reused since could fool). Readable once the process exits.
 */
export function peerPidfd(fd: number, pid: number): number {
  const buf = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  const r = call("getsockopt", DataType.I32, [DataType.I32, DataType.I32, DataType.I32, DataType.U8Array, DataType.U8Array], [fd, SOL_SOCKET, SO_PEERPIDFD, buf, len]);
  if (r.value !== -1) return buf.readInt32LE(0);
  return pidfdOpen(pid);
}

/** A pidfd of process pid (readable once it exits); ESRCH when there is no such process. */
export function pidfdOpen(pid: number): number {
  return checked(call("syscall", DataType.I64, [DataType.I64, DataType.I32, DataType.I32], [SYS_PIDFD_OPEN, pid, 0]), "pidfd_open", `a pidfd for process ${pid}`, "the process is not running (ESRCH), or the kernel is older than 5.3");
}

/** The pid a pidfd names, from /proc/self/fdinfo (0: the process has exited, -1: not a pidfd). */
export function pidOfPidfd(pidfdInfo: string): number {
  const m = /^Pid:\s*(-?\d+)$/m.exec(pidfdInfo);
  return m ? Number(m[1]) : -1;
}

export interface Received {
  /** The message's bytes; empty with `closed` when the peer closed. */
  data: Buffer;
  fds: number[];
  closed: boolean;
  /** The message or its control data did not fit: the fds that came were closed by the kernel or here. */
  truncated: boolean;
}

/**
 * Receives one message with its fds (close-on-exec), without blocking: null
 * when none waits. maxBytes + 1 bytes of room tell a message over the limit.
 */
export function receive(fd: number, maxBytes: number): Received | null {
  const data = Buffer.alloc(maxBytes + 1);
  const control = Buffer.alloc(CMSG_HEADER + 4 * MAX_FDS_PER_MESSAGE);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(addressOf(data)), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(BigInt(addressOf(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(BigInt(addressOf(control)), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  let n: number;
  do n = rawResult(call("recvmsg", DataType.I64, [DataType.I32, DataType.U8Array, DataType.I32], [fd, msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC]));
  while (n === -EINTR);
  if (n === -EAGAIN) return null;
  if (n < 0) throw new SyscallError("recvmsg", -n, `receiving from fd ${fd}`);
  const flags = msg.readInt32LE(48);
  const fds = controlFds(control, Number(msg.readBigUInt64LE(40)));
  return { data: data.subarray(0, Math.min(n, maxBytes)), fds, closed: n === 0 && fds.length === 0, truncated: n > maxBytes || (flags & (MSG_TRUNC | MSG_CTRUNC)) !== 0 };
}

/** The fds of every SCM_RIGHTS control message in control[0, length). */
function controlFds(control: Buffer, length: number): number[] {
  const fds: number[] = [];
  for (let off = 0; off + CMSG_HEADER <= length;) {
    const cmsgLen = Number(control.readBigUInt64LE(off));
    if (cmsgLen < CMSG_HEADER) break;
    if (control.readInt32LE(off + 8) === SOL_SOCKET && control.readInt32LE(off + 12) === SCM_RIGHTS) {
      for (let p = off + CMSG_HEADER; p + 4 <= off + cmsgLen; p += 4) fds.push(control.readInt32LE(p));
    }
    off += Math.ceil(cmsgLen / 8) * 8;
  }
  return fds;
}

/** Sends one message, with fds when given; bytes sent or -errno (EAGAIN on a full socket). */
export function send(fd: number, data: Buffer, fds: readonly number[] = [], flags = 0): number {
  if (fds.length > MAX_FDS_PER_MESSAGE) throw new RangeError(`${fds.length} fds in one message, at most ${MAX_FDS_PER_MESSAGE}`);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(addressOf(data)), 0);
  iov.writeBigUInt64LE(BigInt(data.length), 8);
  const msg = Buffer.alloc(MSGHDR_SIZE);
  msg.writeBigUInt64LE(BigInt(addressOf(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  const control = Buffer.alloc(fds.length > 0 ? CMSG_HEADER + Math.ceil((4 * fds.length) / 8) * 8 : 0);
  if (fds.length > 0) {
    control.writeBigUInt64LE(BigInt(CMSG_HEADER + 4 * fds.length), 0);
    control.writeInt32LE(SOL_SOCKET, 8);
    control.writeInt32LE(SCM_RIGHTS, 12);
    fds.forEach((f, i) => control.writeInt32LE(f, CMSG_HEADER + 4 * i));
    msg.writeBigUInt64LE(BigInt(addressOf(control)), 32);
    msg.writeBigUInt64LE(BigInt(control.length), 40);
  }
  let n: number;
  do n = rawResult(call("sendmsg", DataType.I64, [DataType.I32, DataType.U8Array, DataType.I32], [fd, msg, flags | MSG_NOSIGNAL]));
  while (n === -EINTR);
  return n;
}
