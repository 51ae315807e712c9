// Injected faults around the relay (the kernel side untouched): the agent
// vanishing mid-batch, the link flapping 100 times, the source refusing
// answers a detach already gave, and a transport that writes a few bytes at
// a time. After each, every group is answered exactly once, nothing is left.
import test from "ava";
import { RequestCode } from "../../src/link/request-code.js";
import { pb } from "../../src/link/messages.js";
import { until, tick } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";
import { SlowStream } from "../support/hostile-stream.js";

test.after.always(() => HostileRelay.closeAll());

test("the agent vanishes mid-batch: its whole answers count, the half-written frame is nothing, the rest go to the next agent", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 10_000, graceMs: 5000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 100);
  const tags = guest.requests.map((r) => r.tag);
  guest.answer(tags.slice(0, 25));
  const half = guest.frame(RequestCode.PAGE_RESPONSES, pb.PageResponseBatch, { responses: tags.slice(25, 50).map((tag) => ({ tag, code: 0 })) });
  guest.write(half.subarray(0, half.length >> 1));
  await tick(20);
  guest.close();
  const next = await relay.connect();
  await until(() => next.requests.length === 75, 10_000, "the 75 unanswered groups sent to the next agent");
  t.deepEqual(next.requests.map((r) => r.tag).sort(), tags.slice(25).sort());
  next.answer(next.requests.map((r) => r.tag), pb.ResponseCode.RESPONSE_INVALID);
  await until(() => relay.audit.count("guest") === 100, 10_000, "all answered");
  t.is(relay.audit.answers.size, 100);
  t.deepEqual(await relay.finish(), clean(100));
});

test("the link flaps 100 times (connect, hold groups, drop) and nothing is lost or answered twice", async (t) => {
  t.timeout(60_000);
  const relay = await HostileRelay.start({ deadlineMs: 30_000, graceMs: 5000 });
  let answeredByGuests = 0;
  for (let i = 0; i < 100; i++) {
    const guest = await relay.connect();
    await until(() => guest.epoch !== 0 && relay.core.currentSession?.epoch === guest.epoch, 10_000, `session ${i}`);
    relay.raise(2);
    await until(() => guest.requests.length >= 2, 10_000, `requests in session ${i}`);
    // Answer one of what it holds, then drop the link without a goodbye.
    guest.answer([guest.requests[0]!.tag]);
    answeredByGuests++;
    await until(() => relay.audit.count("guest") === answeredByGuests, 10_000, `answer in session ${i}`);
    guest.close();
  }
  const last = await relay.connect();
  await until(() => last.requests.length === 100, 10_000, "the 100 held groups sent to the last agent");
  last.answer(last.requests.map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 200, 10_000, "every group answered");
  t.is(relay.core.metrics.sessionsUp, 101);
  t.deepEqual(await relay.finish(), clean(200));
});

test("answers the source refuses (EINVAL: a detach answered them first) are counted once as ended by the kernel, not retried, and nothing else breaks", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 10_000 });
  const guest = await relay.connectInSession();
  relay.raise(5, 1);
  relay.raise(5, 2);
  await until(() => guest.requests.length === 10, 10_000, "10 requests");
  // The kernel answers device 2's groups INVALID at detach, behind the relay's back.
  const detached = [...relay.audit.answers.keys()].filter((g) => g.devId === 2).map((g) => g.cookie);
  t.deepEqual(relay.source.writeAnswers(detached.map((cookie) => ({ cookie, code: 1 }))).refused, []);
  guest.answer(guest.requests.map((r) => r.tag));
  await until(() => relay.core.metrics.refused === 5, 10_000, "5 refused");
  await tick(100);
  t.is(relay.core.metrics.refused, 5, "not retried");
  t.is(relay.source.snapshot().refused, 5);
  relay.raise(3, 1);
  await until(() => guest.requests.length === 13, 10_000, "later groups still flow");
  guest.answer(guest.requests.slice(10).map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 8, 10_000, "answers");
  t.is(relay.audit.count("kernel-ended"), 5, "the refused ones ended by the kernel's answer");
  const report = await relay.finish();
  t.deepEqual(report, { ...clean(13), refused: 5, answered: 13 }, "13 accepted answers: 5 by the detach, 8 from the relay");
});

test("a transport that takes a few bytes per tick (short writes, EAGAIN): 500 groups, each answered once", async (t) => {
  let slow: SlowStream | null = null;
  const relay = await HostileRelay.start({ deadlineMs: 20_000, limits: { maxBatch: 16 }, wrap: (s) => (slow = new SlowStream(s, 5)) });
  const guest = await relay.connect();
  await until(() => relay.core.currentSession !== null, 10_000, "a session over the slow transport");
  relay.raise(500);
  let answered = 0;
  while (answered < 500) {
    await until(() => guest.requests.length > answered, 10_000, `requests beyond ${answered}`);
    const batch = guest.requests.slice(answered).map((r) => r.tag);
    answered += batch.length;
    // max_batch is 16 both ways.
    for (let i = 0; i < batch.length; i += 16) guest.answer(batch.slice(i, i + 16));
  }
  await until(() => relay.audit.count("guest") === 500, 10_000, "500 answers");
  t.true(slow!.refusals >= 32, `the relay was told to wait on every frame: ${slow!.refusals} times`);
  t.is(guest.requests.length, 500, "nothing sent twice");
  t.deepEqual(await relay.finish(), clean(500));
});
