// Section 4, the soak: a steady load for a long time, sampling the RSS of the
// relay and the agent, and their live heap after each full collection. Flat
// means the trend over the second half (after the heap has found its size)
// stays under FLAT_MIB_PER_MIN.
import { LoadOptions } from "../../../src/fault/emulator/kernel-emulator.js";
import { latencyOf } from "../measure.js";
import { memoryMiB } from "../proc-stat.js";
import { followLiveHeap, HeapSample } from "../gc-trace.js";
import { RelayPath } from "../relay-path.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { median, ratio, slope } from "../statistics.js";
import { lineChart } from "../svg-chart.js";

// Well below saturation on a shared 2-core machine: the soak looks for growth, not for limits.
const RATE = 5_000;
const DEVICES = 8;
const SAMPLES = 60;
export const FLAT_MIB_PER_MIN = 1;

interface Sample {
  seconds: number;
  relay: number;
  agent: number;
}

interface Trend {
  start: number;
  end: number;
  mibPerMin: number;
}

/** Over the second half of the points (after the heap has found its size): slope, and medians of its first and last fifth. */
function trend(points: { seconds: number; value: number }[]): Trend {
  const half = points.slice(Math.floor(points.length / 2));
  if (half.length === 0) return { start: NaN, end: NaN, mibPerMin: NaN };
  const edge = Math.max(1, Math.floor(half.length / 5));
  return {
    start: median(half.slice(0, edge).map((p) => p.value)),
    end: median(half.slice(-edge).map((p) => p.value)),
    mibPerMin: slope(half.map((p) => ({ x: p.seconds / 60, y: p.value }))),
  };
}

export async function soak(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  ctx.progress(`soak: ${ctx.soakMs / 1000} s at ${RATE} groups/s`);
  const p = await RelayPath.start({ devices: DEVICES, guest: "shipped", credits: 4096, traceGc: true });
  const samples: Sample[] = [];
  let heap: { relay: HeapSample[]; agent: HeapSample[] };
  let stats;
  try {
    const load: LoadOptions = { devices: DEVICES, devBase: 1, pasid: 1, records: 4, rate: RATE, durationMs: ctx.soakMs, maxOutstanding: 16384 };
    await p.warmUp({ ...load, durationMs: ctx.warmUpMs });
    const t0 = Date.now();
    heap = { relay: followLiveHeap(p.relay, t0), agent: followLiveHeap(p.agent, t0) };
    const sample = (): void => void samples.push({ seconds: (Date.now() - t0) / 1000, relay: memoryMiB(p.relay.pid).rss, agent: memoryMiB(p.agent.pid).rss });
    sample();
    const timer = setInterval(sample, ctx.soakMs / SAMPLES);
    try {
      await p.emulator.load(load);
    } finally {
      clearInterval(timer);
    }
    sample();
    stats = await p.emulator.stats();
  } finally {
    const final = await p.stop();
    if (final.violationCount > 0) ctx.progress(`soak: ${final.violationCount} emulator violations: ${JSON.stringify(final.violations.slice(0, 3))}`);
  }
  const rss = (key: "relay" | "agent"): Trend => trend(samples.map((s) => ({ seconds: s.seconds, value: s[key] })));
  const live = (key: "relay" | "agent"): Trend => trend(heap[key].map((h) => ({ seconds: h.seconds, value: h.liveMiB })));
  const relay = rss("relay"), agent = rss("agent");
  const liveRelay = live("relay"), liveAgent = live("agent");
  const flat = Math.abs(relay.mibPerMin) <= FLAT_MIB_PER_MIN && Math.abs(agent.mibPerMin) <= FLAT_MIB_PER_MIN;
  const liveFlat = Math.abs(liveRelay.mibPerMin) <= FLAT_MIB_PER_MIN && Math.abs(liveAgent.mibPerMin) <= FLAT_MIB_PER_MIN;
  const row = (name: string, x: Trend): string[] => [name, num(x.start), num(x.end), times(ratio(x.end, x.start)), num(x.mibPerMin)];
  const lat = latencyOf(stats);
  const chart = ctx.chart("soak-rss.svg", lineChart({
    title: `RSS during the soak (${num(RATE)} groups/s, 4 records)`,
    yLabel: "MiB",
    categories: samples.map((s) => `${Math.round(s.seconds)}s`),
    series: [{ name: "relay", values: samples.map((s) => s.relay) }, { name: "agent", values: samples.map((s) => s.agent) }],
  }));
  return {
    id: "soak",
    title: "Soak",
    method: `${ctx.soakMs / 1000} s at ${num(RATE)} groups/s of 4 records on ${DEVICES} devices, RSS sampled ${SAMPLES} times; the trend is the least-squares slope over the second half, start and end the medians of its first and last fifth.`,
    loadAverage,
    tables: [{
      caption: "RSS over the second half of the soak",
      columns: ["process", "start MiB", "end MiB", "end / start", "trend MiB/min"],
      rows: [row("relay", relay), row("agent", agent)],
    }, {
      caption: `Live JS heap after each full collection (--trace-gc), over the second half: ${heap.relay.length} collections in the relay, ${heap.agent.length} in the agent`,
      columns: ["process", "start MiB", "end MiB", "end / start", "trend MiB/min"],
      rows: [row("relay", liveRelay), row("agent", liveAgent)],
    }],
    charts: [chart],
    notes: [
      `Target: no RSS growth (|trend| <= ${FLAT_MIB_PER_MIN} MiB/min): ${flat ? "met" : "not met"} by the RSS; the live heap after each full collection is ${liveFlat ? "flat" : "growing"} ` +
        `(relay ${num(liveRelay.start)} -> ${num(liveRelay.end)} MiB, agent ${num(liveAgent.start)} -> ${num(liveAgent.end)} MiB)` +
        (liveFlat && !flat ? ": the RSS moves as V8 grows and shrinks its heap around live data that does not grow." : "."),
      `Over the soak: ${num(stats.answeredSuccess)} groups answered by the agent, ${num(stats.answeredInvalid)} by deadline, latency p50 ${num(lat.p50Us)} us, p99 ${num(lat.p99Us)} us, p99.9 ${num(lat.p999Us)} us.`,
    ],
    data: { rate: RATE, devices: DEVICES, samples, relay, agent, liveHeap: heap, liveRelay, liveAgent, latency: lat, answeredSuccess: stats.answeredSuccess, answeredInvalid: stats.answeredInvalid },
  };
}
