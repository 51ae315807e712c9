// The relay core between a synthetic kernel-contract source and a guest link
// over an in-memory stream: every group answered exactly once, by the right
// origin, whatever the guest does; groups the relay has no room for wait in
// the source (the kernel's list) rather than being answered.
import test from "ava";
import { RelayCore } from "../../src/relay/relay-core.js";
import { SyntheticSource } from "../../src/fault/sources/synthetic-source.js";
import { pb } from "../../src/link/messages.js";
import { ALL_FEATURES, Feature, OUR_CAPABILITIES } from "../../src/link/negotiation.js";
import { createLogger } from "../../src/relay/log.js";
import { memoryPair, until } from "../support/memory-stream.js";
import { makeGuest, FAST_TIMERS } from "../support/link-peers.js";
import { simpleDevices } from "../support/simple-devices.js";
import { buildFrame } from "../../src/link/frame-sender.js";
import { RequestCode } from "../../src/link/request-code.js";

interface SetupOptions {
  deadlineMs?: number;
  graceMs?: number;
  maxHeld?: number;
  /** The agent's features; CANCELS off tests the window without cancels. */
  guestFeatures?: number;
  recentMemory?: number;
}

function setup(opts: SetupOptions = {}) {
  const logs: string[] = [];
  const core = new RelayCore({
    devices: simpleDevices(opts.deadlineMs ?? 100),
    link: { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [], software: "test-relay", resyncTimers: FAST_TIMERS },
    sessionGraceMs: opts.graceMs ?? 1000,
    readAhead: 4,
    ...(opts.maxHeld !== undefined ? { maxHeld: opts.maxHeld } : {}),
    ...(opts.recentMemory !== undefined ? { ledger: { recentMemory: opts.recentMemory } } : {}),
    log: createLogger("test-relay", "json", "debug", (line) => logs.push(line)),
  });
  const source = new SyntheticSource(1);
  core.addSource(source);
  const [h, g] = memoryPair();
  core.attach(h);
  const guest = makeGuest(g, opts.guestFeatures === undefined ? undefined : { ...OUR_CAPABILITIES, features: opts.guestFeatures });
  guest.link.start();
  return { core, source, guest, h, g, logs };
}

function raise(source: SyntheticSource, n: number, devId = 1): void {
  for (let i = 0; i < n; i++) source.raise({ devId, pasid: 1, grpid: i % 512, perm: 1, addr: 0x100000 + i * 4096 });
}

/**
 * A deadline for tests whose groups must reach the agent before they expire: a group whose
 * deadline comes while it waits is answered, not sent (budget_us is never 0), and on a loaded
 * machine tens of milliseconds can pass between the read and the send.
 */
const SENT_FIRST_MS = 1000;

test("groups go to the agent and its answers back to the source, once each", async (t) => {
  const { core, source, guest } = setup();
  await until(() => core.currentSession !== null);
  raise(source, 50);
  await until(() => source.snapshot().answered === 50, 10_000, "50 answers");
  t.is(source.snapshot().refused, 0);
  t.is(source.snapshot().outstanding, 0);
  t.is(guest.requests.length, 50);
  t.is(core.metrics.answers.get("guest")?.success, 50);
  t.true(guest.requests.every((r) => r.tag > 0 && r.endpoint === 1), "the guest sees relay tags and guest endpoints");
  await core.shutdown();
});

test("a guest that never answers: the deadline answers INVALID, and the agent is told", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: SENT_FIRST_MS });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  raise(source, 5);
  await until(() => source.snapshot().answered === 5, 10_000);
  t.is(core.metrics.answers.get("deadline")?.invalid, 5);
  await until(() => guest.cancels.length === 5);
  await core.shutdown();
});

test("late answers, sent raw past the agent's own filter, are dropped and counted, never written", async (t) => {
  const { core, source, guest, g } = setup({ deadlineMs: SENT_FIRST_MS });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  raise(source, 3);
  await until(() => source.snapshot().answered === 3, 10_000, "the deadline answers");
  // GuestLink would not send answers for cancelled tags: a hostile guest writes the frame itself.
  g.write(buildFrame(RequestCode.PAGE_RESPONSES, 0, 900, pb.PageResponseBatch, { responses: guest.requests.map((r) => ({ tag: r.tag, code: 0 })) }));
  await until(() => core.metrics.dropped.get("late") === 3, 10_000, "three late answers dropped");
  t.is(source.snapshot().refused, 0, "nothing reached the source");
  t.is(source.snapshot().answered, 3);
  await core.shutdown();
});

