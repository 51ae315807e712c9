// Section 4 (without the soak): the relay path with more devices, and with
// many groups held by the guest. Held groups go to a program on the shipped
// agent's app socket that answers only when told (bench-agent.ts, mode hold,
// a process of its own, so the agent's memory is its own); meanwhile 10k
// groups/s on device 1 are answered at once, and their latency shows what
// the held ones cost the live traffic.
import { LoadOptions } from "../../../src/fault/emulator/kernel-emulator.js";
import { HOLD_DEV, HOLD_PASID } from "../configs.js";
import { baselineLoad, BaselineLoadResult, latencyOf, Latency, relayLoad, RelayLoadResult } from "../measure.js";
import { memoryMiB } from "../proc-stat.js";
import { Child } from "../child.js";
import { RelayPath } from "../relay-path.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { ratio } from "../statistics.js";
import { barChart } from "../svg-chart.js";

export const DEVICE_COUNTS = [1, 8, 64];
export const HELD_COUNTS = [1_000, 10_000, 100_000];
const RATE = 10_000;
const CREDITS = 1 << 17;
/** Issue 16's targets with 100k groups held: the relay's RSS, and the agent's own (the holding program excluded). */
export const TARGET_RELAY_RSS_MIB = 150;
export const TARGET_AGENT_RSS_MIB = 300;
const FILL_TIMEOUT_MS = 120_000;
const PRI_GROUPS = 512;

interface DeviceRow {
  devices: number;
  saturated: RelayLoadResult;
  atRate: RelayLoadResult;
  baseline: BaselineLoadResult;
}

interface HeldRow {
  held: number;
  fillSeconds: number;
  /** From the release to the emulator having every answer. */
  drainSeconds: number;
  idle: { relay: number; agent: number };
  holding: { relay: number; agent: number; holder: number };
  latency: Latency;
}

