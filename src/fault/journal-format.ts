// The journal's on-disk records, little-endian, each appended with one write():
//   RAW       u8 4 | u8 0 | u16 fd | u32 length | f64 wall-clock ms | length bytes
//             a read() of a fault fd, the bytes exactly as read (a stream read
//             may end mid-record); written by the pump's worker before the
//             main thread sees the records (src/kernel/read-journal.ts)
//   ANSWERING u8 2 | u8 0 | u16 count | count x (u16 sourceId | u16 0 | u32 cookie)
//             answers about to be written to the source
//   ANSWERED  u8 3 | the same as ANSWERING: the write of those answers returned
// A fd source's id is its fd number, so RAW and answer records share the key
// (fd, cookie). An ANSWERING without its ANSWERED means the process died in
// the write: those answers may or may not have reached the kernel.
import { RAW_HEADER_BYTES, RAW_RECORD_TYPE, writeRawHeader } from "../kernel/read-journal.js";

export const RecordType = { ANSWERING: 2, ANSWERED: 3, RAW: RAW_RECORD_TYPE } as const;
export type AnswerRecordType = typeof RecordType.ANSWERING | typeof RecordType.ANSWERED;

const ANSWER_HEADER = 4;
const ANSWER = 8;
const MAX_ANSWERS_PER_RECORD = 0xffff;
/** No read() returns more; a larger RAW length is a corrupt header, not a record to wait for. */
const MAX_RAW_BYTES = 1 << 24;

export interface JournaledAnswer {
  sourceId: number;
  cookie: number;
}

/** One record per 65535 answers (the count is a u16). */
export function encodeAnswers(type: AnswerRecordType, sourceId: number, cookies: readonly number[]): Buffer {
  const records = Math.ceil(cookies.length / MAX_ANSWERS_PER_RECORD);
  const buf = Buffer.alloc(records * ANSWER_HEADER + cookies.length * ANSWER);
  let o = 0;
  for (let start = 0; start < cookies.length; start += MAX_ANSWERS_PER_RECORD) {
    const count = Math.min(MAX_ANSWERS_PER_RECORD, cookies.length - start);
    buf.writeUInt8(type, o);
    buf.writeUInt16LE(count, o + 2);
    o += ANSWER_HEADER;
    for (let i = start; i < start + count; i++, o += ANSWER) {
      buf.writeUInt16LE(sourceId, o);
      buf.writeUInt32LE(cookies[i]!, o + 4);
    }
  }
  return buf;
}

export function encodeRaw(fd: number, wallMs: number, bytes: Uint8Array): Buffer {
  const buf = Buffer.alloc(RAW_HEADER_BYTES + bytes.length);
  writeRawHeader(buf, 0, fd, bytes.length, wallMs);
  buf.set(bytes, RAW_HEADER_BYTES);
  return buf;
}

export interface RecordVisitor {
  raw(fd: number, wallMs: number, bytes: Buffer): void;
  answer(type: AnswerRecordType, sourceId: number, cookie: number): void;
}

export interface ParseResult {
  /** Bytes of whole records visited. */
  consumed: number;
  /** The record at `consumed` has a type no writer writes: the bytes from there on are not a journal. */
  corrupt: boolean;
}

/** Visits the whole records at the front of buf; a record cut by buf's end is left for more bytes. */
export function parseRecords(buf: Buffer, visitor: RecordVisitor): ParseResult {
  let o = 0;
  while (o + ANSWER_HEADER <= buf.length) {
    const type = buf.readUInt8(o);
    if (type === RecordType.ANSWERING || type === RecordType.ANSWERED) {
      const count = buf.readUInt16LE(o + 2);
      const end = o + ANSWER_HEADER + count * ANSWER;
      if (end > buf.length) break;
      for (let p = o + ANSWER_HEADER; p < end; p += ANSWER) visitor.answer(type, buf.readUInt16LE(p), buf.readUInt32LE(p + 4));
      o = end;
      continue;
    }
    if (type !== RecordType.RAW) return { consumed: o, corrupt: true };
    if (o + RAW_HEADER_BYTES > buf.length) break;
    const length = buf.readUInt32LE(o + 4);
    if (length > MAX_RAW_BYTES) return { consumed: o, corrupt: true };
    const end = o + RAW_HEADER_BYTES + length;
    if (end > buf.length) break;
    visitor.raw(buf.readUInt16LE(o + 2), buf.readDoubleLE(o + 8), buf.subarray(o + RAW_HEADER_BYTES, end));
    o = end;
  }
  return { consumed: o, corrupt: false };
}
