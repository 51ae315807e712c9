// One handoff request and its reply (docs/handoff.md): connect to the
// relay's SOCK_SEQPACKET handoff socket, send the JSON with the fds, wait
// for the one reply. Synchronous: a command-line client has nothing else to
// do meanwhile (never call it in a process that serves the relay itself).
import * as libc from "../kernel/libc.js";
import { SyscallError } from "../kernel/errno.js";
import { connectSeqpacket, receive, send } from "../kernel/unix-rights.js";
import { MAX_REPLY_BYTES, type HandoffReply } from "../relay/handoff/handoff-message.js";
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
    // A relay that refuses a connection replies at once and closes: the send may fail, yet its reply waits to be read.
    const pfd = Buffer.alloc(libc.POLLFD_SIZE);
    pfd.writeInt32LE(fd, 0);
    pfd.writeInt16LE(libc.POLLIN, 4);
    const ready = libc.poll(pfd, 1, n === data.length ? REPLY_TIMEOUT_MS : 0);
    const r = ready > 0 ? receive(fd, MAX_REPLY_BYTES) : null;
    if (r === null || r.closed) {
      if (n !== data.length) throw new CtlError(`sending the request to unix:${path} failed (${n < 0 ? `errno ${-n}` : "short write"}); is the relay still running?`);
      throw new CtlError(ready > 0 ? `the relay at unix:${path} closed the connection without a reply` : `no reply from the relay at unix:${path} within ${REPLY_TIMEOUT_MS / 1000} s`);
    }
    for (const f of r.fds) libc.close(f);
    if (r.truncated) throw new CtlError(`the reply from unix:${path} is over ${MAX_REPLY_BYTES} bytes: not a handoff version 1 reply; is it the relay's --handoff socket?`);
    return JSON.parse(r.data.toString("utf8")) as HandoffReply;
  } finally {
    libc.close(fd);
  }
}