async function waitHeld(holder: Child, n: number): Promise<void> {
  const until = Date.now() + FILL_TIMEOUT_MS;
  for (;;) {
    // The program's event loop can be busy for seconds taking a flood of requests: be patient with its answer.
    const line = holder.waitForLine(/^held \d+$/, FILL_TIMEOUT_MS);
    holder.send("count");
    const held = Number((await line).split(" ")[1]);
    if (held >= n) return;
    if (Date.now() > until) throw new Error(`holding ${n} groups: the guest held ${held} after ${FILL_TIMEOUT_MS / 1000} s; expected all of them (is the credit window at least ${n}?)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Waits until the emulator has every released answer: stopping earlier would leave the relay answering them at shutdown. */
async function drained(p: RelayPath): Promise<void> {
  const until = Date.now() + FILL_TIMEOUT_MS;
  let s = await p.emulator.stats();
  while (s.outstanding > 0) {
    if (Date.now() > until) throw new Error(`after releasing the held groups the emulator still waits for ${s.outstanding} answers after ${FILL_TIMEOUT_MS / 1000} s; expected none`);
    await new Promise((r) => setTimeout(r, 100));
    s = await p.emulator.stats();
  }
}

async function heldRun(ctx: BenchContext, held: number): Promise<HeldRow> {
  const p = await RelayPath.start({ devices: 1, withHoldDevice: true, maxInFlight: CREDITS, guest: "hold", credits: CREDITS });
  const holder = p.holder!;
  try {
    const load: LoadOptions = { devices: 1, devBase: 1, pasid: 1, records: 1, rate: RATE, durationMs: ctx.loadMs, maxOutstanding: held + 16384 };
    await p.warmUp({ ...load, durationMs: ctx.warmUpMs });
    const idle = { relay: memoryMiB(p.relay.pid).rss, agent: memoryMiB(p.agent.pid).rss };
    const t0 = Date.now();
    // PRI group indexes are 9 bits: raise in runs of 512 (grpid 0..511), at distinct addresses.
    for (let done = 0; done < held; done += PRI_GROUPS) {
      await p.emulator.raise({ dev: HOLD_DEV, pasid: HOLD_PASID, records: 1, grpid: 0, addr: done * 4096, count: Math.min(PRI_GROUPS, held - done) });
    }
    await waitHeld(holder, held);
    const fillSeconds = (Date.now() - t0) / 1000;
    await p.emulator.load(load);
    const stats = await p.emulator.stats();
    const holding = { relay: memoryMiB(p.relay.pid).rss, agent: memoryMiB(p.agent.pid).rss, holder: memoryMiB(holder.pid).rss };
    const released = holder.waitForLine(/^released/, FILL_TIMEOUT_MS);
    holder.send("release");
    await released;
    const t1 = Date.now();
    await drained(p);
    return { held, fillSeconds, drainSeconds: (Date.now() - t1) / 1000, idle, holding, latency: latencyOf(stats) };
  } finally {
    const final = await p.stop();
    if (final.violationCount > 0) ctx.progress(`scale: ${final.violationCount} emulator violations holding ${held}: ${JSON.stringify(final.violations.slice(0, 3))}`);
  }
}

export async function scale(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  const devices: DeviceRow[] = [];
  for (const n of DEVICE_COUNTS) {
    const base = { devices: n, devBase: 1, pasid: 1, records: 4, durationMs: ctx.loadMs };
    ctx.progress(`scale: ${n} devices`);
    const baseline = await baselineLoad({ ...base, rate: RATE, maxOutstanding: 16384 });
    const saturated = await relayLoad({ devices: n, guest: "shipped", credits: 4096 }, { ...base, rate: 0, maxOutstanding: 1024 }, ctx.warmUpMs);
    const atRate = await relayLoad({ devices: n, guest: "shipped", credits: 4096 }, { ...base, rate: RATE, maxOutstanding: 16384 }, ctx.warmUpMs);
    devices.push({ devices: n, saturated, atRate, baseline });
  }
  const heldRows: HeldRow[] = [];
  for (const n of HELD_COUNTS) {
    ctx.progress(`scale: ${n} groups held by the guest`);
    heldRows.push(await heldRun(ctx, n));
  }
  const baseline1 = devices[0]!.baseline;
  const top = heldRows[heldRows.length - 1]!;
  const chart = ctx.chart("rss-by-groups-held.svg", barChart({
    title: "Resident memory with groups held by the guest",
    yLabel: "MiB",
    categories: ["idle", ...heldRows.map((r) => `${num(r.held)} held`)],
    series: [
      { name: "relay", values: [top.idle.relay, ...heldRows.map((r) => r.holding.relay)] },
      { name: "agent", values: [top.idle.agent, ...heldRows.map((r) => r.holding.agent)] },
    ],
  }));
  return {
    id: "scale",
    title: "Scale",
    method: `Devices: 4 records/group, saturated (as fast as answered, 1024 in flight) and at ${num(RATE)} groups/s (p99 against the C baseline at the same rate and devices). Held: a program on the agent's app socket (its own process) holds N groups of a device with a 60 s deadline while ${num(RATE)} groups/s of 1 record flow on another; RSS from /proc/PID/status, idle measured after the warm-up.`,
    loadAverage,
    tables: [{
      caption: "Devices",
      columns: ["devices", "groups/s saturated", "relay CPU s/M", "agent CPU s/M", `p99 us at ${num(RATE)}/s`, "C p99 us", "p99 ratio", "relay RSS MiB", "agent RSS MiB", "violations"],
      rows: devices.map((d) => [
        String(d.devices), num(d.saturated.groupsPerSec), num(d.saturated.relayCpuSPerMillion), num(d.saturated.agentCpuSPerMillion),
        num(d.atRate.latency.p99Us), num(d.baseline.latency.p99Us), times(ratio(d.atRate.latency.p99Us, d.baseline.latency.p99Us)),
        num(d.atRate.relayRssMiB), num(d.atRate.agentRssMiB), String(d.saturated.violations + d.atRate.violations + d.baseline.violations),
      ]),
    }, {
      caption: "Groups held by the guest",
      columns: ["held", "fill s", "drain s", "relay RSS MiB", "relay / idle", "agent RSS MiB", "agent / idle", "holding program RSS MiB", `p50 us at ${num(RATE)}/s`, `p99 us`, "p99 / C p99"],
      rows: heldRows.map((r) => [
        num(r.held), num(r.fillSeconds), num(r.drainSeconds), num(r.holding.relay), times(ratio(r.holding.relay, r.idle.relay)),
        num(r.holding.agent), times(ratio(r.holding.agent, r.idle.agent)), num(r.holding.holder),
        num(r.latency.p50Us), num(r.latency.p99Us), times(ratio(r.latency.p99Us, baseline1.latency.p99Us)),
      ]),
    }],
    charts: [chart],
    notes: [
      `Target: with ${num(top.held)} groups held, relay RSS at most ${TARGET_RELAY_RSS_MIB} MiB: ${top.holding.relay <= TARGET_RELAY_RSS_MIB ? "met" : "not met"} (${num(top.holding.relay)} MiB); ` +
        `the agent's own at most ${TARGET_AGENT_RSS_MIB} MiB: ${top.holding.agent <= TARGET_AGENT_RSS_MIB ? "met" : "not met"} (${num(top.holding.agent)} MiB; the holding program ${num(top.holding.holder)} MiB beside it).`,
      "The holding guest is the shipped agent (dist/iopf-agent.mjs) with `maxInFlight` and `credits` raised to the window, and a program on its app socket in a process of its own (bench-agent.ts, mode hold) that holds the groups.",
    ],
    data: { devices, held: heldRows },
  };
}
