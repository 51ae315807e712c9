// The fuzz properties of the guest link's input side, shared by the CI tests
// (test/unit/fuzz-*.test.ts, a few seconds each) and the long run
// (scripts/fuzz.mjs, `npm run fuzz`). Each takes what a hostile peer controls
// (bytes, their split into reads, payloads, handshake answers) and checks what
// must hold whatever they are: nothing throws past the link's own error
// path, buffers stay bounded, and only well-formed, in-limit messages come out.
import { EventEmitter } from "node:events";
import fc from "fast-check";
import { allowedFlags, Flag, FrameHeader, HEADER_SIZE, PROTOCOL_VERSION, writeHeader } from "../../src/link/frame-header.js";
import { FrameReceiver } from "../../src/link/frame-receiver.js";
import { buildFrame } from "../../src/link/frame-sender.js";
import { HostLink, HostSession } from "../../src/link/host-link.js";
import { LinkError, LinkErrorCode } from "../../src/link/link-error.js";
import { decodeFrame, Inbound, pb } from "../../src/link/messages.js";
import { answerOffer, Capabilities, checkAnswer, LinkLimits, MAX_LIMITS, MIN_LIMITS, OUR_CAPABILITIES } from "../../src/link/negotiation.js";
import { isRequestCode, RequestCode } from "../../src/link/request-code.js";
import { encodeMarker, MarkerKind } from "../../src/link/sync-marker.js";
import type { ByteStream, ByteStreamEvents } from "../../src/link/transport/byte-stream.js";
import { frameCase } from "./link-arbitraries.js";

export const NONCE = 0x1122334455667788n;
const u32 = fc.nat({ max: 0xffffffff });

function encodeCase(c: { code: number; flags: number; id: number; type: { encode: (b: object) => unknown }; body: object }): Buffer {
  return buildFrame(c.code, c.flags, c.id, c.type as never, c.body);
}

/** A header with every field chosen by the attacker, e.g. a size of 4 GiB. */
const rawHeader = fc.record({ code: fc.oneof(fc.nat({ max: 10 }), u32), flags: fc.oneof(fc.nat({ max: 31 }), u32), id: u32, size: fc.oneof(fc.nat({ max: 70_000 }), u32) })
  .map((h: FrameHeader) => {
    const b = Buffer.alloc(HEADER_SIZE);
    writeHeader(b, 0, h);
    return b;
  });

/** One unit of a hostile stream: valid frames, damaged ones, markers, garbage. */
export const hostileUnit: fc.Arbitrary<Buffer> = fc.oneof(
  frameCase.map(encodeCase),
  fc.tuple(frameCase.map(encodeCase), fc.nat(), fc.nat({ max: 255 })).map(([b, at, v]) => {
    const copy = Buffer.from(b);
    copy[at % copy.length] = v;
    return copy;
  }),
  fc.tuple(frameCase.map(encodeCase), fc.nat()).map(([b, cut]) => b.subarray(0, cut % b.length)),
  rawHeader,
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.constantFrom(encodeMarker(MarkerKind.ACK, NONCE), encodeMarker(MarkerKind.SYNC, 7n), encodeMarker(MarkerKind.ACK, 9n)),
  // A marker cut short, or with a damaged magic: what a hunter must not trip on.
  fc.nat({ max: 15 }).map((n) => encodeMarker(MarkerKind.ACK, NONCE).subarray(0, n)),
  fc.nat({ max: 7 }).map((i) => {
    const m = encodeMarker(MarkerKind.SYNC, NONCE);
    m[i] = m[i]! ^ 0x20;
    return m;
  }),
);

/** A stream of hostile units, and where the transport splits it into reads. */
export const hostileStream = fc.tuple(fc.array(hostileUnit, { maxLength: 24 }), fc.array(fc.nat({ max: 4096 }), { maxLength: 30 }))
  .map(([units, cuts]) => {
    const bytes = Buffer.concat([encodeMarker(MarkerKind.ACK, NONCE), ...units]);
    const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
    const chunks: Buffer[] = [];
    let from = 0;
    for (const p of [...points, bytes.length]) {
      if (p > from) chunks.push(Buffer.from(bytes.subarray(from, p)));
      from = Math.max(from, p);
    }
    return chunks;
  });

/**
 * The frame parser on a hostile stream: it never throws, never holds more
 * than one frame (max payload + header) nor more than 15 bytes while
 * hunting, and every frame it hands out is whole and within the limit; the
 * decoder either returns a message or throws a LinkError.
 */
