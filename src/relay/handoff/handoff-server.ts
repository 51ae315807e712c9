// The handoff socket (docs/handoff.md): a VMM connects, sends fault fds with
// a JSON description, and detaches them again. This file speaks the
// protocol and decides who may talk; what attach and detach do is the
// handler's (handoff-handler.ts: the relay's queues; a dummy in tests).
//
// Binding: the handoff is bound to one VMM process (its pidfd): the first
// peer whose attach succeeds, or the process a manager names (vmmPid).
// Root and the relay's own user are managers (a libvirt hook, iopfctl) and
// may always talk; any other peer (every QEMU under libvirt shares one uid,
// so the uid cannot tell VMs apart) must be the bound VMM itself. When the
// VMM exits, the handler lets go of everything handed over, and the
// handoff is free for the next VMM.
import { chownSync, readFileSync } from "node:fs";
import { SeqpacketServer, type ServerEvent } from "../../kernel/seqpacket-server.js";
import { SyscallError } from "../../kernel/errno.js";
import { connectSeqpacket, pidfdOpen, type PeerCred } from "../../kernel/unix-rights.js";
import * as libc from "../../kernel/libc.js";
import { listenProblem } from "../../link/transport/transport-error.js";
import { removeStaleSocket } from "../../link/transport/unix-socket-file.js";
import { Logger } from "../log.js";
import { StartupError } from "../startup-error.js";
import { RateLimitedLog } from "../rate-limited-log.js";
import { AttachQueue, encodeReply, HANDOFF_VERSION, HandoffError, HandoffReply, parseRequest, refusal } from "./handoff-message.js";

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
  peer: PeerCred;
  /** Requests handled one after another. */
  queue: Promise<void>;
}

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
  /** Each connection's pidfd until its peer binds the handoff (then kept) or leaves (then closed). */
  private readonly pendingPidfds = new Map<number, number>();
  private bound: { pid: number; pidfd: number } | null = null;
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
        this.onConnection(ev.conn, ev.peer, ev.pidfd);
        return;
      case "message": {
        const conn = this.conns.get(ev.conn);
        if (!conn) {
          for (const fd of ev.fds) libc.close(fd);
          return;
        }
        conn.queue = conn.queue.then(() => this.onMessage(ev.conn, conn, Buffer.from(ev.data), ev.fds, ev.truncated));
        return;
      }
      case "closed": {
        this.conns.delete(ev.conn);
        const pidfd = this.pendingPidfds.get(ev.conn);
        this.pendingPidfds.delete(ev.conn);
        if (pidfd !== undefined) this.server.forgetPidfd(pidfd);
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

  /** Root and the relay's own user manage the relay; any other peer must be the VMM. */
  private trusted(peer: PeerCred): boolean {
    return peer.uid === 0 || peer.uid === process.getuid?.();
  }

  private onConnection(conn: number, peer: PeerCred, pidfd: number): void {
    if (this.bound && !this.trusted(peer) && peer.pid !== this.bound.pid) {
      this.refusedPeers.report("other", { pid: peer.pid, uid: peer.uid, boundPid: this.bound.pid });
      this.server.reply(conn, encodeReply(refusal("connect", `this relay's handoff is bound to process ${this.bound.pid}, the VMM that attached first; process ${peer.pid} may not attach or detach`)));
      this.server.closeConnection(conn);
      this.server.forgetPidfd(pidfd);
      return;
    }
    this.conns.set(conn, { peer, queue: Promise.resolve() });
    this.pendingPidfds.set(conn, pidfd);
  }

  private async onMessage(connFd: number, conn: Connection, data: Buffer, fds: number[], truncated: boolean): Promise<void> {
    let reply: HandoffReply;
    if (truncated) {
      for (const fd of fds) libc.close(fd);
      this.answer(connFd, refusal("(message)", `expected a message of at most 65536 bytes with at most 16 fds, got more; nothing was done`));
      this.server.closeConnection(connFd);
      return;
    }
    let op = "(message)";
    try {
      const req = parseRequest(data.toString("utf8"), fds.length);
      op = req.op;
      if (req.op === "attach") {
        const vmm = req.vmmPid ?? (this.trusted(conn.peer) ? null : conn.peer.pid);
        if (this.bound && vmm !== null && vmm !== this.bound.pid) {
          throw new HandoffError(`this relay's handoff is bound to VMM process ${this.bound.pid}; it serves one VM: detach that VM's queues, or let it exit, first`);
        }
        const vmmPidfd = vmm === null || this.bound ? null : vmm === conn.peer.pid ? this.takePidfd(connFd) : pidfdOpen(vmm);
        try {
          const queues = await this.handler.attach(req.queues, fds, conn.peer);
          if (vmmPidfd !== null) this.bind(vmm!, vmmPidfd);
          reply = { v: HANDOFF_VERSION, op: "attach", ok: true, queues };
        } catch (err) {
          if (vmmPidfd !== null) libc.close(vmmPidfd);
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
    this.answer(connFd, reply);
  }

  private answer(conn: number, reply: HandoffReply): void {
    if (!this.server.reply(conn, encodeReply(reply))) this.server.closeConnection(conn);
  }

  /** The connection's pidfd, now the caller's (closed when the VMM exits). */
  private takePidfd(conn: number): number {
    const pidfd = this.pendingPidfds.get(conn);
    this.pendingPidfds.delete(conn);
    if (pidfd === undefined) throw new HandoffError("the connection's peer could not be identified; reconnect and try again");
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