test("forged, repeated and unknown tags from the guest are dropped and counted, never written", async (t) => {
  const { core, source, guest, g } = setup();
  guest.answer = null;
  await until(() => core.currentSession !== null);
  raise(source, 3);
  await until(() => guest.requests.length === 3);
  const epoch = core.currentSession!.epoch;
  const tags = guest.requests.map((r) => r.tag);
  // Bypass the agent's own checks: write raw answer frames as a hostile guest would.
  const forged = [{ tag: 999_999, code: 0 }, { tag: tags[0]!, code: 0 }, { tag: tags[0]!, code: 0 }, { tag: 0, code: 1 }];
  g.write(buildFrame(RequestCode.PAGE_RESPONSES, 0, 500, pb.PageResponseBatch, { responses: forged }));
  await until(() => core.metrics.totalDropped() === 3 && source.snapshot().answered === 1);
  t.is(core.metrics.dropped.get("unknown-tag"), 2);
  t.is(core.metrics.dropped.get("duplicate"), 1);
  t.is(source.snapshot().answered, 1);
  t.is(core.currentSession?.epoch, epoch, "dropped answers do not end the session");
  await core.shutdown();
  t.is(source.snapshot().outstanding, 0);
  t.is(source.snapshot().refused, 0);
});

test("a device the map does not know is answered INVALID at once", async (t) => {
  const { core, source } = setup();
  await until(() => core.currentSession !== null);
  raise(source, 2, 500);
  await until(() => source.snapshot().answered === 2);
  t.is(core.metrics.answers.get("unknown-device")?.invalid, 2);
  await core.shutdown();
});

test("a lost session's groups are sent again to the agent that comes back within the grace period", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: 5000 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  raise(source, 4);
  await until(() => guest.requests.length === 4);
  const firstEpoch = core.currentSession!.epoch;
  // The agent restarts: a new SYNC on the same stream.
  guest.link.start();
  guest.answer = 0;
  await until(() => core.currentSession !== null && core.currentSession.epoch !== firstEpoch, 10_000, "new session");
  await until(() => source.snapshot().answered === 4, 10_000, "answers from the new session");
  t.is(core.metrics.answers.get("guest")?.success, 4);
  t.is(guest.requests.length, 8, "each group sent once per session");
  await core.shutdown();
});

test("before any session nothing is read: groups wait in the source, and expire by no deadline", async (t) => {
  const { core, source, g } = setup({ deadlineMs: 20, graceMs: 60_000 });
  g.destroy();
  raise(source, 3);
  await until(() => source.snapshot().waiting === 3, 10_000, "the groups raised");
  t.is(source.snapshot().delivered, 0, "the relay reads nothing it has nobody to show to");
  t.is(core.metrics.answers.get("deadline"), undefined);
  await core.shutdown();
});

test("no agent within the grace period: the waiting groups are read and answered INVALID", async (t) => {
  const { core, source, g } = setup({ deadlineMs: 5000, graceMs: 50 });
  g.destroy();
  raise(source, 3);
  await until(() => source.snapshot().answered === 3, 10_000);
  t.is(core.metrics.answers.get("session-lost")?.invalid, 3);
  await core.shutdown();
});

test("shutdown answers every group read, sent or still queued, SUCCESS: the device retries with the next reader", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: 5000 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  guest.link.grantCredit(6);
  await until(() => core.metrics.creditWindow === 6, 10_000, "the new window");
  raise(source, 8);
  await until(() => guest.requests.length === 6 && core.queued === 2);
  await core.shutdown();
  t.is(source.snapshot().answered, 8);
  t.is(source.snapshot().outstanding, 0);
  t.is(core.metrics.answers.get("shutdown")?.success, 8);
});

test("the credit window bounds what the agent holds, and one read ahead what the relay holds; the rest waits in the source", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: 5000 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  guest.link.grantCredit(3);
  raise(source, 20);
  await until(() => guest.requests.length === 3 && core.held === 3 + 4, 10_000, "three sent, four read ahead");
  t.is(source.snapshot().waiting, 20 - 7, "the rest was never read");
  guest.link.sendResponses(guest.requests.map((r) => r.tag), guest.requests.map(() => 0));
  await until(() => guest.requests.length === 6);
  await core.shutdown();
  t.is(source.snapshot().answered, 7 + 3, "the read groups, answered by the guest or at shutdown");
  t.is(source.snapshot().waiting, 20 - 10);
});

test("without CANCELS, a tag answered by its deadline counts against the window until the agent answers it, however long after", async (t) => {
  const { core, source, guest, g } = setup({ deadlineMs: SENT_FIRST_MS, guestFeatures: ALL_FEATURES & ~Feature.CANCELS, recentMemory: 4 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  guest.link.grantCredit(2);
  raise(source, 2);
  await until(() => core.metrics.answers.get("deadline")?.invalid === 2, 10_000, "both expired while the agent holds them");
  const owed = guest.requests.map((r) => r.tag);
  raise(source, 2);
  // The window is full of owed tags: nothing more is sent. Many groups settle meanwhile, so the ledger forgets the owed tags' answers.
  raise(source, 20, 500);
  await until(() => core.metrics.answers.get("unknown-device")?.invalid === 20, 10_000, "other groups settling");
  t.is(guest.requests.length, 2, "no credit while the agent holds two expired groups");
  g.write(buildFrame(RequestCode.PAGE_RESPONSES, 0, 901, pb.PageResponseBatch, { responses: owed.map((tag) => ({ tag, code: 0 })) }));
  // Raised after the late answers: the two raised before may have met their deadline in the queue meanwhile.
  raise(source, 2);
  await until(() => guest.requests.length === 4, 10_000, "the late answers gave the credit back");
  t.is(core.metrics.dropped.get("late"), 2);
  await core.shutdown();
});
