// A hostile guest answering with tags it has no right to: forged, repeated,
// late, from an earlier session, out of range, and for groups never sent.
// Each is dropped and counted; the source never sees a wrong answer, and
// every group still gets exactly one answer from the right origin.
import test from "ava";
import { pb } from "../../src/link/messages.js";
import { until, tick } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";

test.after.always(() => HostileRelay.closeAll());

const SUCCESS = pb.ResponseCode.RESPONSE_SUCCESS;
const INVALID = pb.ResponseCode.RESPONSE_INVALID;

test("forged, repeated and out-of-range tags are dropped; each real group gets the code the guest chose for it", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 2000 });
  const guest = await relay.connectInSession();
  const addrs = await relay.raiseSent(guest, 20);
  const tags = guest.requests.map((r) => r.tag);
  // Forged: never issued; out of range: 0 and the u32 extremes; and a flood of repeats of one real tag.
  const forged = [0, 0xffffffff, 0x7fffffff, Math.max(...tags) + 1, Math.max(...tags) + 1000];
  guest.answer(forged);
  // Answer odd requests INVALID, even ones SUCCESS, each twice.
  const chosen = new Map(guest.requests.map((r, i) => [r.tag, i % 2 === 0 ? SUCCESS : INVALID]));
  for (let round = 0; round < 2; round++) {
    for (const [tag, code] of chosen) guest.answer([tag], code);
  }
  await until(() => relay.core.metrics.totalDropped() === forged.length + 20, 10_000, "every bad answer counted");
  t.is(relay.core.metrics.dropped.get("unknown-tag"), forged.length);
  t.is(relay.core.metrics.dropped.get("duplicate"), 20);
  t.truthy(relay.core.currentSession, "bad tags do not end the session");
  for (const r of guest.requests) {
    const addr = r.pages[0]!.address;
    t.deepEqual(relay.audit.byAddress(addr), [{ code: chosen.get(r.tag) === SUCCESS ? 0 : 1, origin: "guest" }]);
  }
  t.deepEqual(await relay.finish(), clean(addrs.length));
});

test("late answers (after the deadline answered) and answers of an earlier session are dropped, never written", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 400, graceMs: 5000 });
  const guest = await relay.connectInSession();
  relay.raise(5);
  await until(() => relay.audit.count("deadline") === 5, 10_000, "deadline answers");
  const late = guest.requests.map((r) => r.tag);
  guest.answer(late);
  await until(() => relay.core.metrics.dropped.get("late") === 5, 10_000, "late answers counted");

  // A second session that holds one group at a time: of the 3 groups held in the first session,
  // one is sent again (same tag) and two wait in the queue. Answers for those two are from a
  // session that is gone: the tag is live but not this session's to answer.
  relay.raise(3);
  await until(() => guest.requests.length === 8, 10_000, "3 more requests");
  const firstEpoch = relay.core.currentSession!.epoch;
  const heldInFirst = guest.requests.slice(5).map((r) => r.tag);
  guest.welcome = (hello) => ({ version: 1, features: hello.features, limits: { ...hello.limits, maxInFlight: 1 }, sessionEpoch: hello.sessionEpoch });
  guest.resync();
  await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== firstEpoch, 10_000, "a new session");
  await until(() => guest.requests.length === 9, 10_000, "one requeued group sent again");
  const resent = guest.requests[8]!.tag;
  t.true(heldInFirst.includes(resent), "a requeued group keeps its tag");
  guest.answer(heldInFirst.filter((tag) => tag !== resent));
  await until(() => relay.core.metrics.dropped.get("foreign-session") === 2, 10_000, "foreign answers counted");
  guest.answer([resent], INVALID);
  await until(() => relay.audit.count("guest") === 1, 10_000, "the resent group answered in the new session");
  t.deepEqual(await relay.finish(), clean(8));
});

test("an answer that arrives for a group never sent (still queued behind a zero window) is dropped", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 150 });
  const guest = await relay.connectInSession();
  guest.credit(0);
  await tick(30);
  relay.raise(4);
  await tick(30);
  t.is(guest.requests.length, 0, "nothing sent with window 0");
  // Guess the tags a relay would give: small integers from 1.
  guest.answer([1, 2, 3, 4, 5, 6, 7, 8]);
  await until(() => relay.core.metrics.totalDropped() === 8, 10_000, "guesses dropped");
  t.is(relay.core.metrics.dropped.get("foreign-session"), 4, "queued groups are not the guest's to answer");
  await until(() => relay.audit.count("deadline") === 4, 10_000, "the deadline answers them");
  t.deepEqual(await relay.finish(), clean(4));
});

test("answer codes outside 0..2 answer the group INVALID and are counted; the session goes on", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 3);
  const codes = [3, -1, 0x7fffffff];
  guest.requests.forEach((r, i) => guest.answer([r.tag], codes[i]));
  await until(() => relay.audit.count("guest") === 3, 10_000, "the 3 answered");
  for (const r of guest.requests) t.deepEqual(relay.audit.byAddress(r.pages[0]!.address), [{ code: INVALID, origin: "guest" }]);
  t.is(relay.core.metrics.unknownCodes, 3);
  t.truthy(relay.core.currentSession);
  t.deepEqual(guest.relayErrors, []);
  t.deepEqual(await relay.finish(), clean(3));
});
