// The two messages of every group, PAGE_REQUESTS and PAGE_RESPONSES, encoded
// and decoded by hand, without an object per page or per group (protobufjs
// makes several per field when it encodes, and one per message and per
// 64-bit value when it decodes: most of both processes' garbage). The wire
// stays protobuf and proto/guest_link.proto stays its definition: the bytes
// are those protobufjs writes (fields in number order, proto3 defaults left
// out), which a property test checks both ways
// (test/unit/link-hot-codec.property.test.ts).
//
// Decoding takes the canonical layout and anything protobufjs would read the
// same way field by field (fields in any order, a repeated scalar's last value
// winning); a payload with anything else (an unknown field, another wire
// type, a varint longer than its field needs, a truncated field) is decoded
// by protobufjs itself, so what it accepts, refuses and how it fails is
// protobufjs's, unchanged.
import { iopf } from "../gen/guest_link.js";
import { Flag, HEADER_SIZE, PROTOCOL_VERSION, writeHeader } from "./frame-header.js";
import type { WirePage, WirePageRequest, WirePageResponse } from "./messages.js";

type IPageRequest = iopf.link.v1.IPageRequest;
type IPage = iopf.link.v1.IPage;

const TWO_32 = 4294967296;
const EMPTY = new Uint8Array(0);

function varintSize(v: number): number {
  return v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5;
}

// A u64 number is split into 32-bit halves as protobufjs does (LongBits.fromNumber): lo = v >>> 0, hi = ((v - lo) / 2^32) >>> 0.

function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varintSize(lo);
  // Bits above the low 28 of lo: 7 per byte after the first four.
  const bits = 32 + (32 - Math.clz32(hi));
  return Math.ceil(bits / 7);
}

/** proto3 int32: a negative value is sign-extended to ten bytes. */
function int32Size(v: number): number {
  return v < 0 ? 10 : varintSize(v);
}

/** A growing output buffer, reused from one frame to the next. */
export class FrameWriter {
  buf = Buffer.allocUnsafe(4096);
  pos = 0;

  reset(bytes: number): void {
    if (this.buf.length < bytes) this.buf = Buffer.allocUnsafe(Math.max(bytes, this.buf.length * 2));
    this.pos = 0;
  }

