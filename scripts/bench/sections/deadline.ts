// Section 5: how late the relay's own answers land when the guest never
// answers: the emulator's delivery-to-answer latency minus the deadline.
// The baseline is the C responder answering each group exactly DEADLINE
// after reading it, the floor for a timed answer from userspace.
import { baselineLoad, BaselineLoadResult, Latency, relayLoad, RelayLoadResult } from "../measure.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { ratio } from "../statistics.js";
import { lineChart } from "../svg-chart.js";

export const DEADLINE_RATES = [1_000, 10_000, 30_000];
// Not the default 100 ms: the emulator's histogram buckets are 1/32 of a power of two wide, 2.1 ms at 100 ms
// but 262 us at 10 ms, and lateness is a few hundred microseconds at most.
const DEADLINE_MS = 10;
const DEVICES = 8;

interface Row {
  rate: number;
  relay: RelayLoadResult;
  baseline: BaselineLoadResult;
}

function lateness(l: Latency): Latency {
  const d = DEADLINE_MS * 1000;
  return { p50Us: l.p50Us - d, p99Us: l.p99Us - d, p999Us: l.p999Us - d, maxUs: l.maxUs - d };
}

export async function deadline(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  const rows: Row[] = [];
  for (const rate of DEADLINE_RATES) {
    // The load must outlast the deadline, and every group must have reached it before the stats are read.
    const load = { devices: DEVICES, devBase: 1, pasid: 1, records: 1, rate, durationMs: Math.max(ctx.loadMs, 4 * DEADLINE_MS), maxOutstanding: 65536 };
    ctx.progress(`deadline: ${rate} groups/s, baseline`);
    const baseline = await baselineLoad(load, DEADLINE_MS * 1000);
    ctx.progress(`deadline: ${rate} groups/s, relay path with a guest that never answers`);
    const relay = await relayLoad({ devices: DEVICES, deadlineMs: DEADLINE_MS, maxInFlight: 1 << 17, guest: "silent", credits: 1 << 17 }, load, ctx.warmUpMs);
    rows.push({ rate, relay, baseline });
  }
  const chart = ctx.chart("deadline-lateness.svg", lineChart({
    title: `Deadline answers: lateness past ${DEADLINE_MS} ms`,
    yLabel: "microseconds late (log)",
    categories: ["p50", "p99", "p99.9", "max"],
    series: rows.flatMap((r) => [r.relay, r.baseline].map((x, i) => {
      const l = lateness(x.latency);
      return { name: `${i === 0 ? "relay" : "C"} ${num(r.rate)}/s`, values: [l.p50Us, l.p99Us, l.p999Us, l.maxUs] };
    })),
    log: true,
  }));
  return {
    id: "deadline",
    title: "Deadlines",
    method: `${DEVICES} devices with a ${DEADLINE_MS} ms deadline, 1 record/group, a guest that grants credit and never answers (bench-agent.ts, mode silent); lateness is the emulator's delivery-to-answer time minus ${DEADLINE_MS} ms. Groups still unanswered when the load ends are answered at the relay's shutdown and not counted.`,
    loadAverage,
    tables: [{
      caption: "Lateness of deadline answers, microseconds",
      columns: ["offered groups/s", "answered by deadline", "relay p50", "relay p99", "relay p99.9", "relay max", "C p50", "C p99", "C p99.9", "p99 ratio", "violations"],
      rows: rows.map(({ rate, relay, baseline }) => {
        const r = lateness(relay.latency), b = lateness(baseline.latency);
        return [num(rate), num(relay.answeredInvalid), num(r.p50Us), num(r.p99Us), num(r.p999Us), num(r.maxUs), num(b.p50Us), num(b.p99Us), num(b.p999Us),
          times(ratio(r.p99Us, b.p99Us)), String(relay.violations + baseline.violations)];
      }),
    }],
    charts: [chart],
    notes: [`The emulator's histogram buckets are 262 us wide around ${DEADLINE_MS} ms and report their midpoint, so lateness is known to about +-131 us; values near 0 or negative mean "within a bucket of the deadline".`],
    data: { deadlineMs: DEADLINE_MS, rows },
  };
}
