// One handoff request and its reply (docs/handoff.md): connect to the
// relay's SOCK_SEQPACKET handoff socket, send the JSON with the fds, wait
// for the one reply. Synchronous: a command-line client has nothing else to
// do meanwhile (never call it in a process that serves the relay itself).
import * as libc from "../kernel/libc.js";
import { SyscallError } from "../kernel/errno.js";
import { connectSeqpacket, receive, send } from "../kernel/unix-rights.js";
import type { HandoffReply } from "../relay/handoff/handoff-message.js";
import { MAX_MESSAGE_BYTES } from "../kernel/seqpacket-server.js";
import { CtlError } from "./control-client.js";

const REPLY_TIMEOUT_MS = 30_000;

export function handoffRequest(path: string, request: object, fds: readonly number[] = []): HandoffReply {
  let fd: number;
  try {
    fd = connectSeqpacket(path);
  } catch (err) {
    const code = err instanceof SyscallError ? err.code : "";
    throw new CtlError(`no relay handoff socket at unix:${path} (${code || (err as Error).message}): start iopf-relay with --handoff unix:${path}, or give iopfctl the relay's path with --handoff`);
  }
  try {
    const data = Buffer.from(JSON.stringify(request));
    const n = send(fd, data, fds);
    if (n !== data.length) throw new CtlError(`sending the request to unix:${path} failed (${n < 0 ? `errno ${-n}` : "short write"}); is the relay still running?`);
    const pfd = Buffer.alloc(libc.POLLFD_SIZE);
    pfd.writeInt32LE(fd, 0);
    pfd.writeInt16LE(libc.POLLIN, 4);
    if (libc.poll(pfd, 1, REPLY_TIMEOUT_MS) <= 0) throw new CtlError(`no reply from the relay at unix:${path} within ${REPLY_TIMEOUT_MS / 1000} s`);
    const r = receive(fd, MAX_MESSAGE_BYTES);
    if (r === null || r.closed) throw new CtlError(`the relay at unix:${path} closed the connection without a reply`);
    for (const f of r.fds) libc.close(f);
    return JSON.parse(r.data.toString("utf8")) as HandoffReply;
  } finally {
    libc.close(fd);
  }
}
