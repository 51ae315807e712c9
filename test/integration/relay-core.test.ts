// The relay core between a synthetic kernel-contract source and a guest link
// over an in-memory stream: every group answered exactly once, by the right
// origin, whatever the guest does.
import test from "ava";
import { RelayCore } from "../../src/relay/relay-core.js";
import { SyntheticSource } from "../../src/fault/sources/synthetic-source.js";
import { pb } from "../../src/link/messages.js";
import { memoryPair, until, tick } from "../support/memory-stream.js";
import { makeGuest, FAST_TIMERS } from "../support/link-peers.js";
import { simpleDevices } from "../support/simple-devices.js";
import { buildFrame } from "../../src/link/frame-sender.js";
import { RequestCode } from "../../src/link/request-code.js";

function setup(opts: { deadlineMs?: number; graceMs?: number } = {}) {
  const logs: string[] = [];
  const core = new RelayCore({
    devices: simpleDevices(opts.deadlineMs ?? 100),
    link: { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [], software: "test-relay", resyncTimers: FAST_TIMERS },
    sessionGraceMs: opts.graceMs ?? 1000,
    log: (msg) => logs.push(msg),
  });
  const source = new SyntheticSource(1);
  core.addSource(source);
  const [h, g] = memoryPair();
  core.attach(h);
  const guest = makeGuest(g);
  guest.link.start();
  return { core, source, guest, h, g, logs };
}

function raise(source: SyntheticSource, n: number, devId = 1): number[] {
  return Array.from({ length: n }, (_, i) => source.raise({ devId, pasid: 1, grpid: i % 512, perm: 1, addr: 0x100000 + i * 4096 }));
}

test("groups go to the agent and its answers back to the source, once each", async (t) => {
  const { core, source, guest } = setup();
  await until(() => core.currentSession !== null);
  raise(source, 50);
  await until(() => source.snapshot().answered === 50, 3000, "50 answers");
  t.is(source.snapshot().refused, 0);
  t.is(source.snapshot().outstanding, 0);
  t.is(guest.requests.length, 50);
  t.is(core.metrics.answers.get("guest")?.success, 50);
  t.true(guest.requests.every((r) => r.tag > 0 && r.endpoint === 1), "the guest sees relay tags and guest endpoints");
  await core.shutdown();
});

test("a guest that never answers: the deadline answers INVALID, and the agent is told", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: 30 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  raise(source, 5);
  await until(() => source.snapshot().answered === 5, 2000);
  t.is(core.metrics.answers.get("deadline")?.invalid, 5);
  await until(() => guest.cancels.length === 5);
  // A late answer is dropped, never written.
  guest.link.sendResponses(guest.requests.map((r) => ({ tag: r.tag, code: 0 })));
  await tick(20);
  t.is(source.snapshot().refused, 0);
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
  const { core, source, guest, g } = setup({ deadlineMs: 5000 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  raise(source, 4);
  await until(() => guest.requests.length === 4);
  const firstEpoch = core.currentSession!.epoch;
  // The agent restarts: a new SYNC on the same stream.
  guest.link.start();
  guest.answer = 0;
  await until(() => core.currentSession !== null && core.currentSession.epoch !== firstEpoch, 2000, "new session");
  await until(() => source.snapshot().answered === 4, 2000, "answers from the new session");
  t.is(core.metrics.answers.get("guest")?.success, 4);
  t.is(guest.requests.length, 8, "each group sent once per session");
  void g;
  await core.shutdown();
});

test("no agent within the grace period: waiting groups and new ones are answered INVALID", async (t) => {
  const { core, source, g } = setup({ deadlineMs: 5000, graceMs: 50 });
  g.destroy();
  raise(source, 3);
  await until(() => source.snapshot().answered === 3, 2000);
  t.is(core.metrics.answers.get("session-lost")?.invalid, 3);
  await core.shutdown();
});

test("shutdown answers every group read, sent or still queued", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: 5000 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  guest.link.grantCredit(6);
  raise(source, 8);
  await until(() => guest.requests.length === 6 && core.queued === 2);
  await core.shutdown();
  t.is(source.snapshot().answered, 8);
  t.is(source.snapshot().outstanding, 0);
  t.is(core.metrics.answers.get("shutdown")?.invalid, 8);
});

test("groups raised but not yet read at shutdown stay with the source for the next reader", async (t) => {
  const { core, source } = setup({ deadlineMs: 5000 });
  await until(() => core.currentSession !== null);
  raise(source, 2);
  await core.shutdown();
  t.is(source.snapshot().answered, 0);
  t.is(source.snapshot().outstanding, 2);
});

test("the credit window bounds what the agent holds; the rest waits", async (t) => {
  const { core, source, guest } = setup({ deadlineMs: 5000 });
  guest.answer = null;
  await until(() => core.currentSession !== null);
  guest.link.grantCredit(3);
  await tick(20);
  raise(source, 10);
  await tick(50);
  t.is(guest.requests.length, 3);
  t.is(core.queued, 7);
  guest.link.sendResponses(guest.requests.map((r) => ({ tag: r.tag, code: 0 })));
  await until(() => guest.requests.length === 6);
  await core.shutdown();
  t.is(source.snapshot().answered, 10);
});
