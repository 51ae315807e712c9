// Handshake abuse: Welcomes that widen the offer, absurd limits, wrong
// versions and epochs, a HELLO from the guest, renegotiation in the middle
// of a session, and silence. The relay refuses each with NEGOTIATION_FAILED,
// UNEXPECTED_MESSAGE or HANDSHAKE_TIMEOUT, never sends a group outside an
// agreed session (without one, groups wait at the source until the grace
// period ends, then are answered INVALID), and answers everything once.
import test from "ava";
import { Flag } from "../../src/link/frame-header.js";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { pb, WireHello } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { until, tick } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";

test.after.always(() => HostileRelay.closeAll());

const welcomeOf = (patch: (h: WireHello) => object) => (h: WireHello) => ({ version: 1, features: h.features, limits: h.limits, sessionEpoch: h.sessionEpoch, ...patch(h) });

const refused: [string, (h: WireHello) => object][] = [
  ["max_payload wider than offered", (h) => ({ limits: { ...h.limits, maxPayload: h.limits.maxPayload + 1 } })],
  ["max_batch of 4 billion", (h) => ({ limits: { ...h.limits, maxBatch: 0xffffffff } })],
  ["max_in_flight wider than offered", (h) => ({ limits: { ...h.limits, maxInFlight: h.limits.maxInFlight * 2 } })],
  ["heartbeat_ms shorter than offered", (h) => ({ limits: { ...h.limits, heartbeatMs: 50 } })],
  ["heartbeat_ms above the ceiling", (h) => ({ limits: { ...h.limits, heartbeatMs: 0xffffffff } })],
  ["max_payload below the least usable", (h) => ({ limits: { ...h.limits, maxPayload: 100 } })],
  ["version 2", () => ({ version: 2 })],
  ["version 0", () => ({ version: 0 })],
  ["features not offered", (h) => ({ features: h.features | 0x80 })],
  ["features in reserved bits 32-63", () => ({ features: 2 ** 40 })],
  ["a wrong session epoch", (h) => ({ sessionEpoch: h.sessionEpoch + 1 })],
];

for (const [name, patch] of refused) {
  test(`a Welcome with ${name} is refused with NEGOTIATION_FAILED; no group is sent`, async (t) => {
    const relay = await HostileRelay.start({ deadlineMs: 300, graceMs: 300 });
    relay.raise(2);
    const guest = await relay.connect();
    guest.welcome = welcomeOf(patch);
    await until(() => guest.relayErrors.some((e) => e.code === LinkErrorCode.NEGOTIATION_FAILED), 10_000, "NEGOTIATION_FAILED");
    // The code travels in its own field; the message says what the relay offered and what it got.
    t.regex(guest.relayErrors[0]!.message, /offered|least usable/);
    t.is(relay.core.currentSession, null);
    await until(() => relay.audit.count("session-lost") === 2, 10_000, "no agent within the grace period: both answered INVALID");
    t.is(guest.requests.length, 0);
    t.deepEqual(await relay.finish(), clean(2));
  });
}

test("a HELLO from the guest, and page requests or cancels from it, end the session with UNEXPECTED_MESSAGE", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  const guest = await relay.connectInSession();
  const sends = [
    () => guest.send(RequestCode.HELLO, pb.Hello, { versionMin: 1, versionMax: 1, sessionEpoch: 1 }, Flag.NEED_REPLY),
    () => guest.send(RequestCode.PAGE_REQUESTS, pb.PageRequestBatch, { requests: [{ tag: 1 }] }),
    () => guest.send(RequestCode.PAGE_CANCELS, pb.PageCancelBatch, { tags: [1] }),
  ];
  for (const send of sends) {
    const errors = guest.relayErrors.length;
    const epoch = relay.core.currentSession!.epoch;
    send();
    await until(() => guest.relayErrors.length > errors, 10_000, "an ERROR");
    t.is(guest.relayErrors.at(-1)!.code, LinkErrorCode.UNEXPECTED_MESSAGE);
    guest.resync();
    await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== epoch, 10_000, "a new session");
  }
  t.deepEqual(await relay.finish(), clean(0));
});

test("a second Welcome, a Welcome for an old HELLO id, and a session message before the handshake", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  relay.raise(3);
  const guest = await relay.connect();
  await until(() => guest.lastHello !== null && relay.core.currentSession !== null, 10_000, "a session");
  const hello = guest.lastHello!;
  // Repeating the Welcome (any id) changes nothing: it is no reply to an outstanding HELLO.
  for (const id of [1, 2, 0xffffffff]) guest.send(RequestCode.HELLO, pb.Welcome, { version: 1, features: 0, limits: { maxPayload: 4096, maxBatch: 1, maxInFlight: 1, heartbeatMs: 60000 }, sessionEpoch: hello.sessionEpoch }, Flag.REPLY, id);
  await until(() => guest.requests.length === 3, 10_000, "all 3 sent: the first agreement stands");
  t.is(relay.core.currentSession!.agreement.limits.maxInFlight, 4096);
  // A fresh SYNC ends the session; answers before the new Welcome are UNEXPECTED_MESSAGE.
  guest.welcome = () => null;
  guest.resync();
  await until(() => relay.core.currentSession === null, 10_000, "session down");
  await tick(30);
  guest.answer(guest.requests.map((r) => r.tag));
  await until(() => guest.relayErrors.some((e) => e.code === LinkErrorCode.UNEXPECTED_MESSAGE), 10_000, "UNEXPECTED_MESSAGE");
  t.is(relay.audit.count("guest"), 0, "answers outside a session are not written");
  t.deepEqual(await relay.finish(), clean(3));
});

test("a guest that never answers HELLO: HANDSHAKE_TIMEOUT, and the groups are answered once the grace period ends", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 400, graceMs: 300, handshakeTimeoutMs: 150 });
  relay.raise(2);
  const guest = await relay.connect();
  guest.welcome = () => null;
  await until(() => guest.relayErrors.some((e) => e.code === LinkErrorCode.HANDSHAKE_TIMEOUT), 10_000, "HANDSHAKE_TIMEOUT");
  await until(() => relay.audit.count("session-lost") === 2, 10_000, "session-lost answers");
  t.is(guest.requests.length, 0);
  t.deepEqual(await relay.finish(), clean(2));
});
