// The fault pump against the kernel emulator: under load no record is lost or
// duplicated and timers keep running; it never holds more groups than it is
// allowed (so no cookie passes the sweep's bound); it reads groups larger than
// one read whole, and reports one larger than it may ever read; it answers
// what a previous reader left before its first read; it stops cleanly,
// reports a source that went away, and can start again.
import test from "ava";
import { readdirSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { FaultPump, sweepBound, type PumpEvent } from "../../src/kernel/fault-pump.js";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { constants, type FaultAnswer } from "../../src/kernel/uapi-structs.js";
import { until } from "../support/memory-stream.js";

const LAST = constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE;

const openFds = (): string[] => readdirSync("/proc/self/fd").sort();

interface Relayed {
  groups: number;
  /** Records per group, in the order groups completed. */
  sizes: number[];
  others: PumpEvent[];
}

/** Answers every group on its LAST_PAGE record (its records may span events), one write per event; `answer` false only collects. */
async function relay(pump: FaultPump, out: Relayed, answer = true): Promise<void> {
  const partial = new Map<number, number>();
  for await (const ev of pump) {
    if (ev.type !== "records") {
      out.others.push(ev);
      continue;
    }
    const answers: FaultAnswer[] = [];
    for (const r of ev.records) {
      const n = (partial.get(r.cookie) ?? 0) + 1;
      if (!(r.flags & LAST)) {
        partial.set(r.cookie, n);
        continue;
      }
      partial.delete(r.cookie);
      out.sizes.push(n);
      answers.push({ cookie: r.cookie, code: 0 });
    }
    out.groups += answers.length;
    if (!answer) continue;
    const res = pump.answer(ev.fd, answers);
    if (res.rejected.length > 0) throw new Error(`rejected: ${JSON.stringify(res.rejected)}`);
  }
}

const fresh = (): Relayed => ({ groups: 0, sizes: [], others: [] });

for (const [name, load] of [
  ["as fast as answered, 1-record groups", { devices: 4, records: 1, rate: 0, durationMs: 2500, maxOutstanding: 512 }],
  ["as fast as answered, 5-record groups", { devices: 16, records: 5, rate: 0, durationMs: 2000, maxOutstanding: 512 }],
  ["paced at 20k groups/s", { devices: 8, records: 2, rate: 20_000, durationMs: 2000, maxOutstanding: 4096 }],
] as const) {
  test.serial(`under load (${name}) every group is answered once and timers keep running`, async (t) => {
    const fdsBefore = openFds();
    const emu = await KernelEmulator.start();
    const pump = new FaultPump({ maxHeld: 1000 });
    await pump.start();
    pump.add(emu.faultFd, "stream", { sweep: false });
    pump.setLimit(100_000);
    const out = fresh();
    const relayed = relay(pump, out);
    const delay = monitorEventLoopDelay({ resolution: 1 });
    delay.enable();
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    const { generated } = await emu.load(load);
    const ticksDuringLoad = ticks;
    clearInterval(ticker);
    delay.disable();
    await until(async () => { const s = await emu.stats(); return s.outstanding === 0 && s.queued === 0; }, 10_000, "the last answers");
    await pump.stop();
    await relayed;
    const stats = await emu.quit();
    await emu.close();

    t.log(`${out.groups} groups; event loop delay max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms; ` +
      `answer latency p50 ${(stats.latencyNs.p50 / 1e3).toFixed(0)} us p99 ${(stats.latencyNs.p99 / 1e3).toFixed(0)} us`);
    t.is(out.groups, generated, "every generated group reached the relay");
    t.true(out.sizes.every((n) => n === load.records), "whole groups, none split or merged");
    t.is(stats.deliveredGroups, generated);
    t.is(stats.answeredSuccess, generated, "and was answered");
    t.is(stats.outstanding, 0);
    t.is(stats.violationCount, 0, JSON.stringify(stats.violations.slice(0, 5)));
    t.true(ticksDuringLoad > 0, "a 5 ms timer fired while the pump ran flat out: the event loop was never starved");
    t.is(pump.held, 0, "every group read was released by its answer");
    t.deepEqual(openFds(), fdsBefore, "the worker's eventfd and the emulator socket are closed");
  });
}

test.serial("it never holds more groups than its limit allows, and no cookie passes the sweep's bound", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  const maxHeld = 40;
  const pump = new FaultPump({ maxHeld, recordsPerRead: 8 });
  try {
    await pump.start();
    pump.add(emu.faultFd, "kernel", { sweep: false });
    const out = fresh();
    const relayed = relay(pump, out, false);
    await emu.raise({ dev: 1, count: 500 });
    pump.setLimit(10);
    // Held below 10 before each read, one read of 8 at most: 17 at most, whatever the timing.
    await until(() => pump.waitingForRoom, 10_000, "the worker to wait for room at its limit");
    t.true(out.groups <= 17, `read ${out.groups} groups with a limit of 10 and reads of 8`);
    t.is(pump.held, out.groups);
    pump.setLimit(1_000_000);
    // Now the crash bound alone: maxHeld plus one read.
    await until(() => out.groups >= maxHeld, 10_000, "reads up to maxHeld");
    const stats = await emu.stats();
    t.true(out.groups <= sweepBound(maxHeld, 8), `held ${out.groups}, more than maxHeld + one read`);
    t.true(stats.maxCookie <= sweepBound(maxHeld, 8), `cookie ${stats.maxCookie} given, beyond the bound ${sweepBound(maxHeld, 8)}`);
    t.is(stats.queued, 500 - out.groups, "the rest waits in the kernel's list");
    pump.release(out.groups);
    await until(() => out.groups >= 2 * maxHeld, 10_000, "released groups make room for more reads");
    await pump.stop();
    await relayed;
  } finally {
    await emu.close();
  }
});

