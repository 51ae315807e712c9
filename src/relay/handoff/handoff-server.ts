// The handoff socket (docs/handoff.md): a VMM connects, sends fault fds with
// a JSON description, and detaches them again. This file speaks the
// protocol and decides who may talk; what attach and detach do is the
// handler's (handoff-handler.ts: the relay's queues; a dummy in tests).
//
// Binding: the handoff is bound to one VMM process (its pidfd): the first
// peer whose attach succeeds, or the process a manager names (vmmPid).
// Only root is a manager (a libvirt hook, an operator's iopfctl). Any other
// peer, whatever its uid, must be the bound VMM itself: every QEMU under
// libvirt shares one uid, and the relay may run as that uid too, so a uid
// tells no VM from another. When the VMM exits, the handler lets go of
// everything handed over, and the handoff is free for the next VMM.
//
// Requests are carried out one at a time, whichever connection they came
// on: a detach and an attach of the same queue never interleave.
import { chownSync, readFileSync } from "node:fs";
import { MAX_MESSAGE_BYTES, SeqpacketServer, type ServerEvent } from "../../kernel/seqpacket-server.js";
import { SyscallError } from "../../kernel/errno.js";
import { connectSeqpacket, MAX_FDS_PER_MESSAGE, pidfdOpen, type PeerCred } from "../../kernel/unix-rights.js";
import * as libc from "../../kernel/libc.js";
import { listenProblem } from "../../link/transport/transport-error.js";
import { removeStaleSocket } from "../../link/transport/unix-socket-file.js";
import { Logger } from "../log.js";
import { StartupError } from "../startup-error.js";
import { RateLimitedLog } from "../rate-limited-log.js";
import { AttachQueue, checkRequest, decodeRequest, encodeReply, HANDOFF_VERSION, HandoffError, HandoffReply, HandoffRequest, refusal } from "./handoff-message.js";

/** What attach and detach do; the server only speaks the protocol. */
export interface HandoffHandler {
  /**
   * Takes the queues over, all or nothing: throws HandoffError (nothing
   * taken) or returns each queue's device count. On success the fds named
   * by the queues are the handler's; on a throw the server closes them.
   */
  attach(queues: AttachQueue[], fds: number[], peer: PeerCred): Promise<{ faultId: number; devices: number }[]>;
  /** Stops forwarding the devices (or the whole queue), answers what it holds of them, closes a whole queue's fd after. */
  detach(faultId: number, devIds: number[] | null): Promise<{ answered: number; closed: boolean }>;
  /** The bound VMM exited: drop what it handed over without answering, close its fds. */
  vmmGone(pid: number): Promise<void>;
}

export interface HandoffOptions {
  /** Make the socket 0660 with this group instead of 0600. */
  group?: string | null;
  log: Logger;
}

interface Connection {
  fd: number;
  peer: PeerCred;
  /** The peer's pidfd until it binds the handoff (then the binding's) or leaves (then closed). */
  pidfd: number | null;
}

/** Why a peer may not make a request, or null when it may. */
type Verdict = { error: string; close: boolean } | null;

function gidOf(group: string): number {
  const line = readFileSync("/etc/group", "utf8").split("\n").find((l) => l.split(":")[0] === group);
  if (!line) throw new HandoffError(`--handoff-group ${group}: no such group in /etc/group; create it or name the group the VMM runs in`);
  return Number(line.split(":")[2]);
}

/** Whether a SOCK_SEQPACKET listener answers at path (a stale file refuses). */
async function seqpacketListens(path: string): Promise<boolean> {
  try {
    libc.close(connectSeqpacket(path));
    return true;
  } catch (err) {
    if (err instanceof SyscallError && err.code === "ECONNREFUSED") return false;
    throw err;
  }
}

export class HandoffServer {
  private readonly conns = new Map<number, Connection>();
  private bound: { pid: number; pidfd: number } | null = null;
  /** Every request, from any connection, waits for the one before it. */
  private chain: Promise<void> = Promise.resolve();
  private readonly refusedPeers: RateLimitedLog;

