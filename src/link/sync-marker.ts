// Sync markers find the start of a fresh session in a stream that may hold
// stale bytes (virtio-serial keeps them and has no connection boundary).
// A marker is 16 bytes: an 8-byte magic and a u64 little-endian nonce.
//   SYNC "\xFFiopfSYN" + nonce: "I lost alignment; align on my ACK of this nonce"
//   ACK  "\xFFiopfACK" + nonce: "every byte after this marker is fresh"
// The first byte 0xFF never starts a frame (request codes are below 0xFF),
// so at a frame boundary a marker and a header cannot be confused. Inside a
// payload marker bytes mean nothing: markers are looked for only at frame
// boundaries, or anywhere while hunting, where a stale or forged marker can at
// worst draw an ACK nobody waits for (the awaited nonce is fresh and random).
import { randomBytes } from "node:crypto";

export const MARKER_SIZE = 16;
export const MARKER_FIRST_BYTE = 0xff;

export const MarkerKind = { SYNC: "sync", ACK: "ack" } as const;
export type MarkerKind = (typeof MarkerKind)[keyof typeof MarkerKind];

const MAGIC_PREFIX = Buffer.from([0xff, 0x69, 0x6f, 0x70, 0x66]); // "\xFFiopf"
const SYNC_SUFFIX = Buffer.from("SYN", "latin1");
const ACK_SUFFIX = Buffer.from("ACK", "latin1");

export function encodeMarker(kind: MarkerKind, nonce: bigint): Buffer {
  const buf = Buffer.allocUnsafe(MARKER_SIZE);
  MAGIC_PREFIX.copy(buf, 0);
  (kind === MarkerKind.SYNC ? SYNC_SUFFIX : ACK_SUFFIX).copy(buf, 5);
  buf.writeBigUInt64LE(nonce, 8);
  return buf;
}

/** The marker kind at buf[offset..offset+8), or null when those bytes are not a marker magic. */
export function markerKindAt(buf: Buffer, offset: number): MarkerKind | null {
  for (let i = 0; i < MAGIC_PREFIX.length; i++) {
    if (buf[offset + i] !== MAGIC_PREFIX[i]) return null;
  }
  if (buf[offset + 5] === 0x53 && buf[offset + 6] === 0x59 && buf[offset + 7] === 0x4e) return MarkerKind.SYNC;
  if (buf[offset + 5] === 0x41 && buf[offset + 6] === 0x43 && buf[offset + 7] === 0x4b) return MarkerKind.ACK;
  return null;
}

/**
 * How many bytes at buf[offset..] could still be the start of a marker magic
 * (they match the magic so far but the buffer ends): the hunter keeps only
 * these between chunks.
 */
export function markerPrefixLength(buf: Buffer, offset: number): number {
  const avail = buf.length - offset;
  for (let i = 0; i < avail && i < 8; i++) {
    const b = buf[offset + i];
    if (i < 5 ? b !== MAGIC_PREFIX[i] : b !== SYNC_SUFFIX[i - 5] && b !== ACK_SUFFIX[i - 5]) return 0;
  }
  return avail;
}

/** A fresh random nonce, never zero. */
export function newNonce(): bigint {
  for (;;) {
    const n = randomBytes(8).readBigUInt64LE(0);
    if (n !== 0n) return n;
  }
}
