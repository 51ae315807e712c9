// The fixed 16-byte little-endian frame header:
//   u32 code | u32 flags | u32 id | u32 size (payload bytes that follow)
// flags: bits 0-1 version, bit 2 REPLY, bit 3 NEED_REPLY, bit 4 ERROR;
// every other bit is reserved and must be zero.
import { LinkError, LinkErrorCode } from "./link-error.js";
import { isRequestCode, RequestCode, requestCodeName } from "./request-code.js";

export const HEADER_SIZE = 16;
export const PROTOCOL_VERSION = 1;

export const Flag = {
  VERSION_MASK: 0x3,
  /** This frame answers the request with the same id. */
  REPLY: 1 << 2,
  /** The sender wants a reply to this request. */
  NEED_REPLY: 1 << 3,
  /** A reply whose payload is an Error instead of the code's reply message. */
  ERROR: 1 << 4,
} as const;

const KNOWN_FLAGS = Flag.VERSION_MASK | Flag.REPLY | Flag.NEED_REPLY | Flag.ERROR;

/**
 * The flags a frame of this code may carry besides the version. Only HELLO,
 * HEARTBEAT and GOODBYE have replies, and only a HELLO's reply can be an
 * error: any other request is processed without a word back, so asking for
 * a reply, or sending one, means nothing.
 */
export function allowedFlags(code: RequestCode): number {
  switch (code) {
    case RequestCode.HELLO:
      return Flag.REPLY | Flag.NEED_REPLY | Flag.ERROR;
    case RequestCode.HEARTBEAT:
    case RequestCode.GOODBYE:
      return Flag.REPLY | Flag.NEED_REPLY;
    default:
      return 0;
  }
}

export interface FrameHeader {
  code: number;
  flags: number;
  id: number;
  size: number;
}

export function writeHeader(buf: Uint8Array, offset: number, h: FrameHeader): void {
  const view = new DataView(buf.buffer, buf.byteOffset + offset, HEADER_SIZE);
  view.setUint32(0, h.code, true);
  view.setUint32(4, h.flags, true);
  view.setUint32(8, h.id, true);
  view.setUint32(12, h.size, true);
}

export function readHeader(buf: Buffer, offset: number): FrameHeader {
  return {
    code: buf.readUInt32LE(offset),
    flags: buf.readUInt32LE(offset + 4),
    id: buf.readUInt32LE(offset + 8),
    size: buf.readUInt32LE(offset + 12),
  };
}

/**
 * Checks a header before any payload byte is buffered; throws the LinkError
 * for the first thing wrong, in the order a reader would notice it.
 */
export function validateHeader(h: FrameHeader, maxPayload: number): void {
  const version = h.flags & Flag.VERSION_MASK;
  if (version !== PROTOCOL_VERSION) {
    throw new LinkError(LinkErrorCode.BAD_VERSION, `frame header version ${version}, expected ${PROTOCOL_VERSION}`);
  }
  const reserved = h.flags & ~KNOWN_FLAGS;
  if (reserved !== 0) {
    throw new LinkError(LinkErrorCode.BAD_FLAGS, `reserved flag bits 0x${(reserved >>> 0).toString(16)} set in flags 0x${(h.flags >>> 0).toString(16)}`);
  }
  if ((h.flags & Flag.REPLY) !== 0 && (h.flags & Flag.NEED_REPLY) !== 0) {
    throw new LinkError(LinkErrorCode.BAD_FLAGS, "REPLY and NEED_REPLY both set: a reply cannot ask for a reply");
  }
  if ((h.flags & Flag.ERROR) !== 0 && (h.flags & Flag.REPLY) === 0) {
    throw new LinkError(LinkErrorCode.BAD_FLAGS, "ERROR set without REPLY: only a reply can carry an error flag (use the ERROR request otherwise)");
  }
  if (!isRequestCode(h.code)) {
    throw new LinkError(LinkErrorCode.UNKNOWN_CODE, `request code ${h.code} (0x${(h.code >>> 0).toString(16)}) is not a guest link request`);
  }
  const notAllowed = h.flags & ~Flag.VERSION_MASK & ~allowedFlags(h.code);
  if (notAllowed !== 0) {
    throw new LinkError(LinkErrorCode.BAD_FLAGS, `${requestCodeName(h.code)} with flags 0x${(h.flags >>> 0).toString(16)}: ${flagNames(notAllowed)} not allowed on it (only HELLO, HEARTBEAT and GOODBYE have replies, and only a HELLO's reply an ERROR)`);
  }
  if (h.size > maxPayload) {
    throw new LinkError(LinkErrorCode.PAYLOAD_TOO_LARGE, `${requestCodeName(h.code)} payload of ${h.size} bytes, the limit is ${maxPayload}`);
  }
}

const FLAG_NAMES: [string, number][] = [["REPLY", Flag.REPLY], ["NEED_REPLY", Flag.NEED_REPLY], ["ERROR", Flag.ERROR]];

function flagNames(flags: number): string {
  return FLAG_NAMES.filter(([, bit]) => (flags & bit) !== 0).map(([name]) => name).join("+");
}