export function checkReceiver(chunks: Buffer[], maxPayload = 4096): void {
  let failure: string | null = null;
  const receiver: FrameReceiver = new FrameReceiver({
    frame: (h, p) => {
      if (p.length !== h.size || h.size > maxPayload) failure ??= `frame of ${p.length} bytes for a header saying ${h.size} (limit ${maxPayload})`;
      try {
        decodeFrame(h, p);
      } catch (err) {
        if (!(err instanceof LinkError)) failure ??= `decodeFrame threw ${(err as Error)?.stack ?? String(err)}`;
        receiver.hunt(NONCE);
      }
    },
    marker: () => undefined,
    // What LinkPeer does on a framing error: resync, i.e. hunt for a fresh ACK.
    error: (err) => {
      if (!(err instanceof LinkError)) failure ??= `error event with ${String(err)}`;
      receiver.hunt(NONCE);
    },
  }, maxPayload);
  receiver.hunt(NONCE);
  for (const chunk of chunks) {
    receiver.push(chunk);
    const bound = receiver.aligned ? maxPayload + HEADER_SIZE : 15;
    if (receiver.bufferedBytes > bound) failure ??= `holds ${receiver.bufferedBytes} bytes, bound ${bound} (aligned ${receiver.aligned})`;
    if (failure) throw new Error(failure);
  }
}

/** Every (code, flags) a header may validly carry, with an attacker's payload. */
export const hostilePayload = fc.record({
  codeFlags: fc.constantFrom(...validCodeFlags()),
  id: u32,
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    frameCase.map((c) => encodeCase(c).subarray(HEADER_SIZE)),
    // Deep nesting of unknown groups (wire type 3): the decoder's recursion must stay bounded.
    fc.nat({ max: 100_000 }).map((n) => new Uint8Array(n).fill(0x0b)),
  ),
}).map(({ codeFlags: [code, flags], id, payload }) => ({ code, flags, id, payload }));

/** Each request code with each combination of flags validateHeader() lets through for it. */
function validCodeFlags(): [number, number][] {
  const pairs: [number, number][] = [];
  for (const code of Object.values(RequestCode)) {
    if (typeof code !== "number" || !isRequestCode(code)) continue;
    for (const extra of [0, Flag.REPLY, Flag.NEED_REPLY, Flag.REPLY | Flag.ERROR]) {
      if ((extra & ~allowedFlags(code)) === 0) pairs.push([code, PROTOCOL_VERSION | extra]);
    }
  }
  return pairs;
}

/** Decoding never throws anything but a LinkError, and what it returns has integer tags and windows. */
export function checkDecode(c: { code: number; flags: number; id: number; payload: Uint8Array }): void {
  let msg: Inbound;
  try {
    msg = decodeFrame({ code: c.code, flags: c.flags, id: c.id, size: c.payload.length }, Buffer.from(c.payload));
  } catch (err) {
    if (err instanceof LinkError) return;
    throw new Error(`decodeFrame threw a non-LinkError: ${(err as Error)?.stack ?? String(err)}`);
  }
  const isU32 = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffffffff;
  if (msg.kind === "page-responses" && !msg.body.responses.every((r) => isU32(r.tag) && Number.isInteger(r.code))) throw new Error("a decoded response tag or code is not an integer");
  if (msg.kind === "credit" && !isU32(msg.body.window)) throw new Error(`decoded window ${msg.body.window} is not a u32`);
}

const limitsArb = fc.record({
  maxPayload: fc.oneof(u32, fc.constantFrom(0, 4095, 4096, 65536, 262144, 262145)),
  maxBatch: fc.oneof(u32, fc.constantFrom(0, 1, 256, 257)),
  maxInFlight: fc.oneof(u32, fc.constantFrom(0, 1, 4096, 4097)),
  heartbeatMs: fc.oneof(u32, fc.constantFrom(0, 49, 50, 999, 1000, 60_000, 60_001)),
});

/** A Welcome as a hostile agent might write it: any version, features, limits. */
export const hostileWelcome = fc.record({
  version: fc.oneof(fc.constantFrom(0, 1, 2), u32),
  features: fc.oneof(fc.nat({ max: 7 }), u32, fc.nat({ max: Number.MAX_SAFE_INTEGER })),
  limits: limitsArb,
});

/** The host accepts a Welcome only if it narrows the offer, and then the agreement is within both bounds. */
export function checkWelcome(w: { version: number; features: number; limits: LinkLimits }, offer: Capabilities = OUR_CAPABILITIES): void {
  let agreed;
  try {
    agreed = checkAnswer(offer, w);
  } catch (err) {
    if (err instanceof LinkError && err.code === LinkErrorCode.NEGOTIATION_FAILED) return;
    throw err;
  }
  const keys = Object.keys(MIN_LIMITS) as (keyof LinkLimits)[];
  for (const k of keys) {
    const v = agreed.limits[k];
    const ok = k === "heartbeatMs" ? v >= offer.limits[k] && v <= MAX_LIMITS[k] : v >= MIN_LIMITS[k] && v <= offer.limits[k];
    if (!ok) throw new Error(`agreed ${k} ${v} is outside what the offer allows (${JSON.stringify(offer.limits)})`);
  }
  if ((agreed.features & ~offer.features) !== 0 || agreed.features >= 2 ** 32) throw new Error(`agreed features 0x${agreed.features.toString(16)} beyond the offer`);
  if (agreed.version < offer.versionMin || agreed.version > offer.versionMax) throw new Error(`agreed version ${agreed.version}`);
}

