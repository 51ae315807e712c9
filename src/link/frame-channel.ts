// Moves frames and markers over a ByteStream, and nothing else: no session
// state lives here. Inbound frames are decoded; any framing or decoding
// failure is reported once as a LinkError and leaves the receiver hunting.
import { FrameHeader } from "./frame-header.js";
import { FrameReceiver } from "./frame-receiver.js";
import { buildFrame, Encodable } from "./frame-sender.js";
import { LinkError } from "./link-error.js";
import { decodeFrame, Inbound } from "./messages.js";
import { encodeMarker, MarkerKind } from "./sync-marker.js";
import { HANDSHAKE_MAX_PAYLOAD } from "./negotiation.js";
import { ByteStream } from "./transport/byte-stream.js";

/**
 * Bytes written while the stream reports itself full (write() returned false,
 * no "drain" since) before the peer is cut off. A peer that writes without
 * reading (SYNCs each drawing an ACK and a HELLO, heartbeats with NEED_REPLY)
 * would otherwise make this side buffer replies without bound. Well above
 * what the relay writes of its own accord while full: one burst of page
 * requests of at most max_in_flight groups.
 */
export const MAX_UNREAD_BYTES = 16 * 1024 * 1024;
/**
 * What each queued write costs beyond its bytes: Node keeps a write request
 * per call (measured: a flood of 21-byte heartbeat replies held about ten
 * times their size), so a flood of tiny replies is cut off sooner.
 */
const WRITE_OVERHEAD_BYTES = 256;

export interface FrameChannelEvents {
  message(msg: Inbound): void;
  marker(kind: MarkerKind, nonce: bigint): void;
  /** Framing or decoding failed; the receiver now hunts for a new alignment. */
  error(err: LinkError): void;
  hangup(): void;
  drain(): void;
  close(err?: Error): void;
}

export class FrameChannel {
  private readonly receiver: FrameReceiver;
  private nextRequestId = 1;
  /**
   * Monotonic milliseconds of the last frame or marker parsed, and of the last
   * write. Parsed, not merely received: a receiver stuck in a stale frame's
   * payload, swallowing the peer's SYNCs, must look silent so that liveness
   * ends the session and resyncs.
   */
  lastReceivedMs = performance.now();
  lastSentMs = performance.now();
  private closed = false;
  /** Bytes written since the stream last said it is full; null while it is not. */
  private unread: number | null = null;

  constructor(
    readonly stream: ByteStream,
    private readonly events: FrameChannelEvents,
  ) {
    this.receiver = new FrameReceiver(
      {
        frame: (header, payload) => this.onFrame(header, payload),
        marker: (kind, nonce) => {
          this.lastReceivedMs = performance.now();
          this.events.marker(kind, nonce);
        },
        error: (err) => this.events.error(err),
      },
      HANDSHAKE_MAX_PAYLOAD,
    );
    stream.on("data", (chunk) => this.receiver.push(chunk));
    stream.on("drain", () => {
      this.unread = null;
      this.events.drain();
    });
    stream.on("hangup", () => this.events.hangup());
    stream.on("close", (err) => {
      this.closed = true;
      this.events.close(err);
    });
  }

  get aligned(): boolean {
    return this.receiver.aligned;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes the parser holds for an incomplete frame (bounded by max payload). */
  get bufferedBytes(): number {
    return this.receiver.bufferedBytes;
  }

  hunt(nonce: bigint): void {
    this.receiver.hunt(nonce);
  }

  setMaxPayload(bytes: number): void {
    this.receiver.setMaxPayload(bytes);
  }

  newRequestId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = this.nextRequestId === 0xffffffff ? 1 : this.nextRequestId + 1;
    return id;
  }

  /** Sends one frame; false when the stream asks the caller to wait for "drain". */
  send<T>(code: number, flags: number, id: number, type: Encodable<T>, body: T): boolean {
    return this.write(buildFrame(code, flags, id, type, body));
  }

  sendMarker(kind: MarkerKind, nonce: bigint): boolean {
    return this.write(encodeMarker(kind, nonce));
  }

  write(bytes: Buffer): boolean {
    if (this.closed) return false;
    this.lastSentMs = performance.now();
    if (this.unread !== null) {
      this.unread += bytes.length + WRITE_OVERHEAD_BYTES;
      if (this.unread > MAX_UNREAD_BYTES) {
        this.closed = true;
        this.stream.destroy(new Error(`the peer left ${this.unread} bytes unread (limit ${MAX_UNREAD_BYTES}) while it kept writing; closed the stream: a peer must read what it asks for`));
        return false;
      }
    }
    const writable = this.stream.write(bytes);
    if (!writable) this.unread ??= 0;
    return writable;
  }

  end(): void {
    if (!this.closed) this.stream.end();
  }

  destroy(err?: Error): void {
    if (!this.closed) this.stream.destroy(err);
  }

  private onFrame(header: FrameHeader, payload: Buffer): void {
    this.lastReceivedMs = performance.now();
    let msg: Inbound;
    try {
      msg = decodeFrame(header, payload);
    } catch (err) {
      this.events.error(err as LinkError);
      return;
    }
    this.events.message(msg);
  }
}
