// The tail's anatomy (issue 16, item 1): the latency section's loads again,
// with every collection of the relay and the agent timed (tail/gc-probe.ts)
// and the scheduler's record of every thread of the path (perf sched), then
// each group slower than the run's p99 cut into what was happening while it
// waited (tail/anatomy.ts).
import { readdirSync, readFileSync } from "node:fs";
import { LoadOptions } from "../../../src/fault/emulator/kernel-emulator.js";
import { latencyOf, Latency } from "../measure.js";
import { RelayPath } from "../relay-path.js";
import { BenchContext, loadNow, num, SectionResult } from "../section.js";
import { anatomy, Anatomy, Interval, State } from "../tail/anatomy.js";
import { followGc, GcPause } from "../tail/gc-line.js";
import { SchedTrace, Stretch } from "../tail/sched-trace.js";

export const TAIL_RATES = [1_000, 10_000];
const DEVICES = 8;

interface Row {
  rate: number;
  latency: Latency;
  outliers: Anatomy;
  /** Collections per second and their mean pause, us, in each process. */
  gc: { relay: { perSec: number; meanUs: number; maxUs: number }; agent: { perSec: number; meanUs: number; maxUs: number } };
  /** Mean wait for a core per wake-up, us, by thread; null without perf. */
  waitPerWakeUs: Record<string, number> | null;
  schedNote: string | null;
}

