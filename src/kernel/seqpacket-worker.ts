// The seqpacket server's worker thread: blocks in poll() on a listening
// SOCK_SEQPACKET socket, its connections, the pidfds it was asked to watch
// and an eventfd the main thread writes to wake it; accepts, reads every
// message with its fds (recvmsg), and posts what happened to the main
// thread. Node cannot watch these fds itself: reading a socket through the
// event loop would drop the fds sent with it, and a pidfd is not a socket.
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from "node:worker_threads";
import * as libc from "./libc.js";
import { EINTR } from "./errno.js";
import { accept, peerCred, peerPidfd, receive } from "./unix-rights.js";
import type { ServerCommand, ServerEvent } from "./seqpacket-server.js";

export interface SeqpacketWorkerData {
  /** The listening socket, or -1 for a server of adopted connections only. */
  listenFd: number;
  wakeFd: number;
  commands: MessagePort;
  /** The largest message accepted; a longer one comes truncated. */
  maxBytes: number;
}

const { listenFd, wakeFd, commands, maxBytes } = workerData as SeqpacketWorkerData;
const conns = new Set<number>();
/** Connections the peer closed: no longer polled, but open until the main thread says close (then their number may be reused). */
const hungUp = new Set<number>();
const pidfds = new Set<number>();
const wakeBuf = Buffer.alloc(8);
let stopping = false;

function post(ev: ServerEvent): void {
  parentPort!.postMessage(ev);
}

function takeCommands(): void {
  for (let m = receiveMessageOnPort(commands); m; m = receiveMessageOnPort(commands)) {
    const cmd = m.message as ServerCommand;
    switch (cmd.op) {
      case "adopt":
        conns.add(cmd.fd);
        break;
      case "close":
        // Closed here, where it is polled, so poll never sees a number that was reused; and only on the
        // main thread's word, so no number it still holds can become a new connection's.
        if (conns.delete(cmd.conn) || hungUp.delete(cmd.conn)) libc.close(cmd.conn);
        break;
      case "watch-exit":
        pidfds.add(cmd.pidfd);
        break;
      case "forget-pidfd":
        pidfds.delete(cmd.pidfd);
        libc.close(cmd.pidfd);
        break;
      case "stop":
        stopping = true;
        break;
    }
  }
}

function acceptAll(): void {
  for (;;) {
    const fd = accept(listenFd);
    if (fd === null) return;
    if (fd < 0) {
      post({ type: "error", message: `accept failed with errno ${-fd}` });
      return;
    }
    try {
      const peer = peerCred(fd);
      const pidfd = peerPidfd(fd, peer.pid);
      conns.add(fd);
      post({ type: "connection", conn: fd, peer, pidfd });
    } catch (err) {
      libc.close(fd);
      post({ type: "error", message: `a connection was refused: ${(err as Error).message}` });
    }
  }
}

/** The peer is gone: stop polling the connection and say so; the main thread closes it. */
function hangUp(conn: number, error?: string): void {
  conns.delete(conn);
  hungUp.add(conn);
  post(error === undefined ? { type: "closed", conn } : { type: "closed", conn, error });
}

function readAll(conn: number): void {
  for (;;) {
    let r;
    try {
      r = receive(conn, maxBytes);
    } catch (err) {
      hangUp(conn, (err as Error).message);
      return;
    }
    if (r === null) return;
    if (r.closed) {
      hangUp(conn);
      return;
    }
    // A copy the main thread owns: the worker's buffer is not shared.
    post({ type: "message", conn, data: Uint8Array.from(r.data), fds: r.fds, truncated: r.truncated });
  }
}

function run(): void {
  while (!stopping) {
    const watched = [wakeFd, ...(listenFd >= 0 ? [listenFd] : []), ...conns, ...pidfds];
    const pfds = Buffer.alloc(libc.POLLFD_SIZE * watched.length);
    watched.forEach((fd, i) => {
      pfds.writeInt32LE(fd, i * libc.POLLFD_SIZE);
      pfds.writeInt16LE(libc.POLLIN, i * libc.POLLFD_SIZE + 4);
    });
    const ready = libc.poll(pfds, watched.length, -1);
    if (ready === -EINTR) continue;
    if (ready < 0) throw new Error(`seqpacket server: poll failed with errno ${-ready}`);
    watched.forEach((fd, i) => {
      const revents = pfds.readInt16LE(i * libc.POLLFD_SIZE + 6);
      if (revents === 0) return;
      if (fd === wakeFd) libc.read(wakeFd, wakeBuf, 8);
      else if (fd === listenFd) acceptAll();
      else if (conns.has(fd)) readAll(fd);
      else if (pidfds.delete(fd)) post({ type: "exited", pidfd: fd });
    });
    takeCommands();
  }
}

parentPort!.postMessage({ type: "ready" });
takeCommands();
run();
for (const c of [...conns, ...hungUp]) libc.close(c);
