// The hand-written codec of PAGE_REQUESTS and PAGE_RESPONSES against
// protobufjs, the reference: the same bytes when encoding, the same values
// (or the same failure) when decoding, canonical or not.
import test from "ava";
import fc from "fast-check";
import { iopf } from "../../src/gen/guest_link.js";
import { HEADER_SIZE } from "../../src/link/frame-header.js";
import {
  batchEntrySize, decodePageRequests, decodePageResponses, encodePageRequestsFrame, encodePageResponsesFrame, FrameWriter, pageRequestSize, responseEntrySize,
} from "../../src/link/hot-codec.js";

const pb = iopf.link.v1;
const u32 = fc.oneof(fc.constantFrom(0, 1, 127, 128, 16383, 16384, 0x0fffffff, 0x10000000, 0xffffffff), fc.nat({ max: 0xffffffff }));
// Every u64 a number can carry exactly, and the page-aligned ones up to 2^64 - 4096.
const u64 = fc.oneof(
  fc.constantFrom(0, 4096, 2 ** 32, 2 ** 53 - 1, 2 ** 56 - 4096, 2 ** 56, 2 ** 63, 2 ** 64 - 4096),
  fc.nat({ max: Number.MAX_SAFE_INTEGER }),
  fc.nat({ max: 2 ** 52 - 1 }).map((p) => p * 4096),
);
const page = fc.record({ address: u64, perm: fc.oneof(fc.nat({ max: 15 }), u32), raw: fc.uint8Array({ maxLength: 48 }) });
const request = fc.record({
  tag: u32, endpoint: u32, pasid: u32, pasidValid: fc.boolean(), groupIndex: u32, pages: fc.array(page, { maxLength: 5 }), budgetUs: u32,
});
const requests = fc.array(request, { maxLength: 8 });
const responses = fc.array(fc.record({ tag: u32, code: fc.oneof(fc.nat({ max: 2 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })) }), { maxLength: 12 });

function plainRequests(decoded: iopf.link.v1.IPageRequest[]): object[] {
  return decoded.map((r) => ({
    tag: r.tag, endpoint: r.endpoint, pasid: r.pasid, pasidValid: r.pasidValid, groupIndex: r.groupIndex, budgetUs: r.budgetUs,
    pages: (r.pages ?? []).map((p) => ({ address: p.address, perm: p.perm, raw: Buffer.from(p.raw ?? []).toString("hex") })),
  }));
}

test("PAGE_REQUESTS: the payload is byte for byte protobufjs's", (t) => {
  const w = new FrameWriter();
  fc.assert(fc.property(requests, (rs) => {
    const sizes = rs.map(pageRequestSize);
    const bytes = sizes.reduce((a, s) => a + batchEntrySize(s), 0);
    const frame = encodePageRequestsFrame(w, 2, 7, rs, sizes, 0, rs.length, bytes);
    const reference = Buffer.from(pb.PageRequestBatch.encode({ requests: rs }).finish());
    return frame.readUInt32LE(12) === reference.length && frame.subarray(HEADER_SIZE).equals(reference);
  }), { numRuns: 3000 });
  t.pass();
});

test("PAGE_RESPONSES: the payload is byte for byte protobufjs's", (t) => {
  const w = new FrameWriter();
  fc.assert(fc.property(responses, (rs) => {
    const tags = rs.map((r) => r.tag), codes = rs.map((r) => r.code);
    const bytes = rs.reduce((a, r) => a + responseEntrySize(r.tag, r.code), 0);
    const frame = encodePageResponsesFrame(w, 3, 9, tags, codes, 0, rs.length, bytes);
    return frame.subarray(HEADER_SIZE).equals(Buffer.from(pb.PageResponseBatch.encode({ responses: rs }).finish()));
  }), { numRuns: 3000 });
  t.pass();
});

/** What protobufjs makes of bytes, or its error message; and the same for ours. */
function both<T>(bytes: Uint8Array, ours: (b: Uint8Array) => T, reference: (b: Uint8Array) => T): [T | string, T | string] {
  const run = (f: (b: Uint8Array) => T): T | string => {
    try {
      return f(bytes);
    } catch (err) {
      return `threw: ${(err as Error).message}`;
    }
  };
  return [run(ours), run(reference)];
}

// Payloads protobufjs wrote, then the same with a byte changed, cut short, or an unknown field in front.
const mangled = (encoded: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> => fc.oneof(
  encoded,
  fc.tuple(encoded, fc.nat(), fc.nat({ max: 255 })).map(([b, i, v]) => { const c = Uint8Array.from(b); if (c.length) c[i % c.length] = v; return c; }),
  fc.tuple(encoded, fc.nat()).map(([b, n]) => b.subarray(0, b.length ? n % b.length : 0)),
  encoded.map((b) => Uint8Array.from([0x98, 0x01, 0x05, ...b])),
  fc.uint8Array({ maxLength: 64 }),
);

test("PAGE_REQUESTS: decoded as protobufjs decodes, or refused as it refuses", (t) => {
  const encoded = requests.map((rs) => pb.PageRequestBatch.encode({ requests: rs }).finish());
  fc.assert(fc.property(mangled(encoded), (bytes) => {
    const [ours, reference] = both(bytes, (b) => plainRequests(decodePageRequests(b).requests), (b) => plainRequests(pb.PageRequestBatch.decode(b).requests));
    t.deepEqual(ours, reference);
  }), { numRuns: 3000 });
});

test("PAGE_RESPONSES: decoded as protobufjs decodes, or refused as it refuses", (t) => {
  const encoded = responses.map((rs) => pb.PageResponseBatch.encode({ responses: rs }).finish());
  const plain = (rs: iopf.link.v1.IPageResponse[]): object[] => rs.map((r) => ({ tag: r.tag, code: r.code }));
  fc.assert(fc.property(mangled(encoded), (bytes) => {
    const [ours, reference] = both(bytes, (b) => plain(decodePageResponses(b).responses), (b) => plain(pb.PageResponseBatch.decode(b).responses));
    t.deepEqual(ours, reference);
  }), { numRuns: 3000 });
});

test("the columns read each request and page without building objects", (t) => {
  const rs = [{ tag: 5, endpoint: 9, pasid: 3, pasidValid: true, groupIndex: 7, budgetUs: 1000, pages: [{ address: 0x4000, perm: 3, raw: new Uint8Array([1, 2]) }, { address: 2 ** 63, perm: 1, raw: new Uint8Array(0) }] }];
  const c = decodePageRequests(pb.PageRequestBatch.encode({ requests: rs }).finish());
  t.is(c.count, 1);
  t.deepEqual([c.tag(0), c.endpoint(0), c.pasid(0), c.pasidValid(0), c.groupIndex(0), c.budgetUs(0), c.pageCount(0)], [5, 9, 3, true, 7, 1000, 2]);
  t.deepEqual([c.address(0, 0), c.perm(0, 0), [...c.raw(0, 0)]], [0x4000, 3, [1, 2]]);
  t.deepEqual([c.address(0, 1), c.perm(0, 1), c.raw(0, 1).length], [2 ** 63, 1, 0]);
});
