// Floods from a hostile guest: a million forged answers, SYNC storms, endless
// ERROR frames, and a guest that asks for replies and never reads them. The
// relay stays up, writes nothing wrong to the source, answers every group
// once, and its memory growth stays under the stated bound (RSS sampled every
// 5 ms; serial, so one flood at a time in this process).
import test from "ava";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { Flag } from "../../src/link/frame-header.js";
import { buildFrame } from "../../src/link/frame-sender.js";
import { encodeMarker, MarkerKind } from "../../src/link/sync-marker.js";
import { until } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";
import type { HostileGuest } from "../support/hostile-guest.js";
import { measureRss } from "../support/hostile-memory.js";
import { deafGuest, flood } from "../support/hostile-socket.js";

test.after.always(() => HostileRelay.closeAll());

/** Stated bound on RSS growth under any flood below (the relay, the guest and their buffers together). */
const FLOOD_GROWTH_BOUND_MB = 96;

/** count units of `make(i)`, packed into chunks of about 64 KiB. */
function* packed(count: number, make: (i: number) => Buffer): Generator<Buffer> {
  let parts: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const b = make(i);
    parts.push(b);
    bytes += b.length;
    if (bytes >= 65536) {
      yield Buffer.concat(parts);
      parts = [];
      bytes = 0;
    }
  }
  if (parts.length > 0) yield Buffer.concat(parts);
}

