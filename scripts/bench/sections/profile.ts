// Where the time goes at saturation: the throughput run at 4 records/group
// again with node --cpu-prof on the relay and on the agent, summarized as
// the functions with the most self time and drawn as flame graphs.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { CpuProfile, ProfileSummary, summarizeProfile } from "../cpuprofile.js";
import { flameGraph } from "../flame-graph.js";
import { relayLoad } from "../measure.js";
import { BenchContext, loadNow, num, SectionResult, times } from "../section.js";
import { ratio } from "../statistics.js";
import { measureSyscallCost } from "../syscall-cost.js";

const TOP = 15;

export async function profile(ctx: BenchContext): Promise<SectionResult> {
  const loadAverage = loadNow();
  ctx.progress("profile: 4 records/group under node --cpu-prof");
  const run = await relayLoad({ devices: 1, guest: "shipped", credits: 4096, profileDir: ctx.profileDir },
    { devices: 1, devBase: 1, pasid: 1, records: 4, rate: 0, durationMs: ctx.loadMs, maxOutstanding: 512 }, ctx.warmUpMs);
  const read = (name: string): CpuProfile => JSON.parse(readFileSync(join(ctx.profileDir, `${name}.cpuprofile`), "utf8")) as CpuProfile;
  const relayProfile = read("relay"), agentProfile = read("agent");
  const relay = summarizeProfile(relayProfile, TOP), agent = summarizeProfile(agentProfile, TOP);
  const charts = [
    ctx.chart("flame-relay.svg", flameGraph(relayProfile, "iopf-relay at saturation, 4 records/group: busy samples by call stack (hover for names and shares)")),
    ctx.chart("flame-agent.svg", flameGraph(agentProfile, "iopf-agent at saturation, 4 records/group: busy samples by call stack (hover for names and shares)")),
  ];
  ctx.progress("profile: one write(2) through ffi-rs against fs.writeSync");
  const syscall = measureSyscallCost(ctx.quick ? 50_000 : 200_000);
  const table = (who: string, s: ProfileSummary) => ({
    caption: `${who}: top ${TOP} functions by self time (busy ${num(s.busySeconds)} s, idle ${(s.idleShare * 100).toFixed(0)}% of samples)`,
    columns: ["self %", "function (file:line)"],
    rows: s.top.map((t) => [(t.share * 100).toFixed(1), "`" + t.function + "`"]),
  });
  return {
    id: "profile",
    title: "CPU profiles at saturation",
    method: `The 4 records/group throughput run (${ctx.loadMs / 1000} s, 512 in flight) with --cpu-prof on both processes; profiles include start-up and the warm-up. Profiling slows both: ${num(run.groupsPerSec)} groups/s under the profiler. Files: build/bench-profiles/ (relay.cpuprofile, agent.cpuprofile).`,
    loadAverage,
    tables: [table("relay", relay), table("agent (dist/iopf-agent.mjs)", agent), {
      caption: `One 40-byte write(2) to /dev/null, microseconds per call over ${num(syscall.calls)} calls`,
      columns: ["through ffi-rs", "fs.writeSync (Node's own binding)", "ffi-rs / fs"],
      rows: [[num(syscall.ffiUs), num(syscall.nodeUs), times(ratio(syscall.ffiUs, syscall.nodeUs))]],
    }],
    charts,
    notes: [],
    data: { groupsPerSecProfiled: run.groupsPerSec, relay, agent, syscall },
  };
}
