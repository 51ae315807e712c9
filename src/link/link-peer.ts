// What the host and guest sides of the link share: a frame channel, the
// resync rule, heartbeats, and how a session ends (peer ERROR, GOODBYE,
// framing loss, silence, hangup, close). Each side adds its own handshake
// role and messages in host-link.ts and guest-link.ts.
import { FrameChannel } from "./frame-channel.js";
import { Flag, HEADER_SIZE } from "./frame-header.js";
import { LinkError, LinkErrorCode, linkErrorName } from "./link-error.js";
import { Liveness } from "./liveness.js";
import { Inbound, pb } from "./messages.js";
import { RequestCode } from "./request-code.js";
import { DEFAULT_RESYNC_TIMERS, Resync, ResyncTimers } from "./resync.js";
import { buildFrame, type Encodable } from "./frame-sender.js";
import { MarkerKind, newNonce } from "./sync-marker.js";
import { peerText } from "./peer-text.js";
import { ByteStream } from "./transport/byte-stream.js";
import { iopf } from "../gen/guest_link.js";

/** The most of a peer's ERROR or GOODBYE message kept in a session's end reason. */
export const PEER_MESSAGE_CHARS = 200;

export type GoodbyeReason = iopf.link.v1.GoodbyeReason;

/** A goodbye reason's name; a peer may send one this side does not know, shown by number. */
function goodbyeName(reason: number): string {
  return reason !== 0 && pb.GoodbyeReason[reason] !== undefined ? pb.GoodbyeReason[reason]! : `GOODBYE_REASON(${reason})`;
}

/** Why a session ended, as a category an operator can count and alert on (the reason text says more). */
export const SESSION_END_CAUSES = ["goodbye-received", "goodbye-sent", "peer-error", "protocol-error", "new-sync", "hangup", "closed"] as const;
export type SessionEndCause = (typeof SESSION_END_CAUSES)[number];

export interface BatchOutcome<T> {
  /** False when the stream asks the caller to wait for "drain". */
  writable: boolean;
  /** Items whose encoding alone is over the agreed max_payload: not sent. */
  tooLarge: T[];
}

export abstract class LinkPeer {
  protected readonly channel: FrameChannel;
  protected readonly resync: Resync;
  protected readonly liveness: Liveness;
  /** After close() or the stream's end: nothing that arrives is acted on any more. */
  protected stopped = false;
  /** The reason of the last GOODBYE the peer sent, or null. */
  peerGoodbye: GoodbyeReason | null = null;

  constructor(
    stream: ByteStream,
    protected readonly peerName: string,
    timers: ResyncTimers = DEFAULT_RESYNC_TIMERS,
  ) {
    this.channel = new FrameChannel(stream, {
      message: (msg) => {
        if (!this.stopped) this.onMessage(msg);
      },
      marker: (kind, nonce) => {
        if (!this.stopped) this.onMarker(kind, nonce);
      },
      error: (err) => this.fail(err),
      hangup: () => this.onHangup(),
      drain: () => this.onDrain(),
      close: (err) => this.onClose(err),
    });
    this.resync = new Resync(this.channel, timers);
    this.liveness = new Liveness(
      this.channel,
      () => this.channel.send(RequestCode.HEARTBEAT, 0, this.channel.newRequestId(), pb.Heartbeat, { sentUs: Math.floor(performance.now() * 1000) }),
      (silentMs) => this.fail(new LinkError(LinkErrorCode.HEARTBEAT_TIMEOUT, `nothing from the ${this.peerName} for ${Math.round(silentMs)} ms`)),
    );
  }

  /** Starts the first resync; the handshake follows by itself. */
  start(): void {
    this.resync.start();
  }

  get description(): string {
    return this.channel.stream.description;
  }

  /**
   * Ends the session in order and closes the stream once the goodbye is
   * written. The last thing written asks the peer for a reply (GOODBYE with
   * NEED_REPLY in a session, otherwise a SYNC, which every peer answers with
   * an ACK): on a virtio-serial port that reply is what completes the read
   * sleeping in the kernel, so that the port's fd can be released
   * (ByteStream.released) and the process can exit.
   */
  close(reason: GoodbyeReason = pb.GoodbyeReason.GOODBYE_SHUTDOWN, message = "shutting down"): void {
    if (this.stopped) return;
    if (this.sessionActive()) this.goodbye(reason, message, true);
    else this.channel.sendMarker(MarkerKind.SYNC, newNonce());
    this.shutdown();
    this.channel.end();
  }

  /** Says goodbye to the peer and ends the session; the stream stays open. */
  goodbye(reason: GoodbyeReason, message: string, needReply = false): void {
    if (this.sessionActive()) {
      this.channel.send(RequestCode.GOODBYE, needReply ? Flag.NEED_REPLY : 0, this.channel.newRequestId(), pb.Goodbye, { reason, message });
      this.endSession(`goodbye sent: ${message}`, "goodbye-sent");
    }
  }

  /** Ends the session on a protocol error: tells the peer why, then resyncs. */
  protected fail(err: LinkError): void {
    if (this.stopped) return;
    this.channel.send(RequestCode.ERROR, 0, this.channel.newRequestId(), pb.Error, { code: err.code, message: err.detail });
    this.endSession(err.message, "protocol-error");
    this.resync.start();
  }

