// Section 2: groups per second sustained, by records per group, with the
// CPU each process spends per million groups. The emulator delivers as fast
// as groups are answered, keeping WINDOW in flight: enough to keep every
// stage busy, few enough that no group nears its 100 ms deadline, so every
// answer counted is the agent's.
import { barChart } from "../svg-chart.js";
import { baselineLoad, BaselineLoadResult, relayLoad, RelayLoadResult, violationText } from "../measure.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { ratio } from "../statistics.js";

export const GROUP_SIZES = [1, 4, 32];
const WINDOW = 512;
const CREDITS = 4096;
export const TARGET_GROUPS_PER_SEC = 200_000;

interface Row {
  records: number;
  relay: RelayLoadResult;
  baseline: BaselineLoadResult;
}

export async function throughput(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  const rows: Row[] = [];
  for (const records of GROUP_SIZES) {
    const load = { devices: 1, devBase: 1, pasid: 1, records, rate: 0, durationMs: ctx.loadMs, maxOutstanding: WINDOW };
    ctx.progress(`throughput: ${records} records/group, baseline`);
    const baseline = await baselineLoad(load);
    ctx.progress(`throughput: ${records} records/group, relay path`);
    const relay = await relayLoad({ devices: 1, guest: "shipped", credits: CREDITS }, load, ctx.warmUpMs);
    rows.push({ records, relay, baseline });
  }
  ctx.progress("throughput: 4 records/group, the agent accepting FEATURE_RAW_RECORDS");
  const withRaw = await relayLoad({ devices: 1, guest: "shipped", credits: CREDITS, rawRecords: true },
    { devices: 1, devBase: 1, pasid: 1, records: 4, rate: 0, durationMs: ctx.loadMs, maxOutstanding: WINDOW }, ctx.warmUpMs);
  const shipped4 = rows.find((r) => r.records === 4)!.relay;

  const chart = ctx.chart("throughput-by-group-size.svg", barChart({
    title: "Groups answered per second, by records per group",
    yLabel: "groups / s (log)",
    categories: GROUP_SIZES.map((r) => `${r} record${r > 1 ? "s" : ""}`),
    series: [
      { name: "relay path", values: rows.map((r) => r.relay.groupsPerSec) },
      { name: "C baseline", values: rows.map((r) => r.baseline.groupsPerSec) },
    ],
    log: true,
  }));
  return {
    id: "throughput",
    title: "Throughput",
    method: `The emulator delivers as fast as groups are answered with ${WINDOW} groups in flight, for ${ctx.loadMs / 1000} s after a ${ctx.warmUpMs / 1000} s warm-up; groups/s counts SUCCESS answers (the agent's), CPU is utime+stime of every thread from /proc before and after the load.`,
    loadAverage,
    tables: [{
      caption: "Groups per second and CPU seconds per million groups",
      columns: ["records/group", "relay path groups/s", "C baseline groups/s", "relay / baseline", "relay CPU s/M", "agent CPU s/M", "C CPU s/M", "(relay+agent) / C CPU", "deadline answers", "violations (relay / C)"],
      rows: rows.map(({ records, relay, baseline }) => [
        String(records), num(relay.groupsPerSec), num(baseline.groupsPerSec), times(ratio(relay.groupsPerSec, baseline.groupsPerSec)),
        num(relay.relayCpuSPerMillion), num(relay.agentCpuSPerMillion), num(baseline.responderCpuSPerMillion),
        times(ratio(relay.relayCpuSPerMillion + relay.agentCpuSPerMillion, baseline.responderCpuSPerMillion)),
        num(relay.answeredInvalid), `${violationText(relay)} / ${violationText(baseline)}`,
      ]),
    }, {
      caption: "Experiment, 4 records/group: the shipped agent with `rawRecords: true` (a handler that reads the model's records would need it) against its default",
      columns: ["agent", "groups/s", "relay CPU s/M", "agent CPU s/M", "groups/s / shipped"],
      rows: [
        ["shipped (no raw records)", num(shipped4.groupsPerSec), num(shipped4.relayCpuSPerMillion), num(shipped4.agentCpuSPerMillion), "1x"],
        ["rawRecords: true", num(withRaw.groupsPerSec), num(withRaw.relayCpuSPerMillion), num(withRaw.agentCpuSPerMillion), times(ratio(withRaw.groupsPerSec, shipped4.groupsPerSec))],
      ],
    }],
    charts: [chart],
    notes: [
      `Target: at least ${num(TARGET_GROUPS_PER_SEC)} groups/s at 4 records/group: ${shipped4.groupsPerSec >= TARGET_GROUPS_PER_SEC ? "met" : `not met (${num(shipped4.groupsPerSec)}, ${times(ratio(shipped4.groupsPerSec, TARGET_GROUPS_PER_SEC))} of it)`}.`,
    ],
    data: { window: WINDOW, rows, rawRecords: withRaw },
  };
}
