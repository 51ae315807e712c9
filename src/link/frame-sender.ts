// Builds frames: header and protobuf payload encoded into one buffer, with
// no copy of the payload (the header is written first as four fixed32s and
// its size patched once the payload length is known).
import protobuf from "./protobuf-runtime.js";
import { Flag, HEADER_SIZE, PROTOCOL_VERSION } from "./frame-header.js";

export interface Encodable<T> {
  encode(message: T, writer?: protobuf.Writer): protobuf.Writer;
}

export function buildFrame<T>(code: number, flags: number, id: number, type: Encodable<T>, body: T): Buffer {
  const writer = protobuf.Writer.create();
  writer.fixed32(code).fixed32((flags & ~Flag.VERSION_MASK) | PROTOCOL_VERSION).fixed32(id).fixed32(0);
  type.encode(body, writer);
  const bytes = writer.finish();
  const frame = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  frame.writeUInt32LE(frame.length - HEADER_SIZE, 12);
  return frame;
}
