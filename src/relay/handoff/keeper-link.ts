// The keeper's channel to its relay, a SOCK_SEQPACKET pair: the keeper owns
// the handoff socket and the fds handed over, and passes each request on to
// the relay it runs (with the fds), in the handoff protocol's own messages;
// the relay answers as it would a VMM. After a restart the keeper hands
// every queue over again, and the new relay sweeps each before reading.
// A request waits for a relay to be ready (one is being restarted) for
// RELAY_WAIT_MS at most: then it is refused, and nothing was done.
//
// Relay side: serveKeeperChannel. Keeper side: KeeperChannel.
import { SeqpacketServer, type ServerEvent } from "../../kernel/seqpacket-server.js";
import * as libc from "../../kernel/libc.js";
import { Logger } from "../log.js";
import { checkRequest, decodeRequest, encodeReply, HANDOFF_VERSION, HandoffError, HandoffReply, refusal } from "./handoff-message.js";
import { HandoffHandler } from "./handoff-server.js";

/** The relay serves the keeper's requests on the inherited fd, one after another. */
export async function serveKeeperChannel(fd: number, handler: HandoffHandler, log: Logger): Promise<SeqpacketServer> {
  const server = await SeqpacketServer.forConnections(`keeper channel (fd ${fd})`);
  let queue = Promise.resolve();
  server.on("event", (ev: ServerEvent) => {
    if (ev.type === "closed") log.level("warn", "the keeper's channel closed: no more handoffs reach this relay", { error: ev.error });
    if (ev.type !== "message") return;
    queue = queue.then(async () => {
      let reply: HandoffReply;
      let op: string | null = null;
      try {
        const decoded = decodeRequest(Buffer.from(ev.data).toString("utf8"));
        op = decoded.op;
        const req = checkRequest(decoded, ev.fds.length, true);
        if (req.op === "attach") reply = { v: HANDOFF_VERSION, op: "attach", ok: true, queues: await handler.attach(req.queues, ev.fds, { pid: 0, uid: 0, gid: 0 }) };
        else if (req.op === "detach") reply = { v: HANDOFF_VERSION, op: "detach", ok: true, ...(await handler.detach(req.faultId, req.devIds)) };
        else {
          await handler.vmmGone(req.vmmPid);
          reply = { v: HANDOFF_VERSION, op: "drop", ok: true };
        }
      } catch (err) {
        for (const f of ev.fds) libc.close(f);
        reply = refusal(op, err instanceof HandoffError ? err.message : `the relay failed: ${(err as Error).message}`);
      }
      server.reply(ev.conn, encodeReply(reply));
    });
  });
  server.adopt(fd);
  return server;
}

/** How long a request waits for a ready relay before the keeper refuses it. */
export const RELAY_WAIT_MS = 10_000;

/** The keeper's end: one request at a time, each waiting for the relay's reply. */
export class KeeperChannel {
  private server: SeqpacketServer | null = null;
  private fd = -1;
  private isReady = false;
  private waiting: ((reply: HandoffReply | null) => void) | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  private readyWaiters: (() => void)[] = [];

  private constructor(private readonly relayWaitMs: number) {}

  static async start(relayWaitMs = RELAY_WAIT_MS): Promise<KeeperChannel> {
    const ch = new KeeperChannel(relayWaitMs);
    ch.server = await SeqpacketServer.forConnections("keeper's channel to its relay");
    ch.server.on("event", (ev: ServerEvent) => ch.onEvent(ev));
    return ch;
  }

  /** A relay started with the other end of this pair: requests go to it from now on. */
  connect(keeperEnd: number): void {
    this.fd = keeperEnd;
    this.isReady = false;
    this.server!.adopt(keeperEnd);
  }

  /**
   * The relay said it is ready: `first` hands it what it must have before
   * anything else (every queue held), then the requests waiting go.
   */
  async ready(first: (send: (body: object, fds: readonly number[]) => Promise<HandoffReply | null>) => Promise<void>): Promise<void> {
    await first((body, fds) => this.send(body, fds, false));
    this.isReady = true;
    for (const w of this.readyWaiters.splice(0)) w();
  }

  /** The relay exited: its end of the pair is gone; the next relay gets a new pair. */
  disconnect(): void {
    if (this.fd >= 0) this.server!.closeConnection(this.fd);
    this.fd = -1;
    this.isReady = false;
    this.waiting?.(null);
    this.waiting = null;
  }

  /** Sends a request (with fds) once a relay is ready, and resolves with its reply; null when the relay went away first. */
  request(body: object, fds: readonly number[] = []): Promise<HandoffReply | null> {
    const next = this.chain.then(() => this.send(body, fds));
    this.chain = next.catch(() => undefined);
    return next;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  /** Whether a relay is ready now, or becomes ready within relayWaitMs. */
  private connected(): Promise<boolean> {
    if (this.isReady) return Promise.resolve(true);
    return new Promise((resolve) => {
      const ready = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== ready);
        resolve(false);
      }, this.relayWaitMs);
      timer.unref();
      this.readyWaiters.push(ready);
    });
  }

  private async send(body: object, fds: readonly number[], wait = true): Promise<HandoffReply | null> {
    if (wait && !(await this.connected())) {
      const op = (body as { op?: unknown }).op;
      return refusal(typeof op === "string" ? op : null, `no relay has been ready for ${this.relayWaitMs / 1000} s (the keeper is starting it again: see its log); nothing was done: try again`);
    }
    if (this.fd < 0) return null;
    const reply = new Promise<HandoffReply | null>((resolve) => (this.waiting = resolve));
    if (!this.server!.reply(this.fd, Buffer.from(JSON.stringify(body)), fds)) {
      this.waiting = null;
      return null;
    }
    return reply;
  }

  private onEvent(ev: ServerEvent): void {
    if (ev.type === "message" && ev.conn === this.fd) {
      for (const f of ev.fds) libc.close(f);
      const w = this.waiting;
      this.waiting = null;
      w?.(JSON.parse(Buffer.from(ev.data).toString("utf8")) as HandoffReply);
    } else if (ev.type === "closed" && ev.conn === this.fd) {
      this.disconnect();
    }
  }
}