  private constructor(
    private readonly server: SeqpacketServer,
    private readonly handler: HandoffHandler,
    private readonly log: Logger,
  ) {
    this.refusedPeers = new RateLimitedLog((msg, fields) => log.level("warn", msg, fields), "a process other than the VMM bound to this handoff was refused");
    server.on("event", (ev: ServerEvent) => this.onEvent(ev));
  }

  get description(): string {
    return this.server.description;
  }

  /** The VMM's pid once one is bound. */
  get boundPid(): number | null {
    return this.bound?.pid ?? null;
  }

  static async listen(path: string, handler: HandoffHandler, opts: HandoffOptions): Promise<HandoffServer> {
    const gid = opts.group ? gidOf(opts.group) : null;
    await removeStaleSocket(path, seqpacketListens);
    // Created with the final mode in the bind itself: no window with a wider one.
    const previous = process.umask(gid === null ? 0o177 : 0o117);
    let server: SeqpacketServer;
    try {
      server = await SeqpacketServer.listen(path);
    } catch (err) {
      if (!(err instanceof SyscallError)) throw err;
      throw new StartupError(`handoff socket: cannot listen on unix:${path}: ${listenProblem({ kind: "unix", path }, err)}`, { cause: err });
    } finally {
      process.umask(previous);
    }
    if (gid !== null) chownSync(path, -1, gid);
    opts.log("handoff socket listening", { on: `unix:${path}`, mode: gid === null ? "0600" : "0660", ...(opts.group ? { group: opts.group } : {}) });
    return new HandoffServer(server, handler, opts.log);
  }

  close(): Promise<void> {
    if (this.bound) this.server.forgetPidfd(this.bound.pidfd);
    this.bound = null;
    return this.server.close();
  }

  private onEvent(ev: ServerEvent): void {
    switch (ev.type) {
      case "connection":
        this.conns.set(ev.conn, { fd: ev.conn, peer: ev.peer, pidfd: ev.pidfd });
        return;
      case "message": {
        const conn = this.conns.get(ev.conn);
        if (!conn) {
          for (const fd of ev.fds) libc.close(fd);
          return;
        }
        this.chain = this.chain.then(() => this.onMessage(conn, Buffer.from(ev.data), ev.fds, ev.truncated));
        return;
      }
      case "closed": {
        const conn = this.conns.get(ev.conn);
        if (conn) this.forget(conn);
        return;
      }
      case "exited":
        void this.onExited(ev.pidfd);
        return;
      case "error":
        this.log.level("warn", "handoff socket", { error: ev.message });
        return;
      case "ready":
        return;
    }
  }

  /** Only root manages the relay: names a VMM, or hands over queues tied to none. */
  private manager(peer: PeerCred): boolean {
    return peer.uid === 0;
  }

  /** Whether this peer may make this request now (docs/handoff.md, section 3). */
  private verdict(peer: PeerCred, req: HandoffRequest): Verdict {
    if (this.manager(peer)) return null;
    if (this.bound && peer.pid !== this.bound.pid) {
      this.refusedPeers.report("other", { pid: peer.pid, uid: peer.uid, boundPid: this.bound.pid });
      return { error: `this relay's handoff is bound to process ${this.bound.pid}, the VMM that attached first; process ${peer.pid} may not attach or detach`, close: true };
    }
    if (req.op === "attach" && req.vmmPid !== null) {
      return { error: `attach.vmmPid: only root may name the VMM; process ${peer.pid} (uid ${peer.uid}) hands over its own queues: leave vmmPid out`, close: false };
    }
    if (req.op === "detach" && !this.bound) {
      return { error: `no VMM is bound to this handoff, so process ${peer.pid} (uid ${peer.uid}) has nothing of its own to detach; only root may detach what root handed over`, close: false };
    }
    return null;
  }

