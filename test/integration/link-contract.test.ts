// The link's contract as docs/protocol.md states it, checked against a relay
// by a guest that speaks raw frames: a SYNC answered while hunting counts
// (6.1); what is valid outside a session (section 3); a session's unanswered
// groups come again with their tags and original deadlines (6.7); a drain
// with CREDIT 0 before GOODBYE leaves nothing to send again (6.9).
import test from "ava";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { pb } from "../../src/link/messages.js";
import { encodeMarker, MarkerKind } from "../../src/link/sync-marker.js";
import { until } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";

test.after.always(() => HostileRelay.closeAll());

/** The relay's "agent session down" log lines, parsed. */
function sessionDowns(relay: HostileRelay): { requeued: number; cause: string }[] {
  return relay.logs.map((l) => JSON.parse(l) as { msg: string; requeued: number; cause: string }).filter((l) => l.msg === "agent session down");
}

test("a SYNC the relay answered while hunting counts: sent again once aligned it draws an ACK and nothing else; a new one starts a new session", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  // The guest's SYNC goes out as it connects, before its ACK of the relay's SYNC: the relay, hunting until that ACK, answers it then.
  const guest = await relay.connectInSession();
  const epoch = relay.core.currentSession!.epoch;
  guest.write(encodeMarker(MarkerKind.SYNC, guest.nonce));
  await guest.barrier();
  t.is(guest.hellos, 1, "no new handshake");
  t.is(relay.core.currentSession?.epoch, epoch, "the session goes on");
  t.deepEqual(guest.relayErrors, []);

  guest.resync();
  await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== epoch, 10_000, "a new session");
  t.is(guest.hellos, 2);
  t.deepEqual(await relay.finish(), clean(0));
});

test("outside a session HEARTBEAT and GOODBYE are answered and PAGE_RESPONSES is UNEXPECTED_MESSAGE; the groups held come again with their tags and what is left of their deadlines", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 30_000, graceMs: 60_000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 3);
  const first = guest.requests.slice(0, 3);

  guest.goodbye(pb.GoodbyeReason.GOODBYE_RESTART);
  await until(() => guest.goodbyeReplies.length === 1, 10_000, "the reply to the GOODBYE");
  t.is(relay.core.currentSession, null);
  await guest.barrier();
  guest.goodbye(pb.GoodbyeReason.GOODBYE_SHUTDOWN);
  await until(() => guest.goodbyeReplies.length === 2, 10_000, "the reply to a GOODBYE outside a session");
  t.is(relay.core.metrics.sessionsDown, 1, "a GOODBYE outside a session ends nothing");
  t.deepEqual(sessionDowns(relay).map((d) => [d.cause, d.requeued]), [["goodbye-received", 3]]);
  t.deepEqual(guest.relayErrors, []);

  guest.answer(first.map((r) => r.tag));
  await until(() => guest.relayErrors.length > 0, 10_000, "the relay's ERROR");
  t.deepEqual(guest.relayErrors.map((e) => e.code), [LinkErrorCode.UNEXPECTED_MESSAGE]);
  // The relay resyncs; the guest ACKs and welcomes: the next session gets the 3 again.
  await until(() => guest.requests.length === 6, 10_000, "the 3 sent again");
  t.is(relay.audit.count("guest"), 0, "answers sent outside a session were not taken");
  const again = guest.requests.slice(3);
  t.deepEqual(again.map((r) => r.tag), first.map((r) => r.tag), "same tags, in the order read");
  for (const [i, r] of again.entries()) {
    t.true(r.budgetUs > 0 && r.budgetUs < first[i]!.budgetUs, `budget ${r.budgetUs} us is what is left of the first ${first[i]!.budgetUs} us`);
  }
  guest.answer(again.map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 3, 10_000, "answered in the new session");
  t.deepEqual(await relay.finish(), clean(3));
});

test("a drain before GOODBYE: CREDIT 0, a heartbeat's echo, every group answered; nothing is sent again", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 30_000, graceMs: 60_000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 3);
  // More groups race with the window of 0: some may be sent before the relay handles it.
  relay.raise(3);
  guest.credit(0);
  await guest.barrier();
  const got = guest.requests.length;
  guest.answer(guest.requests.map((r) => r.tag));
  guest.goodbye(pb.GoodbyeReason.GOODBYE_SHUTDOWN);
  await until(() => guest.goodbyeReplies.length === 1, 10_000, "the reply to the GOODBYE");
  t.is(guest.requests.length, got, "nothing sent after the echo");
  t.is(relay.audit.count("guest"), got, "every group sent was answered by the guest");
  t.deepEqual(sessionDowns(relay).map((d) => [d.cause, d.requeued]), [["goodbye-received", 0]]);
  const result = await relay.finish();
  t.deepEqual(result, clean(result.delivered));
});