test.serial("groups of 1, 100, 101, 256 and 4096 records are read whole, with reads grown past one slot", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  const pump = new FaultPump({ maxHeld: 8192, recordsPerRead: 100 });
  try {
    await pump.start();
    pump.add(emu.faultFd, "kernel", { sweep: false });
    pump.setLimit(100_000);
    const out = fresh();
    const relayed = relay(pump, out);
    const sizes = [1, 100, 101, 256, 4096, 1, 4096, 100];
    for (const records of sizes) await emu.raise({ dev: 1, records, addr: 0x10000 });
    await until(() => out.groups === sizes.length, 10_000, "every group");
    await until(async () => { const s = await emu.stats(); return s.outstanding === 0 && s.queued === 0; }, 10_000, "their answers");
    await pump.stop();
    await relayed;
    const stats = await emu.quit();
    t.deepEqual(out.sizes, sizes, "each group whole, in order");
    t.like(stats, { answeredSuccess: sizes.length, violationCount: 0 });
    t.deepEqual(out.others, [], "no fd error: every group fitted a grown read");
  } finally {
    await emu.close();
  }
});

test.serial("a group larger than any read the bound allows is reported, and the other fds are still read", async (t) => {
  const big = await KernelEmulator.start({ mode: "kernel-exact" });
  const other = await KernelEmulator.start({ mode: "kernel-exact" });
  const maxHeld = 100;
  const pump = new FaultPump({ maxHeld, recordsPerRead: 10 });
  try {
    await pump.start();
    pump.add(big.faultFd, "kernel", { sweep: false });
    pump.add(other.faultFd, "kernel", { sweep: false });
    pump.setLimit(1000);
    const out = fresh();
    const relayed = relay(pump, out);
    await big.raise({ dev: 1, records: sweepBound(maxHeld, 10) + 1 });
    await until(() => out.others.length === 1, 10_000, "the report");
    t.like(out.others[0], { type: "fd-error", fd: big.faultFd });
    t.regex((out.others[0] as { message: string }).message, /more than 110 records, the most one read may take.*raise limits\.maxHeld/);
    await other.raise({ dev: 2, count: 3 });
    await until(() => out.groups === 3, 10_000, "the other fd's groups");
    t.is(out.others.length, 1, "reported once, not spun on");
    await pump.stop();
    await relayed;
  } finally {
    await big.close();
    await other.close();
  }
});