  private async onMessage(conn: Connection, data: Buffer, fds: number[], truncated: boolean): Promise<void> {
    let reply: HandoffReply;
    if (truncated) {
      for (const fd of fds) libc.close(fd);
      this.answer(conn, refusal(null, `expected a message of at most ${MAX_MESSAGE_BYTES} bytes with at most ${MAX_FDS_PER_MESSAGE} fds, got more; nothing was done`));
      this.closeConnection(conn);
      return;
    }
    let op: string | null = null;
    let close = false;
    try {
      const decoded = decodeRequest(data.toString("utf8"));
      op = decoded.op;
      const req = checkRequest(decoded, fds.length);
      const verdict = this.verdict(conn.peer, req);
      if (verdict) {
        close = verdict.close;
        throw new HandoffError(verdict.error);
      }
      if (req.op === "attach") {
        // A manager's queues belong to the VMM it names; a VMM's, to itself.
        const vmm = req.vmmPid ?? (this.manager(conn.peer) ? null : conn.peer.pid);
        if (this.bound && vmm !== null && vmm !== this.bound.pid) {
          throw new HandoffError(`this relay's handoff is bound to VMM process ${this.bound.pid}; it serves one VM: detach that VM's queues, or let it exit, first`);
        }
        const own = vmm === conn.peer.pid;
        const vmmPidfd = vmm === null || this.bound ? null : own ? this.takePidfd(conn) : pidfdOpen(vmm);
        try {
          const queues = await this.handler.attach(req.queues, fds, conn.peer);
          if (vmmPidfd !== null) this.bind(vmm!, vmmPidfd);
          reply = { v: HANDOFF_VERSION, op: "attach", ok: true, queues };
        } catch (err) {
          // The connection's own pidfd goes back to it: its peer may try again.
          if (vmmPidfd !== null && own && this.conns.get(conn.fd) === conn) conn.pidfd = vmmPidfd;
          else if (vmmPidfd !== null) libc.close(vmmPidfd);
          throw err;
        }
      } else if (req.op === "detach") {
        const { answered, closed } = await this.handler.detach(req.faultId, req.devIds);
        reply = { v: HANDOFF_VERSION, op: "detach", ok: true, answered, closed };
      } else {
        throw new HandoffError(`op: "${req.op}" is the keeper's to send, not a peer's`);
      }
    } catch (err) {
      for (const fd of fds) libc.close(fd);
      if (!(err instanceof HandoffError)) this.log.level("error", "a handoff request failed inside the relay", { op, error: (err as Error).message });
      reply = refusal(op, err instanceof HandoffError ? err.message : `the relay failed: ${(err as Error).message}`);
    }
    this.answer(conn, reply);
    if (close) this.closeConnection(conn);
  }

  /** Sends the reply, unless the connection closed meanwhile (its fd number may be another peer's now). */
  private answer(conn: Connection, reply: HandoffReply): void {
    if (this.conns.get(conn.fd) !== conn) return;
    if (!this.server.reply(conn.fd, encodeReply(reply))) this.closeConnection(conn);
  }

  private closeConnection(conn: Connection): void {
    if (this.conns.get(conn.fd) !== conn) return;
    this.server.closeConnection(conn.fd);
    this.forget(conn);
  }

  /** The connection is gone: its requests still queued get no reply, and its pidfd, unless it bound the handoff, is closed. */
  private forget(conn: Connection): void {
    this.conns.delete(conn.fd);
    if (conn.pidfd !== null) this.server.forgetPidfd(conn.pidfd);
    conn.pidfd = null;
  }

  /** The connection's pidfd, now the caller's (closed when the VMM exits). */
  private takePidfd(conn: Connection): number {
    const pidfd = conn.pidfd;
    conn.pidfd = null;
    if (pidfd === null) throw new HandoffError("the connection's peer could not be identified; reconnect and try again");
    return pidfd;
  }

  private bind(pid: number, pidfd: number): void {
    this.bound = { pid, pidfd };
    this.server.watchExit(pidfd);
    this.log("handoff bound to the VMM: its fault queues live as long as it does", { pid });
  }

  private async onExited(pidfd: number): Promise<void> {
    const bound = this.bound;
    libc.close(pidfd);
    if (!bound || bound.pidfd !== pidfd) return;
    this.bound = null;
    this.log.level("warn", "the VMM that handed its fault queues over exited: letting go of them", { pid: bound.pid });
    await this.handler.vmmGone(bound.pid);
  }
}