/** An honest agent's answer to any Hello it accepts is one the host accepts too. */
export function checkRoundTrip(hello: { versionMin: number; versionMax: number; features: number; limits: LinkLimits }): void {
  let answer;
  try {
    answer = answerOffer(hello, OUR_CAPABILITIES);
  } catch (err) {
    if (err instanceof LinkError && err.code === LinkErrorCode.NEGOTIATION_FAILED) return;
    throw err;
  }
  checkAnswer({ ...hello, limits: Object.fromEntries(Object.entries(hello.limits).map(([k, v]) => [k, v === 0 ? OUR_CAPABILITIES.limits[k as keyof LinkLimits] : v])) as unknown as LinkLimits }, answer);
}

export const hostileHello = fc.record({ versionMin: fc.nat({ max: 3 }), versionMax: fc.nat({ max: 3 }), features: fc.nat({ max: 15 }), limits: limitsArb });

/** A ByteStream that delivers synchronously, so a property can drive a HostLink without awaiting. */
class SyncStream extends EventEmitter implements ByteStream {
  readonly description = "fuzz";
  readonly written: Buffer[] = [];
  override on<E extends keyof ByteStreamEvents>(e: E, l: ByteStreamEvents[E]): this {
    return super.on(e, l);
  }
  override off<E extends keyof ByteStreamEvents>(e: E, l: ByteStreamEvents[E]): this {
    return super.off(e, l);
  }
  write(chunk: Uint8Array): boolean {
    this.written.push(Buffer.from(chunk));
    return true;
  }
  end(): void {}
  destroy(): void {}
}

/** What the relay's HELLO asked, read back from the bytes the host link wrote. */
function lastHello(written: Buffer[]): { id: number; epoch: number } | null {
  let found: { id: number; epoch: number } | null = null;
  const r = new FrameReceiver({
    frame: (h, p) => {
      if (h.code === RequestCode.HELLO) found = { id: h.id, epoch: Number(pb.Hello.decode(p).sessionEpoch) };
    },
    marker: () => undefined,
    error: () => undefined,
  }, MAX_LIMITS.maxPayload);
  // The host's own output starts with its SYNC, then (once aligned) frames; parse from the first frame.
  r.hunt(0n);
  const all = Buffer.concat(written);
  const at = all.indexOf(Buffer.from([RequestCode.HELLO, 0, 0, 0]));
  if (at >= 0) {
    r.push(encodeMarker(MarkerKind.ACK, 0n));
    r.push(all.subarray(at));
  }
  return found;
}

/**
 * The host side of a session under a hostile agent: after aligning and a
 * (possibly hostile) Welcome, the agent sends a hostile stream. Whatever
 * it is, the link never throws, a session comes up only with an agreement
 * that narrows the offer, and responses reach the relay only inside it.
 */
export function checkHostLink(welcome: { version: number; features: number; limits: LinkLimits }, chunks: Buffer[]): void {
  const stream = new SyncStream();
  let up: HostSession | null = null;
  let failure: string | null = null;
  const link = new HostLink(stream, {
    sessionUp: (s) => {
      up = s;
      try {
        checkWelcome(s.agreement);
      } catch (err) {
        failure ??= (err as Error).message;
      }
    },
    pageResponses: (epoch) => {
      if (up === null || epoch !== (up as HostSession).epoch) failure ??= `responses delivered for epoch ${epoch} outside the session`;
    },
    credit: (_epoch, window) => {
      if (up === null || window > (up as HostSession).agreement.limits.maxInFlight) failure ??= `credit ${window} beyond max_in_flight`;
    },
    sessionDown: () => {
      up = null;
    },
    refused: () => undefined,
    writable: () => undefined,
    closed: () => undefined,
  }, { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [], software: "fuzz", nextEpoch: (() => { let e = 1; return () => e++; })() });
  try {
    link.start();
    // Align the host: read its SYNC nonce from what it wrote and ACK it.
    const sync = Buffer.concat(stream.written);
    stream.emit("data", encodeMarker(MarkerKind.ACK, sync.readBigUInt64LE(8)));
    const hello = lastHello(stream.written);
    if (!hello) throw new Error("the host sent no HELLO once aligned");
    stream.emit("data", buildFrame(RequestCode.HELLO, 4, hello.id, pb.Welcome, { ...welcome, sessionEpoch: hello.epoch, software: "fuzz" }));
    // The hostile stream starts with an ACK of the fuzz NONCE, which the host ignores while aligned.
    for (const c of chunks) stream.emit("data", c);
  } finally {
    link.close();
  }
  if (failure) throw new Error(failure);
}

/** The properties, by name, with the runs each gets in CI (a few seconds each). */
export const properties = {
  "frame receiver on hostile streams": { ciRuns: 3000, property: () => fc.property(hostileStream, (chunks) => checkReceiver(chunks)) },
  "decoders on hostile payloads": { ciRuns: 5000, property: () => fc.property(hostilePayload, checkDecode) },
  "welcome narrowing": { ciRuns: 20000, property: () => fc.property(hostileWelcome, (w) => checkWelcome(w)) },
  "hello answer round trip": { ciRuns: 20000, property: () => fc.property(hostileHello, checkRoundTrip) },
  "host link under a hostile agent": { ciRuns: 1500, property: () => fc.property(hostileWelcome, hostileStream, checkHostLink) },
} as const;

export type PropertyName = keyof typeof properties;