test.serial("added with sweep, a fd's cookies a previous reader left are answered SUCCESS before the first read", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  try {
    // A first reader takes 30 groups and dies without answering.
    const first = new FaultPump({ maxHeld: 50, recordsPerRead: 10 });
    await first.start();
    first.add(emu.faultFd, "kernel", { sweep: false });
    first.setLimit(30);
    const taken = fresh();
    const firstRelayed = relay(first, taken, false);
    await emu.raise({ dev: 1, count: 100 });
    await until(() => taken.groups >= 30, 10_000, "the first reader's reads");
    await first.stop();
    await firstRelayed;
    t.is((await emu.stats()).outstanding, taken.groups);

    const second = new FaultPump({ maxHeld: 50, recordsPerRead: 10 });
    await second.start();
    second.add(emu.faultFd, "kernel", { sweep: true });
    second.setLimit(1000);
    const out = fresh();
    const relayed = relay(second, out);
    await until(() => out.groups === 100 - taken.groups, 10_000, "the groups nobody had read");
    t.deepEqual(out.others[0], { type: "swept", fd: emu.faultFd, accepted: taken.groups, bound: sweepBound(50, 10) }, "the sweep came first and found them");
    await until(async () => { const s = await emu.stats(); return s.outstanding === 0 && s.queued === 0; }, 10_000, "every group answered");
    await second.stop();
    await relayed;
    const stats = await emu.quit();
    t.is(stats.answeredSuccess, 100, "each group once: the first reader's by the sweep, the rest by the second reader");
    t.true(stats.violations.every((v) => v.kind === "unknown-cookie"), "the only refusals are the sweep's cookies that were not outstanding");
  } finally {
    await emu.close();
  }
});

test.serial("a stream that ends is reported once, and the pump goes on with its other fds", async (t) => {
  const emu = await KernelEmulator.start();
  const other = await KernelEmulator.start();
  const endingFd = emu.faultFd;
  const pump = new FaultPump({ maxHeld: 1000 });
  await pump.start();
  pump.add(endingFd, "stream", { sweep: false });
  pump.add(other.faultFd, "stream", { sweep: false });
  pump.setLimit(1000);
  const out = fresh();
  const relayed = relay(pump, out);
  await emu.raise({ dev: 1, count: 3 });
  await until(() => out.groups === 3, 10_000, "the first groups");
  await emu.quit(); // the emulator exits: its stream ends
  await until(() => out.others.length === 1, 10_000, "the report");
  await other.raise({ dev: 2, count: 2 });
  await until(() => out.groups === 5, 10_000, "the other fd's groups, read after the report");
  await pump.stop();
  await relayed;
  await emu.close();
  await other.close();
  t.is(out.others.length, 1, "reported once, not spun on");
  t.like(out.others[0], { type: "fd-error", fd: endingFd });
  t.regex((out.others[0] as { message: string }).message, /the stream ended/);
});

test.serial("a pump can be stopped with nothing read, and started again", async (t) => {
  const fdsBefore = openFds();
  const emu = await KernelEmulator.start();
  const pump = new FaultPump({ maxHeld: 1000, slots: 4, recordsPerRead: 10 });
  for (let round = 0; round < 2; round++) {
    await pump.start();
    pump.add(emu.faultFd, "stream", { sweep: false });
    pump.setLimit(1000);
    const out = fresh();
    const relayed = relay(pump, out);
    await emu.raise({ dev: 1, grpid: round * 100, count: 200, records: 2 });
    await until(() => out.groups === 200, 10_000, "200 groups");
    await pump.stop();
    await relayed;
  }
  await pump.start();
  await pump.stop();
  const stats = await emu.quit();
  await emu.close();
  t.like(stats, { deliveredGroups: 400, answeredSuccess: 400, outstanding: 0, violationCount: 0 });
  t.deepEqual(openFds(), fdsBefore);
});

test("start() refuses a pump that is running, add() a fd twice, and answer() a fd it does not watch", async (t) => {
  const emu = await KernelEmulator.start();
  const pump = new FaultPump({ maxHeld: 1000 });
  try {
    await pump.start();
    pump.add(emu.faultFd, "stream", { sweep: false });
    await t.throwsAsync(pump.start(), { message: /already started; stop\(\) it first/ });
    t.throws(() => pump.add(emu.faultFd, "stream", { sweep: false }), { message: /already watched/ });
    t.throws(() => pump.answer(12345, []), { message: /fd 12345 is not watched/ });
    t.throws(() => new FaultPump({ maxHeld: 1000, slots: 3 }), { message: /power of two/ });
  } finally {
    await pump.stop();
    await emu.close();
  }
});
