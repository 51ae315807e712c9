// A SOCK_SEQPACKET server whose messages carry fds (SCM_RIGHTS), for the
// handoff socket and the keeper's channel to its relay. A worker thread
// (seqpacket-worker.ts) accepts, reads each message with its fds and tells
// who connected (SO_PEERCRED and a pidfd); it also watches pidfds, which
// become readable when their process exits. Replies are sent from the main
// thread: small datagrams on a non-blocking socket. A connection's fd is
// closed only once the main thread is done with it (it closed it, or it
// was told the peer did), so a number it still holds never names a newer
// connection.
//
//   const server = await SeqpacketServer.listen("/run/iopf-relay/vm1.handoff");
//   server.on("event", (ev) => { if (ev.type === "message") server.reply(ev.conn, Buffer.from("{...}")); });
import { EventEmitter } from "node:events";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import * as libc from "./libc.js";
import { listenSeqpacket, send, type PeerCred } from "./unix-rights.js";
import type { SeqpacketWorkerData } from "./seqpacket-worker.js";

export type ServerEvent =
  /** A connection was accepted; `pidfd` names the peer process (the server's to keep or forget). */
  | { type: "connection"; conn: number; peer: PeerCred; pidfd: number }
  /** One message; its fds are the receiver's to keep or close. `truncated`: longer than allowed (or its control data was). */
  | { type: "message"; conn: number; data: Uint8Array; fds: number[]; truncated: boolean }
  /** The peer closed the connection (or reading it failed); never reported for one closed with closeConnection(). */
  | { type: "closed"; conn: number; error?: string }
  /** A watched process exited; its pidfd is no longer watched and is the receiver's to close. */
  | { type: "exited"; pidfd: number }
  | { type: "error"; message: string }
  | { type: "ready" };

export type ServerCommand =
  | { op: "adopt"; fd: number }
  | { op: "close"; conn: number }
  | { op: "watch-exit"; pidfd: number }
  | { op: "forget-pidfd"; pidfd: number }
  | { op: "stop" };

/** The largest message: a JSON request of 64 KiB. */
export const MAX_MESSAGE_BYTES = 65536;

export class SeqpacketServer extends EventEmitter {
  #commands: MessagePort;
  #exited: Promise<void>;
  /** Connections open as the main thread sees them: accepted or adopted, and neither closed nor reported closed. */
  readonly #open = new Set<number>();
  // process.exit() waits for workers, and one blocked in poll() inside ffi-rs
  // never returns: every exit path (an error at start-up, too) stops it first.
  readonly #stopOnExit = (): void => this.#command({ op: "stop" });

  private constructor(
    private readonly worker: Worker,
    commands: MessagePort,
    private readonly wakeFd: number,
    private readonly listenFd: number,
    readonly description: string,
  ) {
    super();
    this.#commands = commands;
    this.#exited = new Promise((resolve) => worker.once("exit", () => resolve()));
    process.on("exit", this.#stopOnExit);
    worker.on("message", (ev: ServerEvent) => this.#onWorkerEvent(ev));
    worker.on("error", (err) => this.emit("event", { type: "error", message: `seqpacket server worker failed: ${err.message}` } satisfies ServerEvent));
  }

  /** Listens at path (a stale file must be removed first); mode and group are the caller's to set after. */
  static async listen(path: string): Promise<SeqpacketServer> {
    const fd = listenSeqpacket(path);
    return SeqpacketServer.#start(fd, `unix:${path}`);
  }

  /** Serves already-connected sockets only (adopt()), e.g. a socket pair inherited from a parent. */
  static async forConnections(description: string): Promise<SeqpacketServer> {
    return SeqpacketServer.#start(-1, description);
  }

  static async #start(listenFd: number, description: string): Promise<SeqpacketServer> {
    const wakeFd = libc.eventfd();
    const { port1, port2 } = new MessageChannel();
    const data: SeqpacketWorkerData = { listenFd, wakeFd, commands: port2, maxBytes: MAX_MESSAGE_BYTES };
    const worker = new Worker(new URL("./seqpacket-worker.js", import.meta.url), { workerData: data, transferList: [port2] });
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
    });
    return new SeqpacketServer(worker, port1, wakeFd, listenFd, description);
  }

  /** Reads messages from a connected socket of ours too. */
  adopt(fd: number): void {
    this.#open.add(fd);
    this.#command({ op: "adopt", fd });
  }

  /** Sends one message (with fds); false when the connection is closed, the peer is gone or its socket is full (then it should be closed). */
  reply(conn: number, data: Buffer, fds: readonly number[] = []): boolean {
    return this.#open.has(conn) && send(conn, data, fds) === data.length;
  }

  /** Closes a connection, unless it is closed already; no event follows, and messages it sent that were not yet delivered are dropped (their fds closed). */
  closeConnection(conn: number): void {
    if (this.#open.delete(conn)) this.#command({ op: "close", conn });
  }

  watchExit(pidfd: number): void {
    this.#command({ op: "watch-exit", pidfd });
  }

  /** Closes a pidfd the server handed out (watched or not). */
  forgetPidfd(pidfd: number): void {
    this.#command({ op: "forget-pidfd", pidfd });
  }

  /** Stops accepting and reading; closes the listening socket and every connection. */
  async close(): Promise<void> {
    this.#open.clear();
    this.#command({ op: "stop" });
    await this.#exited;
    process.off("exit", this.#stopOnExit);
    this.#commands.close();
    libc.close(this.wakeFd);
    if (this.listenFd >= 0) libc.close(this.listenFd);
  }

  #onWorkerEvent(ev: ServerEvent): void {
    switch (ev.type) {
      case "ready":
        return;
      case "connection":
        this.#open.add(ev.conn);
        break;
      case "message":
        // Read before the main thread closed the connection: nobody wants it now.
        if (!this.#open.has(ev.conn)) {
          for (const fd of ev.fds) libc.close(fd);
          return;
        }
        break;
      case "closed":
        if (!this.#open.delete(ev.conn)) return;
        this.#command({ op: "close", conn: ev.conn });
        break;
    }
    this.emit("event", ev);
  }

  #command(cmd: ServerCommand): void {
    this.#commands.postMessage(cmd);
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    libc.write(this.wakeFd, one, 8);
  }
}
