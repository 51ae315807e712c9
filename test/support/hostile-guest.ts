// A guest that speaks raw frames, for adversarial tests: it uses only the
// byte-level pieces of src/link (the frame parser, frame builder, markers),
// never GuestLink, so it can send whatever a malicious guest could: frames
// out of order, from the wrong side, with forged tags, or plain garbage.
// By default it behaves: resyncs, answers HELLO with a Welcome echoing the
// offer, records page requests, and keeps the session alive with heartbeats.
import { Flag } from "../../src/link/frame-header.js";
import { FrameReceiver } from "../../src/link/frame-receiver.js";
import { buildFrame, Encodable } from "../../src/link/frame-sender.js";
import { decodeFrame, pb, WireError, WireHello, WirePageRequest } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { encodeMarker, MarkerKind, newNonce } from "../../src/link/sync-marker.js";
import { MAX_LIMITS } from "../../src/link/negotiation.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { until } from "./memory-stream.js";

/** The Welcome body to answer a Hello with, or null to stay silent. */
export type WelcomePolicy = (hello: WireHello) => object | null;

export const echoOffer: WelcomePolicy = (hello) => ({
  version: 1, features: hello.features, limits: hello.limits, sessionEpoch: hello.sessionEpoch, software: "hostile-guest",
});

export class HostileGuest {
  readonly requests: WirePageRequest[] = [];
  readonly cancels: number[] = [];
  /** ERROR frames the relay sent: each is a session it ended on purpose. */
  readonly relayErrors: WireError[] = [];
  /** The reasons of the relay's GOODBYEs. */
  readonly goodbyes: number[] = [];
  /** Ids of the relay's replies to this guest's HEARTBEATs and GOODBYEs with NEED_REPLY. */
  readonly heartbeatReplies: number[] = [];
  readonly goodbyeReplies: number[] = [];
  /** HELLOs received (only the count and the last are kept: a SYNC storm draws a HELLO each). */
  hellos = 0;
  lastHello: WireHello | null = null;
  /** The epoch of the last Welcome sent: the session the guest believes in. */
  epoch = 0;
  welcome: WelcomePolicy = echoOffer;
  /** When set, each HELLO is refused: answered with this Error (a reply with the ERROR flag) instead of a Welcome. */
  refusal: { code: number; message: string } | null = null;
  closed = false;
  /** The nonce of the guest's last SYNC. */
  nonce = 0n;
  private nextId = 1;
  private readonly receiver: FrameReceiver;
  private heartbeat: NodeJS.Timeout | null = null;

  constructor(readonly stream: ByteStream) {
    this.receiver = new FrameReceiver({
      frame: (h, p) => this.onFrame(decodeFrame(h, p)),
      marker: (kind, nonce) => {
        if (kind === MarkerKind.SYNC) this.write(encodeMarker(MarkerKind.ACK, nonce));
      },
      // The relay never sends garbage; if it did, the test that checks relayErrors sees nothing and fails.
      error: (err) => this.relayErrors.push({ code: err.code, message: `guest parser: ${err.message}` }),
    }, MAX_LIMITS.maxPayload);
    stream.on("data", (chunk) => this.receiver.push(chunk));
    stream.on("close", () => {
      this.closed = true;
      this.stopHeartbeats();
    });
  }

  /** Resyncs with a fresh nonce (the relay sees a new peer) and starts heartbeats. */
  start(heartbeatMs = 200): this {
    this.resync();
    this.keepAlive(heartbeatMs);
    return this;
  }

  /** Sends a heartbeat every heartbeatMs, so the relay's liveness check sees a live guest. */
  keepAlive(heartbeatMs = 200): void {
    this.stopHeartbeats();
    this.heartbeat = setInterval(() => this.send(RequestCode.HEARTBEAT, pb.Heartbeat, { sentUs: 1 }), heartbeatMs);
    this.heartbeat.unref();
  }