  /**
   * Sends items in frames of at most maxBatch entries and maxPayload bytes,
   * each built by body(): a batch whose encoding is over the payload limit
   * is split in halves. An item too large to go even alone is not sent but
   * returned, for the caller to settle another way.
   */
  protected sendBatched<T, B>(code: number, type: Encodable<B>, items: T[], limits: { maxBatch: number; maxPayload: number }, body: (batch: T[]) => B): BatchOutcome<T> {
    const outcome: BatchOutcome<T> = { writable: true, tooLarge: [] };
    for (let i = 0; i < items.length; i += limits.maxBatch) {
      const batch = items.length <= limits.maxBatch ? items : items.slice(i, i + limits.maxBatch);
      this.sendFitting(code, type, batch, limits.maxPayload, body, outcome);
    }
    return outcome;
  }

  /**
   * Sends items [0, count) in order, packed into frames of at most maxBatch
   * items and maxPayload bytes: entryBytes(i) is what item i adds to a
   * payload, frame(from, to, payloadBytes) builds the frame of items
   * [from, to). An item over maxPayload alone is not sent; its index is
   * returned, for the caller to settle another way.
   */
  protected sendPacked(count: number, entryBytes: (i: number) => number, limits: { maxBatch: number; maxPayload: number },
    frame: (from: number, to: number, payloadBytes: number) => Buffer): { writable: boolean; tooLarge: number[] } {
    const out = { writable: true, tooLarge: [] as number[] };
    let from = 0, bytes = 0;
    const flush = (to: number): void => {
      if (to > from) out.writable = this.channel.write(frame(from, to, bytes));
    };
    for (let i = 0; i < count; i++) {
      const n = entryBytes(i);
      if (n > limits.maxPayload) {
        flush(i);
        out.tooLarge.push(i);
        from = i + 1;
        bytes = 0;
        continue;
      }
      if (i - from >= limits.maxBatch || bytes + n > limits.maxPayload) {
        flush(i);
        from = i;
        bytes = 0;
      }
      bytes += n;
    }
    flush(count);
    return out;
  }

  private sendFitting<T, B>(code: number, type: Encodable<B>, batch: T[], maxPayload: number, body: (batch: T[]) => B, outcome: BatchOutcome<T>): void {
    const frame = buildFrame(code, 0, this.channel.newRequestId(), type, body(batch));
    if (frame.length - HEADER_SIZE <= maxPayload) {
      outcome.writable = this.channel.write(frame);
      return;
    }
    if (batch.length === 1) {
      outcome.tooLarge.push(batch[0] as T);
      return;
    }
    const half = batch.length >> 1;
    this.sendFitting(code, type, batch.slice(0, half), maxPayload, body, outcome);
    this.sendFitting(code, type, batch.slice(half), maxPayload, body, outcome);
  }

  protected abstract sessionActive(): boolean;
  /** Session bookkeeping when a session ends for any reason; must be idempotent. */
  protected abstract endSession(reason: string, cause: SessionEndCause): void;
  protected abstract onAligned(): void;
  protected abstract onNewPeerSync(): void;
  protected abstract onSessionMessage(msg: Inbound): void;
  protected abstract onDrain(): void;
  protected abstract onClosed(err?: Error): void;

  private onMarker(kind: MarkerKind, nonce: bigint): void {
    const what = this.resync.onMarker(kind, nonce);
    if (what === "aligned") this.onAligned();
    else if (what === "new-peer-sync") this.onNewPeerSync();
  }

  private onMessage(msg: Inbound): void {
    switch (msg.kind) {
      case "heartbeat":
        if (msg.needReply) this.channel.send(RequestCode.HEARTBEAT, Flag.REPLY, msg.id, pb.Heartbeat, { sentUs: msg.body.sentUs });
        return;
      case "error":
        // The peer ends the session and resyncs; wait for its SYNC.
        this.endSession(`${this.peerName} reported ${linkErrorName(msg.body.code)}: ${peerText(msg.body.message, PEER_MESSAGE_CHARS)}`, "peer-error");
        return;
      case "goodbye":
        if (msg.reply) return;
        this.peerGoodbye = msg.body.reason;
        if (msg.needReply) this.channel.send(RequestCode.GOODBYE, Flag.REPLY, msg.id, pb.Goodbye, {});
        this.endSession(`${this.peerName} said goodbye (${goodbyeName(msg.body.reason)}): ${msg.body.message ? peerText(msg.body.message, PEER_MESSAGE_CHARS) : "no message"}`, "goodbye-received");
        return;
      default:
        this.onSessionMessage(msg);
    }
  }

  private onHangup(): void {
    this.endSession(`${this.peerName} hung up`, "hangup");
    this.resync.start();
  }

  private onClose(err?: Error): void {
    this.endSession(err ? `stream failed: ${err.message}` : "stream closed", "closed");
    this.shutdown();
    this.onClosed(err);
  }

  private shutdown(): void {
    this.stopped = true;
    this.resync.stop();
    this.liveness.stop();
  }
}
