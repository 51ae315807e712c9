// Section 3: latency from a fault's delivery to its answer (the emulator's
// clock at both ends) at fixed offered loads, relay path and C baseline side
// by side. 1 record per group, 8 devices.
import { lineChart } from "../svg-chart.js";
import { baselineLoad, BaselineLoadResult, GroupCost, Latency, relayLoad, RelayLoadResult, violationText } from "../measure.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { ratio } from "../statistics.js";
import { wakeUpFloor } from "../wake-up-floor.js";

export const OFFERED_LOADS = [1_000, 10_000, 100_000];
const DEVICES = 8;
/** Large enough that the emulator never holds back a group; a path that cannot keep up shows it in its latency. */
const MAX_OUTSTANDING = 16384;
export const TARGET_ADDED_P99_US = 1000;

interface Row {
  rate: number;
  relay: RelayLoadResult;
  baseline: BaselineLoadResult;
}

const PERCENTILES: [string, keyof Latency][] = [["p50", "p50Us"], ["p99", "p99Us"], ["p99.9", "p999Us"], ["max", "maxUs"]];

export async function latency(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  const rows: Row[] = [];
  for (const rate of OFFERED_LOADS) {
    const load = { devices: DEVICES, devBase: 1, pasid: 1, records: 1, rate, durationMs: ctx.loadMs, maxOutstanding: MAX_OUTSTANDING };
    ctx.progress(`latency: ${rate} groups/s, baseline`);
    const baseline = await baselineLoad(load);
    ctx.progress(`latency: ${rate} groups/s, relay path`);
    const relay = await relayLoad({ devices: DEVICES, guest: "shipped", credits: 4096 }, load, ctx.warmUpMs);
    rows.push({ rate, relay, baseline });
  }
  ctx.progress("latency: the wake-up floor, a node process echoing 1000 messages/s");
  const floor = await wakeUpFloor(1000, Math.min(ctx.loadMs, 5000));
  const at10k = rows.find((r) => r.rate === 10_000)!;
  const cost = (c: GroupCost): string[] => [num(c.userUs), num(c.sysUs), num(c.sleeps)];
  const total = (c: GroupCost): number => c.userUs + c.sysUs;
  const relayCost = (r: RelayLoadResult): number => total(r.cost.relayMain) + total(r.cost.relayOthers) + total(r.cost.agent);
  const c10k = at10k.relay.cost;
  const sysShare10k = (c10k.relayMain.sysUs + c10k.relayOthers.sysUs + c10k.agent.sysUs) / relayCost(at10k.relay);
  const added10k = at10k.relay.latency.p99Us - at10k.baseline.latency.p99Us;
  const chart = ctx.chart("latency-percentiles.svg", lineChart({
    title: "Delivery to answer, by percentile",
    yLabel: "microseconds (log)",
    categories: PERCENTILES.map(([name]) => name),
    series: rows.flatMap((r) => [
      { name: `relay ${num(r.rate)}/s`, values: PERCENTILES.map(([, k]) => r.relay.latency[k]) },
      { name: `C ${num(r.rate)}/s`, values: PERCENTILES.map(([, k]) => r.baseline.latency[k]) },
    ]),
    log: true,
  }));
  return {
    id: "latency",
    title: "Latency",
    method: `Offered loads of 1 record/group on ${DEVICES} devices for ${ctx.loadMs / 1000} s (the relay path after a ${ctx.warmUpMs / 1000} s warm-up on a second emulator); the emulator timestamps each group when it writes it to the fault socket and when it reads its answer.`,
    loadAverage,
    tables: [{
      caption: "Delivery to answer, microseconds",
      columns: ["offered groups/s", "relay answered/s", "relay p50", "relay p99", "relay p99.9", "C p50", "C p99", "C p99.9", "p50 ratio", "p99 ratio", "p99.9 ratio", "added p99", "deadline answers", "violations (relay / C)"],
      rows: rows.map(({ rate, relay, baseline }) => [
        num(rate), num(relay.groupsPerSec),
        num(relay.latency.p50Us), num(relay.latency.p99Us), num(relay.latency.p999Us),
        num(baseline.latency.p50Us), num(baseline.latency.p99Us), num(baseline.latency.p999Us),
        times(ratio(relay.latency.p50Us, baseline.latency.p50Us)), times(ratio(relay.latency.p99Us, baseline.latency.p99Us)),
        times(ratio(relay.latency.p999Us, baseline.latency.p999Us)),
        num(relay.latency.p99Us - baseline.latency.p99Us), num(relay.answeredInvalid), `${violationText(relay)} / ${violationText(baseline)}`,
      ]),
    }, {
      caption: "What one group costs, by thread: user and kernel CPU microseconds, and sleeps (each a wake-up to pay for)",
      columns: ["offered groups/s", "relay main user", "sys", "sleeps", "relay other threads user", "sys", "sleeps", "agent user", "sys", "sleeps", "C user", "sys", "sleeps", "relay path / C CPU"],
      rows: rows.map(({ rate, relay, baseline }) => [
        num(rate), ...cost(relay.cost.relayMain), ...cost(relay.cost.relayOthers), ...cost(relay.cost.agent), ...cost(baseline.responderCost),
        times(ratio(relayCost(relay), total(baseline.responderCost))),
      ]),
    }, {
      caption: "The floor: a node process that only echoes (node-echo.ts), one 40-byte message a millisecond over a Unix socket; per message",
      columns: ["messages", "user us", "sys us", "sleeps"],
      rows: [[num(floor.messages), num(floor.userUs), num(floor.sysUs), num(floor.sleeps)]],
    }],
    charts: [chart],
    notes: [
      `Target: p99 added by the relay path at most ${TARGET_ADDED_P99_US} us at 10k groups/s: ${added10k <= TARGET_ADDED_P99_US ? "met" : "not met"} (${num(added10k)} us).`,
      `At 10k groups/s the kernel's share of the relay path's CPU (relay and agent, every thread) is ${(sysShare10k * 100).toFixed(0)}%, with ${num(c10k.relayMain.sleeps + c10k.relayOthers.sleeps)} relay and ${num(c10k.agent.sleeps)} agent sleeps per group.`,
      "CPU per million groups at these loads (relay, agent): " + rows.map((r) => `${num(r.rate)}/s: ${num(r.relay.relayCpuSPerMillion)} s, ${num(r.relay.agentCpuSPerMillion)} s`).join("; ") + ".",
    ],
    data: { devices: DEVICES, rows, wakeUpFloor: floor },
  };
}
