// A hostile guest sending bytes that are not frames: garbage, truncated and
// oversized frames, bad markers, and frames trickled a byte at a time. Each
// ends the session (never the process) with the spec's error code; the
// relay resyncs, the groups it held wait for the next session, and each is
// answered exactly once.
import test from "ava";
import { Flag } from "../../src/link/frame-header.js";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { randomBytes } from "node:crypto";
import { until, tick } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";
import type { HostileGuest } from "../support/hostile-guest.js";

test.after.always(() => HostileRelay.closeAll());

function header(code: number, flags: number, id: number, size: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(code, 0);
  b.writeUInt32LE(flags, 4);
  b.writeUInt32LE(id, 8);
  b.writeUInt32LE(size >>> 0, 12);
  return b;
}

/** Holds 3 groups in a session, lets `attack` break it, then checks the relay recovers and loses nothing. */
async function survives(attack: (guest: HostileGuest) => void | Promise<void>, expectCode: number | null): Promise<{ ok: boolean; detail: string }> {
  const relay = await HostileRelay.start({ deadlineMs: 10_000, graceMs: 10_000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 3);
  const epoch = relay.core.currentSession!.epoch;
  await attack(guest);
  if (expectCode !== null) await until(() => guest.relayErrors.some((e) => e.code === expectCode), 10_000, `ERROR ${expectCode} from the relay`);
  await until(() => relay.core.currentSession === null || relay.core.currentSession.epoch !== epoch, 10_000, "the session ended");
  // The guest resyncs as a correct peer would after an ERROR; a new session gets the held groups again.
  guest.resync();
  await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== epoch, 10_000, "a new session");
  await until(() => guest.requests.length === 6, 10_000, "the 3 groups sent again");
  guest.answer(guest.requests.slice(3).map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 3, 10_000, "answers in the new session");
  guest.close();
  const report = await relay.finish();
  const want = clean(3);
  return { ok: JSON.stringify(report) === JSON.stringify(want), detail: JSON.stringify({ report, errors: guest.relayErrors }) };
}

const cases: [string, number | null, (g: HostileGuest) => void | Promise<void>][] = [
  ["garbage at a frame boundary (bad marker)", LinkErrorCode.BAD_MARKER, (g) => void g.write(Buffer.concat([Buffer.from([0xff]), randomBytes(64)]))],
  ["a header with version bits 2", LinkErrorCode.BAD_VERSION, (g) => void g.write(header(RequestCode.HEARTBEAT, 2, 1, 0))],
  ["a header with reserved flag bits", LinkErrorCode.BAD_FLAGS, (g) => void g.write(header(RequestCode.HEARTBEAT, 1 | 0x100, 1, 0))],
  ["REPLY and NEED_REPLY together", LinkErrorCode.BAD_FLAGS, (g) => void g.write(header(RequestCode.HEARTBEAT, 1 | Flag.REPLY | Flag.NEED_REPLY, 1, 0))],
  ["an unknown request code", LinkErrorCode.UNKNOWN_CODE, (g) => void g.write(header(0x42, 1, 1, 0))],
  ["a header claiming 4 GiB of payload", LinkErrorCode.PAYLOAD_TOO_LARGE, (g) => void g.write(header(RequestCode.PAGE_RESPONSES, 1, 1, 0xffffffff))],
  ["a header one byte above max_payload", LinkErrorCode.PAYLOAD_TOO_LARGE, (g) => void g.write(header(RequestCode.PAGE_RESPONSES, 1, 1, 262145))],
  ["a payload that is not protobuf", LinkErrorCode.MALFORMED_PAYLOAD, (g) => void g.write(Buffer.concat([header(RequestCode.PAGE_RESPONSES, 1, 1, 8), Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0])]))],
  // There is no REPLY_ACK: a request with no reply of its own cannot ask for one, nor be answered.
  ["a CREDIT asking for a reply", LinkErrorCode.BAD_FLAGS, (g) => void g.send(RequestCode.CREDIT, pb.CreditGrant, { window: 8 }, Flag.NEED_REPLY)],
  ["PAGE_RESPONSES asking for a reply", LinkErrorCode.BAD_FLAGS, (g) => void g.send(RequestCode.PAGE_RESPONSES, pb.PageResponseBatch, { responses: [] }, Flag.NEED_REPLY)],
  ["a reply to a PAGE_REQUESTS", LinkErrorCode.BAD_FLAGS, (g) => void g.write(header(RequestCode.PAGE_REQUESTS, 1 | Flag.REPLY, 1, 0))],
  ["a batch above max_batch", LinkErrorCode.BATCH_TOO_LARGE, (g) => void g.answer(Array.from({ length: 257 }, (_, i) => 0x4000_0000 + i))],
  ["random bytes after a valid frame", null, (g) => {
    g.answer([0x4000_0000]);
    g.write(randomBytes(4096));
  }],
];

for (const [name, code, attack] of cases) {
  test(`${name}: the session ends${code ? ` with error ${code}` : ""}, the relay resyncs, nothing is lost`, async (t) => {
    const { ok, detail } = await survives(attack, code);
    t.true(ok, detail);
  });
}

test("a frame trickled one byte per read is parsed like any other; a half-sent frame is dropped at the next resync", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 10_000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 2);
  const frame = guest.frame(RequestCode.PAGE_RESPONSES, pb.PageResponseBatch, { responses: [{ tag: guest.requests[0]!.tag, code: 0 }] });
  // No heartbeat of the guest's own may land between two of the frame's bytes.
  guest.stopHeartbeats();
  for (const byte of frame) {
    guest.write(Buffer.from([byte]));
    await tick(1);
  }
  guest.keepAlive();
  await until(() => relay.audit.count("guest") === 1, 10_000, "the trickled answer");
  // Half a frame, then the guest "restarts": its SYNC is inside the stale payload and is not seen;
  // the relay is stuck in the payload until the bytes complete it or liveness ends the session.
  const second = guest.frame(RequestCode.PAGE_RESPONSES, pb.PageResponseBatch, { responses: [{ tag: guest.requests[1]!.tag, code: 0 }] });
  guest.write(second.subarray(0, 10));
  guest.stopHeartbeats();
  // The relay then resyncs; this guest's parser still answers its SYNC and HELLO, so a new
  // session follows at once: watch the log, not the session.
  await until(() => relay.logs.some((l) => l.includes("HEARTBEAT_TIMEOUT")), 10_000, "liveness ending the session (3 x 1 s of nothing parsed)");
  guest.keepAlive();
  await until(() => guest.requests.length === 3, 10_000, "the held group sent again");
  guest.answer([guest.requests[2]!.tag]);
  await until(() => relay.audit.count("guest") === 2, 10_000, "the second answer");
  t.deepEqual(await relay.finish(), clean(2));
});