  /** Hunts for the ACK of a fresh nonce, or of `nonce` (to resend a SYNC the relay already answered). */
  resync(nonce = newNonce()): void {
    this.nonce = nonce;
    this.receiver.hunt(this.nonce);
    this.write(encodeMarker(MarkerKind.SYNC, this.nonce));
  }

  stopHeartbeats(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  write(bytes: Uint8Array): boolean {
    return this.closed ? false : this.stream.write(bytes);
  }

  frame<T>(code: number, type: Encodable<T>, body: T, flags = 0, id = this.nextId++): Buffer {
    return buildFrame(code, flags, id, type, body);
  }

  send<T>(code: number, type: Encodable<T>, body: T, flags = 0, id?: number): boolean {
    return this.write(this.frame(code, type, body, flags, id));
  }

  /** code is a number, not the enum: a hostile guest may send codes the link does not define. */
  answer(tags: number[], code: number = pb.ResponseCode.RESPONSE_SUCCESS): boolean {
    return this.send(RequestCode.PAGE_RESPONSES, pb.PageResponseBatch, { responses: tags.map((tag) => ({ tag, code })) });
  }

  credit(window: number): boolean {
    return this.send(RequestCode.CREDIT, pb.CreditGrant, { window });
  }

  /**
   * A HEARTBEAT with NEED_REPLY; resolves once the relay's echo is in. The
   * relay handles frames in order, so by then it has handled everything
   * this guest wrote before, and everything it wrote before the echo arrived.
   */
  async barrier(): Promise<void> {
    const id = this.nextId++;
    this.send(RequestCode.HEARTBEAT, pb.Heartbeat, { sentUs: 1 }, Flag.NEED_REPLY, id);
    await until(() => this.heartbeatReplies.includes(id) || this.closed, 10_000, `the relay's echo of HEARTBEAT ${id}`);
    if (!this.heartbeatReplies.includes(id)) throw new Error(`the stream closed before the relay echoed HEARTBEAT ${id}`);
  }

  goodbye(reason: number, needReply = true): boolean {
    return this.send(RequestCode.GOODBYE, pb.Goodbye, { reason, message: "hostile guest leaving" }, needReply ? Flag.NEED_REPLY : 0);
  }

  /** Writes bytes with backpressure: resolves once the stream took them all. */
  async pour(chunks: Iterable<Uint8Array>): Promise<void> {
    for (const chunk of chunks) {
      if (this.closed) return;
      if (!this.write(chunk)) await this.drained();
    }
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
    });
  }

  close(): void {
    this.stopHeartbeats();
    this.stream.destroy();
  }

  private onFrame(msg: ReturnType<typeof decodeFrame>): void {
    switch (msg.kind) {
      case "hello": {
        this.hellos++;
        this.lastHello = msg.body;
        if (this.refusal) {
          this.send(RequestCode.HELLO, pb.Error, this.refusal, Flag.REPLY | Flag.ERROR, msg.id);
          return;
        }
        const body = this.welcome(msg.body);
        if (body === null) return;
        this.epoch = msg.body.sessionEpoch;
        this.send(RequestCode.HELLO, pb.Welcome, body, Flag.REPLY, msg.id);
        return;
      }
      case "page-requests":
        this.requests.push(...msg.body.requests);
        return;
      case "page-cancels":
        this.cancels.push(...msg.body.tags);
        return;
      case "error":
        this.relayErrors.push(msg.body);
        return;
      case "goodbye":
        if (msg.reply) this.goodbyeReplies.push(msg.id);
        else this.goodbyes.push(msg.body.reason);
        return;
      case "heartbeat":
        if (msg.reply) this.heartbeatReplies.push(msg.id);
        if (msg.needReply) this.send(RequestCode.HEARTBEAT, pb.Heartbeat, msg.body, Flag.REPLY, msg.id);
        return;
      default:
        return;
    }
  }
}