/** After a flood: a behaving session on a new connection still gets groups and answers them. */
/** A relay whose guest holds 5 groups with deadlines and grace long enough to outlast any flood. */
async function holdingFive(): Promise<{ relay: HostileRelay; guest: HostileGuest }> {
  const relay = await HostileRelay.start({ deadlineMs: 30_000, graceMs: 60_000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 5);
  return { relay, guest };
}

async function stillServes(relay: HostileRelay): Promise<void> {
  const guest = await relay.connect();
  await until(() => relay.core.currentSession !== null && guest.epoch === relay.core.currentSession.epoch, 10_000, "a session after the flood");
  relay.raise(10);
  await until(() => guest.requests.length >= 10, 10_000, "requests after the flood");
  guest.answer(guest.requests.slice(-10).map((r) => r.tag));
  await until(() => relay.audit.count("guest") >= 10, 10_000, "answers after the flood");
  guest.close();
}

test.serial("a million forged answers: all dropped and counted, memory bounded, real answers still land", async (t) => {
  t.timeout(120_000);
  const relay = await HostileRelay.start({ deadlineMs: 30_000 });
  const guest = await relay.connectInSession();
  await relay.raiseSent(guest, 8);
  const real = new Set(guest.requests.map((r) => r.tag));
  const BATCH = 256;
  const FRAMES = Math.ceil(1_000_000 / BATCH);
  const { memory } = await measureRss(async () => {
    // Tags far above any the relay issued in this test: every one is unknown.
    await guest.pour(packed(FRAMES, (i) => guest.frame(RequestCode.PAGE_RESPONSES, pb.PageResponseBatch, {
      responses: Array.from({ length: BATCH }, (_, j) => ({ tag: 0x4000_0000 + i * BATCH + j, code: 0 })),
    })));
    await until(() => relay.core.metrics.totalDropped() === FRAMES * BATCH, 60_000, "every forged answer counted");
  });
  t.log(`${FRAMES * BATCH} forged answers: RSS ${memory.baselineMb} -> peak ${memory.peakMb} MB (+${memory.growthMb})`);
  t.true(memory.growthMb < FLOOD_GROWTH_BOUND_MB, `RSS grew ${memory.growthMb} MB, bound ${FLOOD_GROWTH_BOUND_MB}`);
  guest.answer([...real]);
  await until(() => relay.audit.count("guest") === 8, 10_000, "the real answers");
  t.deepEqual(await relay.finish(), clean(8));
});

test.serial("a storm of 200k SYNC markers with fresh nonces: one session at a time, nothing lost", async (t) => {
  t.timeout(120_000);
  const { relay, guest } = await holdingFive();
  guest.welcome = () => null;
  const { memory } = await measureRss(async () => {
    await guest.pour(packed(200_000, (i) => encodeMarker(MarkerKind.SYNC, BigInt(i + 1) * 0x9e3779b97f4a7c15n & 0xffffffffffffffffn)));
    // Either the relay works through the storm, or the guest (reading in this same process, so
    // slower than the relay writes) leaves too much unread and is cut off: both are bounded.
    await until(() => guest.closed || guest.hellos >= 100_000, 60_000, "the relay working through the storm");
  });
  t.log(`200k SYNCs: ${guest.hellos} HELLOs read by the guest, guest cut off: ${guest.closed}; RSS ${memory.baselineMb} -> peak ${memory.peakMb} MB (+${memory.growthMb})`);
  t.true(memory.growthMb < FLOOD_GROWTH_BOUND_MB, `RSS grew ${memory.growthMb} MB, bound ${FLOOD_GROWTH_BOUND_MB}`);
  t.is(relay.core.inFlight, 5, "the groups wait for the next session");
  guest.close();
  await stillServes(relay);
  t.deepEqual(await relay.finish(), clean(15));
});

test.serial("endless ERROR frames: the session ends once, the relay waits, nothing is answered twice", async (t) => {
  t.timeout(120_000);
  const { relay, guest } = await holdingFive();
  const { memory } = await measureRss(() => guest.pour(packed(200_000, () => guest.frame(RequestCode.ERROR, pb.Error, { code: 7, message: "x".repeat(100) }))));
  t.log(`200k ERROR frames: RSS ${memory.baselineMb} -> peak ${memory.peakMb} MB (+${memory.growthMb}), sessions down ${relay.core.metrics.sessionsDown}`);
  t.true(memory.growthMb < FLOOD_GROWTH_BOUND_MB, `RSS grew ${memory.growthMb} MB, bound ${FLOOD_GROWTH_BOUND_MB}`);
  t.is(relay.core.metrics.sessionsDown, 1);
  t.is(relay.core.inFlight, 5);
  guest.close();
  await stillServes(relay);
  t.deepEqual(await relay.finish(), clean(15));
});

// A guest that sends SYNCs (each draws an ACK and, once aligned, a HELLO) or
// heartbeats with NEED_REPLY, and never reads: the replies pile up on the
// relay's side. The relay must cut such a guest off instead of buffering.
for (const kind of ["SYNC markers", "heartbeats with NEED_REPLY"] as const) {
  test.serial(`a guest that floods ${kind} and never reads is cut off before the relay's memory grows`, async (t) => {
    t.timeout(120_000);
    const relay = await HostileRelay.start({ deadlineMs: 30_000, graceMs: 60_000, handshakeTimeoutMs: 60_000 });
    const socket = await deafGuest(relay.path);
    let closed = false;
    socket.on("close", () => (closed = true));
    socket.on("error", () => undefined);
    const COUNT = 2_000_000;
    const unit = kind === "SYNC markers"
      ? (i: number) => encodeMarker(MarkerKind.SYNC, BigInt(i + 1))
      : (i: number) => buildFrame(RequestCode.HEARTBEAT, Flag.NEED_REPLY, i + 1, pb.Heartbeat, { sentUs: i });
    const { memory } = await measureRss(() => flood(socket, packed(COUNT, unit)));
    t.log(`${COUNT} ${kind} unread replies: RSS ${memory.baselineMb} -> peak ${memory.peakMb} MB (+${memory.growthMb}); cut off: ${closed}`);
    t.true(memory.growthMb < FLOOD_GROWTH_BOUND_MB, `RSS grew ${memory.growthMb} MB, bound ${FLOOD_GROWTH_BOUND_MB}`);
    await until(() => closed, 10_000, "the relay closing the deaf guest's connection");
    socket.destroy();
    await stillServes(relay);
    t.deepEqual(await relay.finish(), clean(10));
  });
}
