// Frames round-trip, and a valid stream parses the same however it is split.
import test from "ava";
import fc from "fast-check";
import { buildFrame } from "../../src/link/frame-sender.js";
import { FrameReceiver } from "../../src/link/frame-receiver.js";
import { decodeFrame, Inbound } from "../../src/link/messages.js";
import { encodeMarker, MarkerKind } from "../../src/link/sync-marker.js";
import { frameCase, FrameCase } from "../support/link-arbitraries.js";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";

const NONCE = 0x1122334455667788n;

/** Feeds chunks to a receiver already hunting for ACK(NONCE); returns what it parsed. */
function parse(chunks: Buffer[]): { messages: Inbound[]; errors: string[] } {
  const messages: Inbound[] = [];
  const errors: string[] = [];
  const receiver = new FrameReceiver(
    {
      frame: (h, p) => messages.push(decodeFrame(h, p)),
      marker: () => undefined,
      error: (e) => errors.push(e.message),
    },
    1 << 20,
  );
  receiver.hunt(NONCE);
  for (const c of chunks) receiver.push(c);
  return { messages, errors };
}

function encode(c: FrameCase): Buffer {
  return buildFrame(c.code, c.flags, c.id, c.type, c.body);
}

/** Compares a decoded body with the generated one, field by field of the input. */
function same(input: unknown, decoded: unknown): boolean {
  if (input instanceof Uint8Array) return decoded instanceof Uint8Array && Buffer.compare(Buffer.from(input), Buffer.from(decoded)) === 0;
  if (Array.isArray(input)) return Array.isArray(decoded) && input.length === decoded.length && input.every((v, i) => same(v, decoded[i]));
  if (input !== null && typeof input === "object") {
    return Object.entries(input).every(([k, v]) => same(v, (decoded as Record<string, unknown>)[k]));
  }
  return input === decoded;
}

test("every message round-trips through a frame", (t) => {
  fc.assert(
    fc.property(frameCase, (c) => {
      const { messages, errors } = parse([encodeMarker(MarkerKind.ACK, NONCE), encode(c)]);
      const m = messages[0];
      return errors.length === 0 && messages.length === 1 && m !== undefined && m.kind === c.kind && "body" in m && same(c.body, m.body) && m.id === c.id;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("a valid stream split at every byte boundary parses to the same messages", (t) => {
  fc.assert(
    fc.property(fc.array(frameCase, { minLength: 1, maxLength: 6 }), (cases) => {
      const stream = Buffer.concat([encodeMarker(MarkerKind.ACK, NONCE), ...cases.map(encode)]);
      const whole = parse([stream]);
      for (let cut = 1; cut < stream.length; cut++) {
        const split = parse([stream.subarray(0, cut), stream.subarray(cut)]);
        if (split.messages.length !== whole.messages.length || split.errors.length > 0) return false;
        if (!split.messages.every((m, i) => same(whole.messages[i], m))) return false;
      }
      const bytewise = parse([...stream].map((b) => Buffer.from([b])));
      return bytewise.messages.length === cases.length && bytewise.messages.every((m, i) => same(whole.messages[i], m));
    }),
    { numRuns: 150 },
  );
  t.pass();
});

test("random bytes before the ACK are discarded, frames after it are parsed", (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(frameCase, { minLength: 1, maxLength: 4 }), (garbage, cases) => {
      const { messages, errors } = parse([Buffer.from(garbage), encodeMarker(MarkerKind.ACK, NONCE), ...cases.map(encode)]);
      return errors.length === 0 && messages.length === cases.length && messages.every((m, i) => m.kind === cases[i]?.kind);
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test("marker bytes inside a payload are not taken for a marker", (t) => {
  const raw = Buffer.concat([encodeMarker(MarkerKind.SYNC, 42n), encodeMarker(MarkerKind.ACK, NONCE)]);
  const frame = buildFrame(RequestCode.PAGE_REQUESTS, 0, 9, pb.PageRequestBatch, { requests: [{ tag: 1, pages: [{ address: 4096, perm: 1, raw }] }] });
  const markers: bigint[] = [];
  const messages: Inbound[] = [];
  const receiver = new FrameReceiver({ frame: (h, p) => messages.push(decodeFrame(h, p)), marker: (_k, n) => markers.push(n), error: (e) => t.fail(e.message) }, 1 << 20);
  receiver.hunt(NONCE);
  receiver.push(Buffer.concat([encodeMarker(MarkerKind.ACK, NONCE), frame, frame]));
  t.deepEqual(markers, [NONCE]);
  t.is(messages.length, 2);
  const first = messages[0];
  t.true(first?.kind === "page-requests" && Buffer.from(first.body.requests[0]?.pages[0]?.raw ?? []).equals(raw));
});

test("at a frame boundary a SYNC marker is reported and parsing goes on", (t) => {
  const markers: string[] = [];
  const messages: Inbound[] = [];
  const receiver = new FrameReceiver({ frame: (h, p) => messages.push(decodeFrame(h, p)), marker: (k, n) => markers.push(`${k}:${n}`), error: (e) => t.fail(e.message) }, 1 << 20);
  receiver.hunt(NONCE);
  const hb = buildFrame(RequestCode.HEARTBEAT, 0, 1, pb.Heartbeat, { sentUs: 5 });
  receiver.push(Buffer.concat([encodeMarker(MarkerKind.ACK, NONCE), hb, encodeMarker(MarkerKind.SYNC, 7n), hb]));
  t.deepEqual(markers, [`ack:${NONCE}`, "sync:7"]);
  t.is(messages.length, 2);
});