/** Voluntary context switches (sleeps) of each of the process's threads. */
function sleepsByThread(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`).map(Number)) {
    try {
      out.set(tid, Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8"))?.[1] ?? 0));
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** The relay's thread, other than the main one, that slept most between two readings: the fault pump's worker (V8's and libuv's helpers sleep far less under load). */
function pumpWorkerTid(pid: number, before: Map<number, number>, after: Map<number, number>): number {
  let best = -1, most = -1;
  for (const [tid, n] of after) {
    const d = n - (before.get(tid) ?? 0);
    if (tid !== pid && d > most) [best, most] = [tid, d];
  }
  return best;
}

function gcFigures(pauses: GcPause[], seconds: number): { perSec: number; meanUs: number; maxUs: number } {
  const us = pauses.map((p) => (p.endNs - p.startNs) / 1000);
  return { perSec: pauses.length / seconds, meanUs: us.length ? us.reduce((a, b) => a + b, 0) / us.length : 0, maxUs: us.length ? Math.max(...us) : 0 };
}

async function measure(ctx: BenchContext, rate: number): Promise<Row> {
  const load: LoadOptions = { devices: DEVICES, devBase: 1, pasid: 1, records: 1, rate, durationMs: ctx.loadMs, maxOutstanding: 16384 };
  const p = await RelayPath.start({ devices: DEVICES, guest: "shipped", credits: 4096, gcProbe: true });
  try {
    const asleep = sleepsByThread(p.relay.pid);
    await p.warmUp({ ...load, durationMs: ctx.warmUpMs });
    const threads = { "relay main thread": p.relay.pid, "pump worker": pumpWorkerTid(p.relay.pid, asleep, sleepsByThread(p.relay.pid)), agent: p.agent.pid, emulator: p.emulator.pid };
    const gc = { relay: followGc(p.relay), agent: followGc(p.agent) };
    const trace = await SchedTrace.start();
    await p.emulator.load(load);
    const stats = await p.emulator.stats();
    const slow = await p.emulator.slowest();
    let stretches: Map<number, Stretch[]> | null = null;
    if (typeof trace !== "string") stretches = await trace.stop(Object.values(threads));
    const threshold = stats.latencyNs.p99;
    const outliers = slow.filter((s) => s.latencyNs >= threshold);
    const gcIv = (pauses: GcPause[]): Interval[] => pauses.map((x) => ({ startNs: x.startNs, endNs: x.endNs }));
    const states: State[] = [{ name: "relay GC", intervals: gcIv(gc.relay) }, { name: "agent GC", intervals: gcIv(gc.agent) }];
    if (stretches) {
      for (const [name, tid] of Object.entries(threads)) {
        states.push({ name: `${name} waiting for a core`, intervals: (stretches.get(tid) ?? []).map((s) => ({ startNs: s.waitStartNs, endNs: s.runStartNs })) });
      }
      for (const [name, tid] of Object.entries(threads)) {
        states.push({ name: `${name} running`, intervals: (stretches.get(tid) ?? []).map((s) => ({ startNs: s.runStartNs, endNs: s.endNs })) });
      }
    }
    const waitPerWakeUs = stretches
      ? Object.fromEntries(Object.entries(threads).map(([name, tid]) => {
        const s = stretches!.get(tid) ?? [];
        return [name, s.length ? s.reduce((a, x) => a + (x.runStartNs - x.waitStartNs), 0) / s.length / 1000 : NaN];
      }))
      : null;
    const seconds = ctx.loadMs / 1000;
    return {
      rate, latency: latencyOf(stats), outliers: anatomy(outliers, states, ["relay GC", "agent GC"]),
      gc: { relay: gcFigures(gc.relay, seconds), agent: gcFigures(gc.agent, seconds) },
      waitPerWakeUs, schedNote: typeof trace === "string" ? trace : null,
    };
  } finally {
    await p.stop();
  }
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : "n/a");

export async function tail(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  const rows: Row[] = [];
  for (const rate of TAIL_RATES) {
    ctx.progress(`tail: ${rate} groups/s with collections and scheduler events recorded`);
    rows.push(await measure(ctx, rate));
  }
  const names = rows[0]!.outliers.shares.map((s) => s.name);
  const schedNote = rows.find((r) => r.schedNote)?.schedNote;
  const share = (r: Row, pattern: RegExp): number => r.outliers.shares.filter((s) => pattern.test(s.name)).reduce((a, s) => a + s.share, 0);
  return {
    id: "tail",
    title: "The tail's anatomy",
    method: `The latency section's load (1 record/group, ${DEVICES} devices, ${ctx.loadMs / 1000} s after a ${ctx.warmUpMs / 1000} s warm-up) with every ` +
      "garbage collection of the relay's and the agent's main thread printed with its start on CLOCK_MONOTONIC and its pause (scripts/bench/tail/gc-probe.ts, " +
      "loaded with `node --import`), and the kernel's scheduler events for the whole machine (`perf sched record`, same clock): for every stretch a thread ran, " +
      "how long it had waited for a core after its wake-up and how long it ran. The emulator keeps its 4096 slowest answers with their delivery times; each " +
      "group at or above the run's p99 has its wait cut into 5 us bins, and each bin counted in the first state that holds then: a collection in the relay, " +
      "in the agent; a thread waiting for a core (woken, not running); a thread running; else idle (nothing of the path runs or waits for a core: bytes " +
      "in flight between processes, a timer not yet due). The pump worker is the relay's thread, other than the main one, that sleeps most.",
    loadAverage,
    tables: [{
      caption: "Groups at or above the p99: where their time went (share of their summed latency)",
      columns: ["state", ...rows.map((r) => `${num(r.rate)}/s`)],
      rows: [
        ["groups (p99 us, p99.9 us)", ...rows.map((r) => `${r.outliers.groups} (${num(r.latency.p99Us)}, ${num(r.latency.p999Us)})`)],
        ...names.map((name, i) => [name, ...rows.map((r) => pct(r.outliers.shares[i]!.share))]),
        ["groups whose wait holds a collection", ...rows.map((r) => pct(r.outliers.withGc))],
      ],
    }, {
      caption: "Collections (main thread pauses) during the load",
      columns: ["offered groups/s", "relay per s", "relay mean us", "relay max us", "agent per s", "agent mean us", "agent max us"],
      rows: rows.map((r) => [num(r.rate), num(r.gc.relay.perSec), num(r.gc.relay.meanUs), num(r.gc.relay.maxUs), num(r.gc.agent.perSec), num(r.gc.agent.meanUs), num(r.gc.agent.maxUs)]),
    }, ...(rows[0]!.waitPerWakeUs ? [{
      caption: "Mean wait for a core per wake-up, us, by thread (over the whole load)",
      columns: ["offered groups/s", ...Object.keys(rows[0]!.waitPerWakeUs)],
      rows: rows.map((r) => [num(r.rate), ...Object.values(r.waitPerWakeUs ?? {}).map(num)]),
    }] : [])],
    charts: [],
    notes: [
      ...(schedNote ? [`Thread run states are missing from this run: ${schedNote}.`] : []),
      ...rows.map((r) => `At ${num(r.rate)} groups/s the groups at or above the p99 spent ${pct(share(r, /GC$/))} of their wait in collections ` +
        `(relay ${pct(share(r, /^relay GC$/))}, agent ${pct(share(r, /^agent GC$/))}), ${pct(share(r, /waiting for a core$/))} with a thread of the path waiting for a core, ` +
        `${pct(share(r, /^pump worker/))} in the pump worker (waiting or running: the worker hop), ${pct(share(r, /^agent/))} in the agent (collections, waiting, running).`),
    ],
    data: { devices: DEVICES, rows },
  };
}
