// Credit and liveness abuse: a window of 0 then 4 billion, a CREDIT flood,
// and a guest that falls silent. The window never exceeds the agreed
// max_in_flight, queued groups are answered by their deadline, and a silent
// guest loses its session after three heartbeat intervals.
import test from "ava";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { until, tick } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";
import { echoOffer } from "../support/hostile-guest.js";
import { measureRss } from "../support/hostile-memory.js";

test.after.always(() => HostileRelay.closeAll());

test("window 0, then 4 billion: clamped to max_in_flight; never more in flight than that", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000, limits: { maxInFlight: 64 } });
  const guest = await relay.connectInSession();
  guest.credit(0);
  await tick(30);
  relay.raise(200);
  await tick(50);
  t.is(guest.requests.length, 0, "window 0 sends nothing");
  guest.credit(0xffffffff);
  await until(() => guest.requests.length === 64, 10_000, "64 sent");
  await tick(50);
  t.is(guest.requests.length, 64, "clamped to max_in_flight 64");
  t.is(relay.core.metrics.creditWindow, 64);
  let answered = 0;
  while (answered < 200) {
    await until(() => guest.requests.length > answered, 10_000, "more requests");
    const batch = guest.requests.slice(answered).map((r) => r.tag);
    answered += batch.length;
    guest.answer(batch);
  }
  await until(() => relay.audit.count("guest") === 200, 10_000, "all answered by the guest");
  t.deepEqual(await relay.finish(), clean(200));
});

test("a group whose deadline passed while it waited for credit is answered by its deadline, never sent with budget_us 0", async (t) => {
  const deadlineMs = 50;
  // The group raised last, on device 2, must be sent however slow the machine: its deadline is long.
  const patientMs = 30_000;
  let blockNextChunk = false;
  const relay = await HostileRelay.start({
    deadlineMs,
    deadlineByDevId: { 2: patientMs },
    // Runs before the relay's own listener: holds the loop past every deadline just as the CREDIT arrives, so the
    // send that the CREDIT schedules (an immediate) runs before the deadline timers do.
    wrap: (stream) => stream.on("data", () => {
      if (!blockNextChunk) return;
      blockNextChunk = false;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, deadlineMs * 2);
    }),
  });
  const guest = await relay.connectInSession();
  guest.stopHeartbeats();
  guest.credit(0);
  await until(() => relay.core.metrics.creditWindow === 0, 10_000, "window 0");
  relay.raise(3);
  await until(() => relay.core.queued === 3, 10_000, "3 groups read and waiting for credit");
  blockNextChunk = true;
  guest.credit(10);
  await until(() => relay.audit.count("deadline") === 3, 10_000, "the 3 answered by their deadline");
  // A group raised now is sent; anything sent before it arrived before it.
  relay.raise(1, 2);
  await until(() => guest.requests.length > 0, 10_000, "the next group sent");
  t.deepEqual(guest.requests.map((r) => r.endpoint), [2], "only the new group was sent");
  t.true(guest.requests[0]!.budgetUs > 0 && guest.requests[0]!.budgetUs <= patientMs * 1000, "with a budget within its deadline");
  t.deepEqual(await relay.finish(), clean(4));
});

test("a flood of 500k CREDIT frames: cheap, bounded, and the last window wins", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  const guest = await relay.connectInSession();
  const frames = Buffer.concat(Array.from({ length: 1000 }, (_, i) => guest.frame(RequestCode.CREDIT, pb.CreditGrant, { window: i % 2 === 0 ? 0 : 0xffffffff })));
  const { memory } = await measureRss(() => guest.pour(Array.from({ length: 500 }, () => frames)));
  guest.credit(5);
  await until(() => relay.core.metrics.creditWindow === 5, 10_000, "the last window");
  t.log(`500k CREDITs: RSS ${memory.baselineMb} -> peak ${memory.peakMb} MB (+${memory.growthMb})`);
  t.true(memory.growthMb < 96, `RSS grew ${memory.growthMb} MB`);
  relay.raise(10);
  await until(() => guest.requests.length === 5, 10_000, "5 sent with window 5");
  guest.answer(guest.requests.map((r) => r.tag));
  await until(() => guest.requests.length === 10, 10_000, "the rest");
  guest.answer(guest.requests.slice(5).map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 10, 10_000, "all answered");
  t.deepEqual(await relay.finish(), clean(10));
});

// Serial: the floods of this file, run beside it, would starve its 100 ms heartbeats.
test.serial("heartbeat silence: the session ends with HEARTBEAT_TIMEOUT after 3 intervals, the held groups wait for the next", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000, limits: { heartbeatMs: 100 } });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 3);
  guest.welcome = (hello) => ({ ...echoOffer(hello), limits: { ...hello.limits, heartbeatMs: 60_000 } });
  guest.stopHeartbeats();
  const silentFrom = Date.now();
  await until(() => guest.relayErrors.some((e) => e.code === LinkErrorCode.HEARTBEAT_TIMEOUT), 10_000, "HEARTBEAT_TIMEOUT");
  const silentMs = Date.now() - silentFrom;
  // The relay counts 3 intervals of silence from the last frame it parsed, which can
  // be most of an interval before the test stopped heartbeats, and checks every half
  // interval: so 100-300 ms after the stop, later only on a loaded machine.
  t.true(silentMs >= 100, `ended after ${silentMs} ms of silence: not before the intervals allowed (3 of 100 ms from the last frame parsed)`);
  // The relay resyncs on its own; the guest only ACKs and welcomes. Its heartbeats
  // resume, and the next session negotiates a long interval so that a loaded
  // machine stalling the event loop past 300 ms cannot end that one too.
  guest.keepAlive(50);
  await until(() => guest.requests.length === 6, 10_000, "sent again to the next session");
  guest.answer(guest.requests.slice(3).map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 3, 10_000, "answers");
  t.deepEqual(guest.relayErrors.map((e) => e.code), [LinkErrorCode.HEARTBEAT_TIMEOUT], "the relay ended one session, on purpose, once");
  t.deepEqual(await relay.finish(), clean(3));
});
