// Parses the guest link byte stream into frames and markers, as an explicit
// state machine. Limits are checked on the header, before any payload byte
// is buffered; a payload that arrives whole in one chunk is passed on as a
// view of that chunk, without a copy.
//
//   HUNT      scan for a marker anywhere (bytes are stale until the peer
//             ACKs our fresh nonce); keep at most 15 bytes between chunks
//   BOUNDARY  at a frame boundary: 0xFF starts a marker, anything else a header
//   MARKER    collect the 16 marker bytes
//   HEADER    collect the 16 header bytes, validate them
//   PAYLOAD   collect `size` payload bytes
import { FrameHeader, HEADER_SIZE, readHeader, validateHeader } from "./frame-header.js";
import { LinkError, LinkErrorCode } from "./link-error.js";
import { MARKER_FIRST_BYTE, MARKER_SIZE, MarkerKind, markerKindAt, markerPrefixLength } from "./sync-marker.js";

const enum State {
  HUNT,
  BOUNDARY,
  MARKER,
  HEADER,
  PAYLOAD,
}

export interface FrameReceiverEvents {
  frame(header: FrameHeader, payload: Buffer): void;
  marker(kind: MarkerKind, nonce: bigint): void;
  /** Framing is lost; the receiver is hunting and discards bytes until a new alignment. */
  error(err: LinkError): void;
}

const EMPTY = Buffer.alloc(0);

export class FrameReceiver {
  private state = State.HUNT;
  private awaitedAck: bigint | null = null;
  private readonly scratch = Buffer.alloc(Math.max(HEADER_SIZE, MARKER_SIZE));
  private scratchFill = 0;
  private carry: Buffer = EMPTY;
  private header: FrameHeader | null = null;
  private payload: Buffer = EMPTY;
  private payloadFill = 0;

  constructor(
    private readonly events: FrameReceiverEvents,
    private maxPayload: number,
  ) {}

  /** Discard bytes until ACK(nonce) arrives; the first byte after it starts a frame. */
  hunt(nonce: bigint): void {
    this.state = State.HUNT;
    this.awaitedAck = nonce;
    this.carry = EMPTY;
    this.scratchFill = 0;
    this.payload = EMPTY;
    this.header = null;
  }

  /** True once the awaited ACK has been seen and frames are being parsed. */
  get aligned(): boolean {
    return this.state !== State.HUNT;
  }

  setMaxPayload(bytes: number): void {
    this.maxPayload = bytes;
  }

  /** Bytes held while waiting for the rest of a frame: bounded by max payload + 16. */
  get bufferedBytes(): number {
    return this.carry.length + this.scratchFill + (this.state === State.PAYLOAD ? this.payloadFill : 0);
  }

  push(chunk: Buffer): void {
    let buf = chunk;
    let pos = 0;
    if (this.state === State.HUNT && this.carry.length > 0) {
      buf = Buffer.concat([this.carry, chunk]);
      this.carry = EMPTY;
    }
    // Callbacks may call hunt(); the loop re-reads this.state every turn.
    while (pos < buf.length) {
      switch (this.state) {
        case State.HUNT:
          pos = this.scan(buf, pos);
          break;
        case State.BOUNDARY:
          this.scratchFill = 0;
          this.state = buf[pos] === MARKER_FIRST_BYTE ? State.MARKER : State.HEADER;
          break;
        case State.MARKER:
          pos = this.fillScratch(buf, pos, MARKER_SIZE);
          if (this.scratchFill === MARKER_SIZE) this.onBoundaryMarker();
          break;
        case State.HEADER:
          pos = this.onHeaderBytes(buf, pos);
          break;
        case State.PAYLOAD:
          pos = this.onPayloadBytes(buf, pos);
          break;
      }
    }
  }

  private scan(buf: Buffer, from: number): number {
    let i = buf.indexOf(MARKER_FIRST_BYTE, from);
    while (i !== -1) {
      if (i + MARKER_SIZE > buf.length) {
        if (markerPrefixLength(buf, i) === buf.length - i) {
          this.carry = Buffer.from(buf.subarray(i));
          return buf.length;
        }
      } else {
        const kind = markerKindAt(buf, i);
        if (kind !== null) {
          const nonce = buf.readBigUInt64LE(i + 8);
          if (kind === MarkerKind.ACK && nonce === this.awaitedAck) {
            this.awaitedAck = null;
            this.state = State.BOUNDARY;
          }
          this.events.marker(kind, nonce);
          return i + MARKER_SIZE;
        }
      }
      i = buf.indexOf(MARKER_FIRST_BYTE, i + 1);
    }
    return buf.length;
  }

  private fillScratch(buf: Buffer, pos: number, want: number): number {
    const n = Math.min(want - this.scratchFill, buf.length - pos);
    buf.copy(this.scratch, this.scratchFill, pos, pos + n);
    this.scratchFill += n;
    return pos + n;
  }

  private onBoundaryMarker(): void {
    const kind = markerKindAt(this.scratch, 0);
    if (kind === null) {
      this.lose(new LinkError(LinkErrorCode.BAD_MARKER, `0x${this.scratch.subarray(0, 8).toString("hex")} at a frame boundary is neither a frame header nor a sync marker`));
      return;
    }
    this.state = State.BOUNDARY;
    this.events.marker(kind, this.scratch.readBigUInt64LE(8));
  }

  private onHeaderBytes(buf: Buffer, pos: number): number {
    let header: FrameHeader;
    if (this.scratchFill === 0 && buf.length - pos >= HEADER_SIZE) {
      header = readHeader(buf, pos);
      pos += HEADER_SIZE;
    } else {
      pos = this.fillScratch(buf, pos, HEADER_SIZE);
      if (this.scratchFill < HEADER_SIZE) return pos;
      header = readHeader(this.scratch, 0);
    }
    try {
      validateHeader(header, this.maxPayload);
    } catch (err) {
      this.lose(err as LinkError);
      return pos;
    }
    if (header.size === 0) {
      this.state = State.BOUNDARY;
      this.events.frame(header, EMPTY);
      return pos;
    }
    if (buf.length - pos >= header.size) {
      this.state = State.BOUNDARY;
      this.events.frame(header, buf.subarray(pos, pos + header.size));
      return pos + header.size;
    }
    this.header = header;
    this.payload = Buffer.allocUnsafe(header.size);
    this.payloadFill = 0;
    this.state = State.PAYLOAD;
    return pos;
  }

  private onPayloadBytes(buf: Buffer, pos: number): number {
    const n = Math.min(this.payload.length - this.payloadFill, buf.length - pos);
    buf.copy(this.payload, this.payloadFill, pos, pos + n);
    this.payloadFill += n;
    if (this.payloadFill === this.payload.length) {
      const header = this.header as FrameHeader;
      const payload = this.payload;
      this.header = null;
      this.payload = EMPTY;
      this.state = State.BOUNDARY;
      this.events.frame(header, payload);
    }
    return pos + n;
  }

  private lose(err: LinkError): void {
    this.state = State.HUNT;
    this.awaitedAck = null;
    this.scratchFill = 0;
    this.events.error(err);
  }
}
