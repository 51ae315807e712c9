// The fault pump against the kernel emulator: under load no record is lost or
// duplicated and the event loop keeps running; it stops cleanly, reports a
// source that went away, and can start again.
import test from "ava";
import { readdirSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { FaultPump, type PumpEvent } from "../../src/kernel/fault-pump.js";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { constants, type FaultAnswer } from "../../src/kernel/uapi-structs.js";

const LAST = constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE;
// Event-loop delay allowed while the pump runs flat out. The pump hands out
// batches for at most 2 ms per turn, so the 99th percentile stays at a few ms
// (measured 2-8 ms on 2 cores); the maximum also holds GC pauses and the OS
// preempting this process when other test files and the emulator share the
// 2 cores (measured 5-34 ms). A per-record FFI call or a starved event loop
// would exceed both by far.
const P99_EVENT_LOOP_DELAY_MS = 15;
const MAX_EVENT_LOOP_DELAY_MS = 60;

const openFds = (): string[] => readdirSync("/proc/self/fd").sort();

/** Answers every group on its LAST_PAGE record (a stream may split a group across events), one write per event. */
async function relay(pump: FaultPump, seen: Map<number, number>, onOther?: (ev: PumpEvent) => void): Promise<number> {
  let groups = 0;
  for await (const ev of pump) {
    if (ev.type !== "records") {
      onOther?.(ev);
      continue;
    }
    const answers: FaultAnswer[] = [];
    for (const r of ev.records) {
      if (!(r.flags & LAST)) continue;
      answers.push({ cookie: r.cookie, code: 0 });
    }
    for (const a of answers) seen.set(a.cookie, (seen.get(a.cookie) ?? 0) + 1);
    groups += answers.length;
    const res = pump.answer(ev.fd, answers);
    if (res.rejected.length > 0) throw new Error(`rejected: ${JSON.stringify(res.rejected)}`);
  }
  return groups;
}

for (const [name, load] of [
  ["as fast as answered, 1-record groups", { devices: 4, records: 1, rate: 0, durationMs: 2500, maxOutstanding: 512 }],
  ["as fast as answered, 5-record groups", { devices: 16, records: 5, rate: 0, durationMs: 2000, maxOutstanding: 512 }],
  ["paced at 20k groups/s", { devices: 8, records: 2, rate: 20_000, durationMs: 2000, maxOutstanding: 4096 }],
] as const) {
  test.serial(`under load (${name}) every group is answered once and the event loop never stalls`, async (t) => {
    const fdsBefore = openFds();
    const emu = await KernelEmulator.start();
    const pump = new FaultPump();
    await pump.start([emu.faultFd]);
    const seen = new Map<number, number>();
    const relayed = relay(pump, seen);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    const started = performance.now();
    const { generated } = await emu.load(load);
    // Let the last answers arrive, then stop: the iterator ends once the ring is drained.
    for (let i = 0; i < 200 && (await emu.stats()).outstanding > 0; i++) await new Promise((r) => setTimeout(r, 5));
    delay.disable();
    const seconds = (performance.now() - started) / 1000;
    await pump.stop();
    const groups = await relayed;
    const stats = await emu.quit();
    await emu.close();

    const maxMs = delay.max / 1e6;
    const p99Ms = delay.percentile(99) / 1e6;
    t.log(`${Math.round(groups / seconds)} groups/s through the pump (${groups} groups); event loop delay ` +
      `max ${maxMs.toFixed(1)} ms, p99 ${p99Ms.toFixed(1)} ms; answer latency p50 ` +
      `${(stats.latencyNs.p50 / 1e3).toFixed(0)} us p99 ${(stats.latencyNs.p99 / 1e3).toFixed(0)} us`);
    t.is(groups, generated, "every generated group reached the relay");
    t.is(stats.deliveredGroups, generated);
    t.is(stats.answeredSuccess, generated, "and was answered");
    t.is(stats.outstanding, 0);
    t.is(stats.violationCount, 0, JSON.stringify(stats.violations.slice(0, 5)));
    t.true(p99Ms < P99_EVENT_LOOP_DELAY_MS, `event loop delay p99 ${p99Ms.toFixed(1)} ms, expected under ${P99_EVENT_LOOP_DELAY_MS}`);
    t.true(maxMs < MAX_EVENT_LOOP_DELAY_MS, `event loop stalled ${maxMs.toFixed(1)} ms, expected under ${MAX_EVENT_LOOP_DELAY_MS}`);
    t.deepEqual(openFds(), fdsBefore, "the worker's eventfd and the emulator socket are closed");
  });
}

test.serial("a source that goes away is reported once, not spun on, and stop() still returns", async (t) => {
  const emu = await KernelEmulator.start();
  const fd = emu.faultFd;
  const pump = new FaultPump();
  await pump.start([fd]);
  const others: PumpEvent[] = [];
  const seen = new Map<number, number>();
  const relayed = relay(pump, seen, (ev) => others.push(ev));
  await emu.raise({ dev: 1, count: 3 });
  for (let i = 0; i < 200 && seen.size < 3; i++) await new Promise((r) => setTimeout(r, 5));
  await emu.quit(); // the emulator exits: the relay's end sees POLLHUP
  for (let i = 0; i < 200 && others.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
  const cpuBefore = process.cpuUsage();
  await new Promise((r) => setTimeout(r, 200));
  const cpuMs = (process.cpuUsage(cpuBefore).user + process.cpuUsage(cpuBefore).system) / 1000;
  await pump.stop();
  await relayed;
  await emu.close();
  t.is(seen.size, 3);
  t.is(others.length, 1);
  t.like(others[0], { type: "fd-error", fd });
  t.regex((others[0] as { message: string }).message, /POLLHUP.*the source went away/);
  t.true(cpuMs < 100, `the pump used ${cpuMs.toFixed(0)} ms of CPU in 200 ms after the source left: it is spinning`);
});

test.serial("a pump can be stopped with nothing read, and started again", async (t) => {
  const fdsBefore = openFds();
  const emu = await KernelEmulator.start();
  const pump = new FaultPump({ slots: 4, recordsPerRead: 10 });
  for (let round = 0; round < 2; round++) {
    await pump.start([emu.faultFd]);
    const seen = new Map<number, number>();
    const relayed = relay(pump, seen);
    await emu.raise({ dev: 1, grpid: round * 100, count: 200, records: 2 });
    for (let i = 0; i < 400 && seen.size < 200; i++) await new Promise((r) => setTimeout(r, 5));
    await pump.stop();
    t.is(await relayed, 200);
  }
  await pump.start([emu.faultFd]);
  await pump.stop();
  const stats = await emu.quit();
  await emu.close();
  t.like(stats, { deliveredGroups: 400, answeredSuccess: 400, outstanding: 0, violationCount: 0 });
  t.deepEqual(openFds(), fdsBefore);
});

test("start() refuses a pump that is running, and answer() a fd it does not watch", async (t) => {
  const emu = await KernelEmulator.start();
  const pump = new FaultPump();
  try {
    await pump.start([emu.faultFd]);
    await t.throwsAsync(pump.start([emu.faultFd]), { message: /already started; stop\(\) it first/ });
    t.throws(() => pump.answer(12345, []), { message: /fd 12345 is not one the pump was started with/ });
    t.throws(() => new FaultPump({ slots: 3 }), { message: /power of two/ });
  } finally {
    await pump.stop();
    await emu.close();
  }
});