  varint(v: number): void {
    const b = this.buf;
    let p = this.pos;
    v >>>= 0;
    while (v > 0x7f) {
      b[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  varint64(lo: number, hi: number): void {
    const b = this.buf;
    let p = this.pos;
    while (hi !== 0) {
      b[p++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.pos = p;
    this.varint(lo);
  }

  int32(v: number): void {
    if (v < 0) this.varint64(v >>> 0, 0xffffffff);
    else this.varint(v);
  }

  bytes(src: Uint8Array): void {
    this.varint(src.length);
    this.buf.set(src, this.pos);
    this.pos += src.length;
  }

  /** The frame written, as a Buffer of its own: the socket may keep it after write() returns. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }
}

function pageSize(p: IPage): number {
  let n = 0;
  const address = p.address as number | null | undefined;
  if (address) {
    const lo = address >>> 0;
    n += 1 + varint64Size(lo, ((address - lo) / TWO_32) >>> 0);
  }
  if (p.perm) n += 1 + varintSize(p.perm >>> 0);
  if (p.raw && p.raw.length) n += 1 + varintSize(p.raw.length) + p.raw.length;
  return n;
}

/** The encoded size of one PageRequest, without the batch's tag and length in front of it. */
export function pageRequestSize(r: IPageRequest): number {
  let n = 0;
  if (r.tag) n += 1 + varintSize(r.tag >>> 0);
  if (r.endpoint) n += 1 + varintSize(r.endpoint >>> 0);
  if (r.pasid) n += 1 + varintSize(r.pasid >>> 0);
  if (r.pasidValid) n += 2;
  if (r.groupIndex) n += 1 + varintSize(r.groupIndex >>> 0);
  if (r.pages) for (const p of r.pages) { const s = pageSize(p); n += 1 + varintSize(s) + s; }
  if (r.budgetUs) n += 1 + varintSize(r.budgetUs >>> 0);
  return n;
}

/** Bytes one request takes in a PageRequestBatch: its field tag, its length, itself. */
export function batchEntrySize(requestSize: number): number {
  return 1 + varintSize(requestSize) + requestSize;
}

function writePage(w: FrameWriter, p: IPage): void {
  const address = p.address as number | null | undefined;
  if (address) {
    const lo = address >>> 0;
    w.buf[w.pos++] = 8;
    w.varint64(lo, ((address - lo) / TWO_32) >>> 0);
  }
  if (p.perm) {
    w.buf[w.pos++] = 16;
    w.varint(p.perm);
  }
  if (p.raw && p.raw.length) {
    w.buf[w.pos++] = 26;
    w.bytes(p.raw);
  }
}

function writePageRequest(w: FrameWriter, r: IPageRequest, size: number): void {
  w.buf[w.pos++] = 10;
  w.varint(size);
  if (r.tag) { w.buf[w.pos++] = 8; w.varint(r.tag); }
  if (r.endpoint) { w.buf[w.pos++] = 16; w.varint(r.endpoint); }
  if (r.pasid) { w.buf[w.pos++] = 24; w.varint(r.pasid); }
  if (r.pasidValid) { w.buf[w.pos++] = 32; w.buf[w.pos++] = 1; }
  if (r.groupIndex) { w.buf[w.pos++] = 40; w.varint(r.groupIndex); }
  if (r.pages) {
    for (const p of r.pages) {
      w.buf[w.pos++] = 50;
      w.varint(pageSize(p));
      writePage(w, p);
    }
  }
  if (r.budgetUs) { w.buf[w.pos++] = 56; w.varint(r.budgetUs); }
}

function writeFrameHeader(w: FrameWriter, code: number, id: number, payloadBytes: number): void {
  writeHeader(w.buf, 0, { code, flags: PROTOCOL_VERSION & Flag.VERSION_MASK, id, size: payloadBytes });
  w.pos = HEADER_SIZE;
}

/** A PAGE_REQUESTS frame of requests[from, to), whose encoded sizes are sizes[from, to) and payload `payloadBytes`. */
export function encodePageRequestsFrame(w: FrameWriter, code: number, id: number, requests: readonly IPageRequest[], sizes: readonly number[], from: number, to: number, payloadBytes: number): Buffer {
  w.reset(HEADER_SIZE + payloadBytes);
  writeFrameHeader(w, code, id, payloadBytes);
  for (let i = from; i < to; i++) writePageRequest(w, requests[i]!, sizes[i]!);
  return w.take();
}

/** The encoded size of one PageResponse entry of a batch (field tag and length included). */
export function responseEntrySize(tag: number, code: number): number {
  let n = 0;
  if (tag) n += 1 + varintSize(tag >>> 0);
  if (code) n += 1 + int32Size(code);
  return 1 + varintSize(n) + n;
}

/** A PAGE_RESPONSES frame of (tags[i], codes[i]) for i in [from, to), payload `payloadBytes`. */
export function encodePageResponsesFrame(w: FrameWriter, code: number, id: number, tags: readonly number[], codes: readonly number[], from: number, to: number, payloadBytes: number): Buffer {
  w.reset(HEADER_SIZE + payloadBytes);
  writeFrameHeader(w, code, id, payloadBytes);
  for (let i = from; i < to; i++) {
    const tag = tags[i]!, c = codes[i]!;
    const n = (tag ? 1 + varintSize(tag >>> 0) : 0) + (c ? 1 + int32Size(c) : 0);
    w.buf[w.pos++] = 10;
    w.varint(n);
    if (tag) { w.buf[w.pos++] = 8; w.varint(tag); }
    if (c) { w.buf[w.pos++] = 16; w.int32(c); }
  }
  return w.take();
}

// ---- decoding ----

/** Thrown inside the fast path on anything it does not take; the caller hands the payload to protobufjs. */
class NotCanonical extends Error {}
const NOT_CANONICAL = new NotCanonical();

/** A cursor over a payload: varints as protobufjs reads them, or NOT_CANONICAL. */
class Cursor {
  pos = 0;
  constructor(readonly buf: Uint8Array, public end: number) {}

  /** A uint32 varint of at most five bytes whose fifth carries only the top four bits (longer ones protobufjs reads its own way). */
  u32(): number {
    const b = this.buf;
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw NOT_CANONICAL;
      const byte = b[this.pos++]!;
      if (shift === 28) {
        if (byte > 15) throw NOT_CANONICAL;
        return (v | (byte << 28)) >>> 0;
      }
      v |= (byte & 0x7f) << shift;
      if (byte < 0x80) return v >>> 0;
    }
    throw NOT_CANONICAL;
  }

  /** A uint64 varint of at most eight bytes (56 bits), as the number protobufjs makes of it (lo + hi * 2^32). */
  u64(): number {
    const b = this.buf;
    let lo = 0, hi = 0;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= this.end) throw NOT_CANONICAL;
      const byte = b[this.pos++]!;
      const bits = byte & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (byte < 0x80) return (lo >>> 0) + (hi >>> 0) * TWO_32;
    }
    throw NOT_CANONICAL;
  }

  /** A length-delimited field's end. */
  sub(): number {
    const n = this.u32();
    const end = this.pos + n;
    if (end > this.end) throw NOT_CANONICAL;
    return end;
  }
}

/** Per request in PageRequestColumns.req: these numbers, in this order. */
const R_TAG = 0, R_ENDPOINT = 1, R_PASID = 2, R_PASID_VALID = 3, R_GROUP_INDEX = 4, R_BUDGET = 5, R_FIRST_PAGE = 6, R_PAGES = 7;
const R_STRIDE = 8;
/**
 * Per page in PageRequestColumns.page: address, perm, and where its raw
 * record lies in the payload; or, for a payload protobufjs decoded, -1 minus
 * its index in the columns' own list of raw records, twice.
 */
const P_ADDRESS = 0, P_PERM = 1, P_RAW_START = 2, P_RAW_END = 3;
const P_STRIDE = 4;

/**
 * A PAGE_REQUESTS payload decoded into two flat arrays of numbers (one for
 * requests, one for pages), read through accessors by index. `requests`
 * builds the objects protobufjs would have, for whoever needs them (a
 * handler that answers later, a test).
 */
export class PageRequestColumns {
  #objects: WirePageRequest[] | null = null;

  constructor(
    readonly count: number,
    private readonly req: number[],
    private readonly page: number[],
    private readonly payload: Uint8Array,
    private readonly raws: readonly Uint8Array[] = [],
  ) {}

  tag(i: number): number { return this.req[i * R_STRIDE + R_TAG]!; }
  endpoint(i: number): number { return this.req[i * R_STRIDE + R_ENDPOINT]!; }
  pasid(i: number): number { return this.req[i * R_STRIDE + R_PASID]!; }
  pasidValid(i: number): boolean { return this.req[i * R_STRIDE + R_PASID_VALID]! !== 0; }
  groupIndex(i: number): number { return this.req[i * R_STRIDE + R_GROUP_INDEX]!; }
  budgetUs(i: number): number { return this.req[i * R_STRIDE + R_BUDGET]!; }
  pageCount(i: number): number { return this.req[i * R_STRIDE + R_PAGES]!; }
  /** Page j of request i. */
  address(i: number, j: number): number { return this.page[(this.req[i * R_STRIDE + R_FIRST_PAGE]! + j) * P_STRIDE + P_ADDRESS]!; }
  perm(i: number, j: number): number { return this.page[(this.req[i * R_STRIDE + R_FIRST_PAGE]! + j) * P_STRIDE + P_PERM]!; }
  raw(i: number, j: number): Uint8Array {
    const k = (this.req[i * R_STRIDE + R_FIRST_PAGE]! + j) * P_STRIDE;
    const start = this.page[k + P_RAW_START]!, end = this.page[k + P_RAW_END]!;
    if (start < 0) return this.raws[-1 - start]!;
    return start === end ? EMPTY : this.payload.subarray(start, end);
  }

  /** Request i as the object protobufjs decodes. */
  request(i: number): WirePageRequest {
    const pages = new Array<WirePage>(this.pageCount(i));
    for (let j = 0; j < pages.length; j++) pages[j] = { address: this.address(i, j), perm: this.perm(i, j), raw: this.raw(i, j) };
    return {
      tag: this.tag(i), endpoint: this.endpoint(i), pasid: this.pasid(i), pasidValid: this.pasidValid(i),
      groupIndex: this.groupIndex(i), pages, budgetUs: this.budgetUs(i),
    };
  }

  /** Every request as objects (built once). */
  get requests(): WirePageRequest[] {
    this.#objects ??= Array.from({ length: this.count }, (_, i) => this.request(i));
    return this.#objects;
  }
}

function decodePage(c: Cursor, end: number, page: number[]): void {
  let address = 0, perm = 0, rawStart = 0, rawEnd = 0;
  const outer = c.end;
  c.end = end;
  while (c.pos < end) {
    const key = c.u32();
    if (key === 8) address = c.u64();
    else if (key === 16) perm = c.u32();
    else if (key === 26) {
      const e = c.sub();
      rawStart = c.pos;
      rawEnd = e;
      c.pos = e;
    } else throw NOT_CANONICAL;
  }
  c.end = outer;
  page.push(address, perm, rawStart, rawEnd);
}

function decodeRequest(c: Cursor, end: number, req: number[], page: number[]): void {
  const base = req.length;
  req.push(0, 0, 0, 0, 0, 0, page.length / P_STRIDE, 0);
  const outer = c.end;
  c.end = end;
  while (c.pos < end) {
    const key = c.u32();
    switch (key) {
      case 8: req[base + R_TAG] = c.u32(); break;
      case 16: req[base + R_ENDPOINT] = c.u32(); break;
      case 24: req[base + R_PASID] = c.u32(); break;
      case 32: req[base + R_PASID_VALID] = c.u32() !== 0 ? 1 : 0; break;
      case 40: req[base + R_GROUP_INDEX] = c.u32(); break;
      case 50: {
        const e = c.sub();
        decodePage(c, e, page);
        req[base + R_PAGES] = req[base + R_PAGES]! + 1;
        break;
      }
      case 56: req[base + R_BUDGET] = c.u32(); break;
      default: throw NOT_CANONICAL;
    }
  }
  c.end = outer;
}

/** The columns of protobufjs's own decoding, for payloads the fast path does not take (it throws as protobufjs throws). */
function columnsOf(requests: WirePageRequest[], payload: Uint8Array): PageRequestColumns {
  const req: number[] = [], page: number[] = [];
  const raws: Uint8Array[] = [];
  for (const r of requests) {
    req.push(r.tag, r.endpoint, r.pasid, r.pasidValid ? 1 : 0, r.groupIndex, r.budgetUs, page.length / P_STRIDE, r.pages.length);
    for (const p of r.pages) {
      raws.push(p.raw);
      page.push(p.address, p.perm, -raws.length, -raws.length);
    }
  }
  return new PageRequestColumns(requests.length, req, page, payload, raws);
}

/** Decodes a PAGE_REQUESTS payload; throws what protobufjs throws for one it refuses. */
export function decodePageRequests(payload: Uint8Array): PageRequestColumns {
  const req: number[] = [], page: number[] = [];
  const c = new Cursor(payload, payload.length);
  try {
    while (c.pos < payload.length) {
      if (c.u32() !== 10) throw NOT_CANONICAL;
      const end = c.sub();
      decodeRequest(c, end, req, page);
    }
  } catch (err) {
    if (err !== NOT_CANONICAL) throw err;
    return columnsOf(iopf.link.v1.PageRequestBatch.decode(payload).requests as WirePageRequest[], payload);
  }
  return new PageRequestColumns(req.length / R_STRIDE, req, page, payload);
}

/** A PAGE_RESPONSES payload decoded into two arrays; `responses` builds the objects for whoever needs them. */
export class PageResponseColumns {
  #objects: WirePageResponse[] | null = null;

  constructor(readonly tags: number[], readonly codes: number[]) {}

  get count(): number {
    return this.tags.length;
  }

  get responses(): WirePageResponse[] {
    this.#objects ??= this.tags.map((tag, i) => ({ tag, code: this.codes[i]! }));
    return this.#objects;
  }
}

/** Decodes a PAGE_RESPONSES payload; throws what protobufjs throws for one it refuses. */
export function decodePageResponses(payload: Uint8Array): PageResponseColumns {
  const tags: number[] = [], codes: number[] = [];
  const c = new Cursor(payload, payload.length);
  try {
    while (c.pos < payload.length) {
      if (c.u32() !== 10) throw NOT_CANONICAL;
      const end = c.sub();
      const outer = c.end;
      c.end = end;
      let tag = 0, code = 0;
      while (c.pos < end) {
        const key = c.u32();
        if (key === 8) tag = c.u32();
        else if (key === 16) code = c.u32() | 0;
        else throw NOT_CANONICAL;
      }
      c.end = outer;
      tags.push(tag);
      codes.push(code);
    }
  } catch (err) {
    if (err !== NOT_CANONICAL) throw err;
    const responses = iopf.link.v1.PageResponseBatch.decode(payload).responses as WirePageResponse[];
    return new PageResponseColumns(responses.map((r) => r.tag), responses.map((r) => r.code));
  }
  return new PageResponseColumns(tags, codes);
}
