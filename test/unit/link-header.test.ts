// Each class of malformed header is rejected, before any payload byte is
// buffered, with its own error code.
import test from "ava";
import { FrameReceiver } from "../../src/link/frame-receiver.js";
import { HEADER_SIZE, writeHeader } from "../../src/link/frame-header.js";
import { LinkError, LinkErrorCode, linkErrorName } from "../../src/link/link-error.js";
import { encodeMarker, MarkerKind } from "../../src/link/sync-marker.js";

const NONCE = 99n;

function rejectHeader(code: number, flags: number, size: number, maxPayload = 4096): { errors: LinkError[]; receiver: FrameReceiver } {
  const errors: LinkError[] = [];
  const receiver = new FrameReceiver({ frame: () => undefined, marker: () => undefined, error: (e) => errors.push(e) }, maxPayload);
  receiver.hunt(NONCE);
  const header = Buffer.alloc(HEADER_SIZE);
  writeHeader(header, 0, { code, flags, id: 1, size });
  receiver.push(Buffer.concat([encodeMarker(MarkerKind.ACK, NONCE), header]));
  return { errors, receiver };
}

const cases: [string, number, number, number, LinkErrorCode][] = [
  ["version 0", 6, 0, 0, LinkErrorCode.BAD_VERSION],
  ["version 2", 6, 2, 0, LinkErrorCode.BAD_VERSION],
  ["a reserved flag bit", 6, 1 | (1 << 9), 0, LinkErrorCode.BAD_FLAGS],
  ["REPLY with NEED_REPLY", 6, 1 | 4 | 8, 0, LinkErrorCode.BAD_FLAGS],
  ["ERROR without REPLY", 6, 1 | 16, 0, LinkErrorCode.BAD_FLAGS],
  // Only HELLO, HEARTBEAT and GOODBYE have replies; only a HELLO's reply can be an error.
  ["NEED_REPLY on CREDIT", 4, 1 | 8, 0, LinkErrorCode.BAD_FLAGS],
  ["NEED_REPLY on PAGE_RESPONSES", 3, 1 | 8, 0, LinkErrorCode.BAD_FLAGS],
  ["REPLY on PAGE_REQUESTS", 2, 1 | 4, 0, LinkErrorCode.BAD_FLAGS],
  ["NEED_REPLY on ERROR", 7, 1 | 8, 0, LinkErrorCode.BAD_FLAGS],
  ["an ERROR reply to HEARTBEAT", 6, 1 | 4 | 16, 0, LinkErrorCode.BAD_FLAGS],
  ["request code 0", 0, 1, 0, LinkErrorCode.UNKNOWN_CODE],
  ["request code 200", 200, 1, 0, LinkErrorCode.UNKNOWN_CODE],
  ["a payload above the limit", 6, 1, 4097, LinkErrorCode.PAYLOAD_TOO_LARGE],
];

for (const [what, code, flags, size, expected] of cases) {
  test(`a header with ${what} is rejected as ${linkErrorName(expected)}`, (t) => {
    const { errors, receiver } = rejectHeader(code, flags, size);
    t.is(errors.length, 1);
    t.is(errors[0]?.code, expected);
    t.false(receiver.aligned, "the receiver hunts again after a bad header");
  });
}

test("a header claiming a 1 GiB payload allocates nothing", (t) => {
  const before = process.memoryUsage().arrayBuffers;
  const { errors, receiver } = rejectHeader(2, 1, 1 << 30, 256 * 1024);
  t.is(errors[0]?.code, LinkErrorCode.PAYLOAD_TOO_LARGE);
  t.regex(errors[0]?.message ?? "", /1073741824 bytes, the limit is 262144/);
  t.is(receiver.bufferedBytes, 0);
  t.true(process.memoryUsage().arrayBuffers - before < 1 << 20);
});

test("0xFF at a frame boundary that is not a marker loses framing", (t) => {
  const errors: LinkError[] = [];
  const receiver = new FrameReceiver({ frame: () => undefined, marker: () => undefined, error: (e) => errors.push(e) }, 4096);
  receiver.hunt(NONCE);
  receiver.push(Buffer.concat([encodeMarker(MarkerKind.ACK, NONCE), Buffer.from("ff696f7066585858" + "00".repeat(8), "hex")]));
  t.is(errors[0]?.code, LinkErrorCode.BAD_MARKER);
});

test("while hunting, memory held between chunks stays under one marker", (t) => {
  const receiver = new FrameReceiver({ frame: () => t.fail(), marker: () => undefined, error: () => t.fail() }, 4096);
  receiver.hunt(NONCE);
  for (let i = 0; i < 1000; i++) {
    receiver.push(Buffer.from([0x12, 0xff, 0x69, 0x6f, 0x70, 0x66]));
    t.true(receiver.bufferedBytes < 16);
  }
});
