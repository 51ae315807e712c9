// The findings of docs/performance.md: issue 16's targets, met or not, with
// this run's figures; the tail's anatomy; what holds the figures back, each
// computed from this run's sections (profiles, the per-thread cost table,
// the held-groups rows), with the change it would take; and the changes
// already made, each with the figures measured before and after it.
import { ProfileSummary } from "./cpuprofile.js";
import type { GroupCost, RelayLoadResult, BaselineLoadResult } from "./measure.js";
import { num, SectionResult, times } from "./section.js";
import type { SyscallCost } from "./syscall-cost.js";
import { ratio } from "./statistics.js";

/** Self time of the functions whose "name (file:line)" matches, as a share of busy time, within the profile's top list. */
function share(p: ProfileSummary | undefined, pattern: RegExp): string {
  if (!p) return "n/a";
  const s = p.top.filter((t) => pattern.test(t.function)).reduce((a, t) => a + t.share, 0);
  return `${(s * 100).toFixed(0)}%`;
}

const GC = /^\(garbage collector\)/;
const PROTOBUF = /\.(encode|decode) \(|readLongVarint|writeVarint|longbits/;
const FFI = /^wrapLoad /;
const SOCKET_WRITE = /^writeBuffer$/;

interface LatencyRow { rate: number; relay: RelayLoadResult; baseline: BaselineLoadResult }
interface ThroughputRow { records: number; relay: RelayLoadResult; baseline: BaselineLoadResult }
interface HeldRow { held: number; idle: { relay: number; agent: number }; holding: { relay: number; agent: number; holder: number } }
interface TailRow { rate: number; latency: { p99Us: number; p999Us: number }; outliers: { groups: number; shares: { name: string; share: number }[]; withGc: number }; gc: { relay: { perSec: number; meanUs: number }; agent: { perSec: number; meanUs: number } }; waitPerWakeUs: Record<string, number> | null }
interface RealKernel { baseline: { p50Us: number }; relay: { p50Us: number } }

const cpuUs = (c: GroupCost): number => c.userUs + c.sysUs;

function section<T>(sections: SectionResult[], id: string): T | undefined {
  return sections.find((s) => s.id === id)?.data as T | undefined;
}

/** Per wake-up CPU of the relay's main thread, of a node process that only echoes, and of the C responder, at the lowest offered load. */
function wakeUpCosts(lat: { rows: LatencyRow[]; wakeUpFloor: GroupCost } | undefined): string {
  const low = lat?.rows[0];
  if (!lat || !low) return "(The latency section did not run.)";
  const main = low.relay.cost.relayMain, c = low.baseline.responderCost;
  const perWake = (x: GroupCost): number => cpuUs(x) / Math.max(x.sleeps, 1e-9);
  return `At ${num(low.rate)} groups/s the relay's main thread sleeps ${num(main.sleeps)} times per group and spends ` +
    `${num(perWake(main))} us of CPU per wake-up; a node process that only echoes a message spends ${num(perWake(lat.wakeUpFloor))} us ` +
    `per wake-up, the C responder ${num(perWake(c))} us (the latency section's last two tables): node's floor is ` +
    `${((perWake(lat.wakeUpFloor) / perWake(main)) * 100).toFixed(0)}% of the relay's cost per wake-up`;
}

interface Trend { start: number; end: number; mibPerMin: number }
interface SoakData { relay: Trend; liveRelay: Trend }

function soakText(s: SoakData | undefined): string {
  if (!s) return "(The soak did not run.)";
  const liveFlat = Math.abs(s.liveRelay.mibPerMin) <= 1;
  const figures = `The relay's RSS trend over the second half is ${num(s.relay.mibPerMin)} MiB/min, while its live heap after each full ` +
    `collection went from ${num(s.liveRelay.start)} to ${num(s.liveRelay.end)} MiB (${num(s.liveRelay.mibPerMin)} MiB/min)`;
  return liveFlat
    ? `${figures}: the live heap is flat, so the RSS follows V8's heap sizing (V8 resizes the heap it keeps between collections), ` +
      "not live data. A steadier RSS would take capping the young generation (`--max-semi-space-size`) at some cost in scavenges; not done, as the live heap does not grow."
    : `${figures}: the live heap grew too, more than 1 MiB/min. The short soak of a --quick run cannot tell a leak from the heap warming up; ` +
      "the full run's can, and a live heap that keeps growing there is a leak to find (heap snapshots of the relay at two times).";
}

const pct = (x: number): string => (Number.isFinite(x) ? `${(x * 100).toFixed(0)}%` : "n/a");

function met(ok: boolean | null): string {
  return ok === null ? "n/a (its section did not run)" : ok ? "**met**" : "**not met**";
}

/** Issue 16's targets, each against this run's figures. */
function targets(sections: SectionResult[]): string[] {
  const tp = section<{ rows: ThroughputRow[] }>(sections, "throughput");
  const lat = section<{ rows: LatencyRow[] }>(sections, "latency");
  const held = section<{ held: HeldRow[] }>(sections, "scale")?.held?.at(-1);
  const rk = section<RealKernel>(sections, "real-kernel");
  const soak = section<{ relay: Trend; agent: Trend }>(sections, "soak");
  const four = tp?.rows.find((r) => r.records === 4);
  const cpu = four ? four.relay.relayCpuSPerMillion + four.relay.agentCpuSPerMillion : NaN;
  const cpuRatio = four ? ratio(cpu, four.baseline.responderCpuSPerMillion) : null;
  const added = (rate: number): { added: number; p999: number; c: number } | null => {
    const r = lat?.rows.find((x) => x.rate === rate);
    return r ? { added: r.relay.latency.p99Us - r.baseline.latency.p99Us, p999: r.relay.latency.p999Us, c: r.baseline.latency.p99Us } : null;
  };
  const a10k = added(10_000), a1k = added(1_000);
  const rkRatio = rk ? ratio(rk.relay.p50Us, rk.baseline.p50Us) : null;
  const flat = soak ? Math.abs(soak.relay.mibPerMin) <= 1 && Math.abs(soak.agent.mibPerMin) <= 1 : null;
  const row = (target: string, figure: string, verdict: string): string => `| ${target} | ${figure} | ${verdict} |`;
  return [
    "| target (issue 16) | this run | verdict |",
    "| --- | --- | --- |",
    row("relay + agent CPU per group at saturation, 4 records: <= 6.4 us and <= 96x the C responder's", four ? `${num(cpu)} us, ${times(cpuRatio)} the C responder's` : "n/a",
      met(four ? cpu <= 6.4 && (cpuRatio ?? Infinity) <= 96 : null)),
    row("groups/s at saturation, 4 records: >= 200k", four ? `${num(four.relay.groupsPerSec)} (${times(ratio(four.relay.groupsPerSec, four.baseline.groupsPerSec))} the C responder's)` : "n/a",
      met(four ? four.relay.groupsPerSec >= 200_000 : null)),
    row("p99 added by the relay path at 10k groups/s: <= 1 ms", a10k ? `${num(a10k.added)} us (C p99 ${num(a10k.c)} us; relay p99.9 ${num(a10k.p999)} us)` : "n/a", met(a10k ? a10k.added <= 1000 : null)),
    row("p99 added at 1k groups/s: <= 0.5 ms", a1k ? `${num(a1k.added)} us (C p99 ${num(a1k.c)} us; relay p99.9 ${num(a1k.p999)} us)` : "n/a", met(a1k ? a1k.added <= 500 : null)),
    row("relay RSS with 100k groups held: <= 150 MiB", held ? `${num(held.holding.relay)} MiB` : "n/a", met(held ? held.holding.relay <= 150 : null)),
    row("the agent's own RSS with 100k held (holding program excluded): <= 300 MiB", held ? `${num(held.holding.agent)} MiB (the program: ${num(held.holding.holder)} MiB)` : "n/a",
      met(held ? held.holding.agent <= 300 : null)),
    row("real kernel: relay path p50 <= 10x the C responder's", rk ? `${times(rkRatio)} (${num(rk.relay.p50Us)} us against ${num(rk.baseline.p50Us)} us)` : "n/a", met(rk ? (rkRatio ?? Infinity) <= 10 : null)),
    row("the soak stays flat (RSS trend within 1 MiB/min)", soak ? `relay ${num(soak.relay.mibPerMin)}, agent ${num(soak.agent.mibPerMin)} MiB/min` : "n/a", met(flat)),
  ];
}

/** The worker hop's share of the slow groups' wait, by rate. */
function workerHop(sections: SectionResult[]): string {
  const rows = section<{ rows: TailRow[] }>(sections, "tail")?.rows;
  if (!rows) return "";
  const hop = (r: TailRow): number => r.outliers.shares.filter((x) => /^pump worker/.test(x.name)).reduce((a, x) => a + x.share, 0);
  return `In the tail section the worker (waiting for a core or running) is ${rows.map((r) => `${pct(hop(r))} of the slow groups' wait at ${num(r.rate)} groups/s`).join(" and ")}.`;
}

/** The tail section's anatomy, in sentences. */
function tailText(sections: SectionResult[]): string[] {
  const rows = section<{ rows: TailRow[] }>(sections, "tail")?.rows;
  if (!rows) return ["(The tail section did not run.)"];
  const sum = (r: TailRow, pattern: RegExp): number => r.outliers.shares.filter((x) => pattern.test(x.name)).reduce((a, x) => a + x.share, 0);
  return rows.map((r) => `- At ${num(r.rate)} groups/s (p99 ${num(r.latency.p99Us)} us, p99.9 ${num(r.latency.p999Us)} us; ${r.outliers.groups} groups at or above the p99): ` +
    `collections ${pct(sum(r, /GC$/))} of their wait (relay ${pct(sum(r, /^relay GC$/))}, agent ${pct(sum(r, /^agent GC$/))}; ` +
    `${pct(r.outliers.withGc)} of these groups waited through at least one); a thread of the path waiting for a core ${pct(sum(r, /waiting for a core$/))} ` +
    `(the emulator's own ${pct(sum(r, /^emulator waiting/))}); the worker hop (the pump worker waiting or running) ${pct(sum(r, /^pump worker/))}; ` +
    `the agent (collections, waiting, running) ${pct(sum(r, /^agent/))}; the relay's main thread running ${pct(sum(r, /^relay main thread running$/))}; ` +
    `nothing of the path running or waiting ${pct(sum(r, /^idle$/))}. Collections per second: relay ${num(r.gc.relay.perSec)} (mean pause ${num(r.gc.relay.meanUs)} us), ` +
    `agent ${num(r.gc.agent.perSec)} (${num(r.gc.agent.meanUs)} us).` +
    (r.waitPerWakeUs ? ` A wake-up waited for a core ${Object.entries(r.waitPerWakeUs).map(([k, v]) => `${num(v)} us (${k})`).join(", ")} on average.` : ""));
}

/** What the anatomy says, from this run's shares: the largest parts of the slow groups' wait, and whose collections pause longer. */
function tailVerdict(sections: SectionResult[]): string[] {
  const rows = section<{ rows: TailRow[] }>(sections, "tail")?.rows;
  if (!rows) return [];
  const parts: [string, RegExp][] = [
    ["collections", /GC$/],
    ["a thread of the path waiting for a core", /waiting for a core$/],
    ["a thread of the path running", /running$/],
    ["nothing of the path running or waiting", /^idle$/],
  ];
  const sum = (r: TailRow, pattern: RegExp): number => r.outliers.shares.filter((x) => pattern.test(x.name)).reduce((a, x) => a + x.share, 0);
  const ranked = rows.map((r) => {
    const [first, second] = parts.map(([name, re]) => ({ name, share: sum(r, re) })).sort((a, b) => b.share - a.share);
    const pauses = r.gc.relay.meanUs > 0 && r.gc.agent.meanUs > 0
      ? `, and the relay's mean collection pause is ${times(ratio(r.gc.relay.meanUs, r.gc.agent.meanUs))} the agent's` : "";
    return `at ${num(r.rate)} groups/s the largest part of the slow groups' wait is ${first!.name} (${pct(first!.share)}), then ` +
      `${second!.name} (${pct(second!.share)})${pauses}`;
  });
  return [
    `What it says: ${ranked.join("; ")}. A slow group waits while a thread of the path, or the emulator that timestamps`,
    "it, has been woken and finds both cores taken (by the path's own other threads, the emulator, or other work on the",
    "machine), or while a collection pauses the relay's or the agent's main thread; on a loaded machine a collection's",
    "pause stretches too, its helper threads waiting for a core as well. Every extra thread that must wake for a group",
    "is one more chance to wait for a core: the worker hop shows where each group wakes the worker and then the main",
    "thread. What moves the p99: fewer wake-ups per group (item 3, not done: below), less CPU per group, so fewer",
    "moments when both cores are taken, and shorter collections.",
  ];
}

/** Sleeps per group (voluntary context switches) of the relay's threads at each offered load of the latency section. */
function sleepsPerGroup(lat: { rows: LatencyRow[] } | undefined): string {
  if (!lat || lat.rows.length === 0) return "(the latency section did not run)";
  return lat.rows.map((r) => `${num(r.relay.cost.relayMain.sleeps)} (main thread) and ${num(r.relay.cost.relayOthers.sleeps)} (the pump worker ` +
    `and V8's helpers) at ${num(r.rate)} groups/s`).join("; ");
}

export function findings(sections: SectionResult[]): string {
  const prof = section<{ relay: ProfileSummary; agent: ProfileSummary; syscall: SyscallCost }>(sections, "profile");
  const sys = prof?.syscall;
  const tp = section<{ rows: ThroughputRow[]; rawRecords: RelayLoadResult }>(sections, "throughput");
  const lat = section<{ rows: LatencyRow[]; wakeUpFloor: GroupCost }>(sections, "latency");
  const held = section<{ held: HeldRow[] }>(sections, "scale")?.held;
  const four = tp?.rows.find((r) => r.records === 4)?.relay;
  const usPerGroup = four ? (four.relayCpuSPerMillion + four.agentCpuSPerMillion) : NaN;
  const relayMost = !four ? "" : four.relayCpuSPerMillion >= four.agentCpuSPerMillion ? "The relay is most of it:" : "The agent is most of it; still,";
  const at10k = lat?.rows.find((r) => r.rate === 10_000);
  const cores10k = at10k ? ((cpuUs(at10k.relay.cost.relayMain) + cpuUs(at10k.relay.cost.relayOthers) + cpuUs(at10k.relay.cost.agent)) * 10_000) / 1e6 : NaN;
  const most = held?.at(-1);
  const bytesPerHeld = (who: "relay" | "agent"): string => (most ? num(((most.holding[who] - most.idle[who]) * 1024 * 1024) / most.held) : "n/a");
  return [
    "## Findings",
    "",
    "Shares are of busy (non-idle) samples in this run's profiles; per-group costs are from the per-thread table of the latency",
    "section (user and kernel CPU from /proc/PID/task/*/stat, sleeps from voluntary context switches). Each section's load",
    "average is printed above it: on this shared 2-core machine a load average above 2 means other work competed for the",
    "cores, which raises every figure of the relay path far more than the C responder's (one process, a few microseconds per",
    "wake-up), so the ratios move from run to run by tens of percent; figures from repeated runs are medians.",
    "",
    "### Issue 16's targets",
    "",
    ...targets(sections),
    "",
    "### The tail's anatomy",
    "",
    "From the tail section (its method above): what the groups at or above the p99 waited on, each moment counted once,",
    "collections first, then a thread waiting for a core, then a thread running.",
    "",
    ...tailText(sections),
    "",
    ...tailVerdict(sections),
    "",
    "### What holds the targets back",
    "",
    `1. **CPU per group at saturation.** At 4 records/group the relay and the agent together spend ${num(usPerGroup)} us of CPU`,
    `   per group (relay ${four ? num(four.relayCpuSPerMillion) : "n/a"}, agent ${four ? num(four.agentCpuSPerMillion) : "n/a"}). In the profiles, garbage collection takes`,
    `   ${share(prof?.relay, GC)} of the relay's and ${share(prof?.agent, GC)} of the agent's busy time, protobufjs encoding and decoding`,
    `   ${share(prof?.relay, PROTOBUF)} and ${share(prof?.agent, PROTOBUF)}, ffi-rs calls (\`wrapLoad\`: the worker's poll) ${share(prof?.relay, FFI)} of the relay's,`,
    `   socket writes ${share(prof?.relay, SOCKET_WRITE)} and ${share(prof?.agent, SOCKET_WRITE)}. ${relayMost} per group the relay still builds the`,
    "   objects its public interfaces carry (a FaultRecord per record from the pump, the FaultGroup and its pages, the",
    "   ledger entry, the DeviceModel's page request and its pages, a FaultAnswer), and its ledger does several Map",
    "   operations per group. What it would take: the page request written by the DeviceModel straight into the frame",
    "   (a DeviceModel method that writes instead of returning an object), records decoded into groups without a",
    "   FaultRecord each (a change to the pump's events), and the ledger's per-group state in flat arrays by tag.",
    "",
    `2. **Wake-ups at low and middle rates.** ${wakeUpCosts(lat)}. A group can wake the relay twice (the pump's`,
    "   worker hands it the records; the agent's answer arrives) and the agent once, and a wake-up costs far more",
    `   than the work it wakes for (compare the saturated cost in item 1). At 10k groups/s the relay path keeps ${num(cores10k)}`,
    "   of the 2 cores busy beside the emulator, so a thread that wakes often finds both cores taken, which the tail's",
    "   anatomy above measures.",
    "",
    "3. **The worker thread and the FFI.** Node cannot poll a fault fd, so a worker thread polls it through ffi-rs and",
    "   hands records over a shared ring (Atomics.waitAsync): a thread hop per wake-up. Reads and writes now go through",
    `   Node's own fs (${sys ? `one write through ffi-rs costs ${num(sys.ffiUs)} us against ${num(sys.nodeUs)} us through fs.writeSync, ${times(ratio(sys.ffiUs, sys.nodeUs))}` : "cheaper than ffi-rs"}),`,
    "   poll stays on ffi-rs. " + workerHop(sections),
    "",
    "   **Issue 16's item 3 was not done** (the main thread reading the fault fd itself when it is awake after writing",
    `   answers, the worker only waking an idle relay). Sleeps per group in this run: ${sleepsPerGroup(lat)}; these are`,
    "   the figures such a change would have to lower. Why not: while the worker sits in poll() on the fd, any record",
    "   reaching it wakes the worker whoever reads it, so the change saves a wake-up only with the worker out of poll()",
    "   meanwhile (an epoll set with EPOLLONESHOT that the main thread re-arms when it goes idle: an ffi-rs call per",
    "   turn). And two readers of one fd break what the pump's exactly-once rests on: the worker takes an empty read of",
    "   a fd poll() called readable for a group too large for its read (and grows the read, up to failing the fd), so a",
    "   group the main thread took in between would be mistaken for one; the groups either reads must count against",
    "   the sweep's bound (limits.maxHeld plus one read) as one sequence; and an emulator stream's partial-record carry",
    "   would be split between two readers. Doing it safely takes a pump redesigned around one reader at a time, with",
    "   the crash, keeper and ledger tests run against it; left for an issue of its own.",
    "",
    `4. **Memory of held groups.** With ${most ? num(most.held) : "n/a"} groups held, each costs the relay about ${bytesPerHeld("relay")} bytes`,
    `   and the agent ${bytesPerHeld("agent")} bytes above idle (the scale section's RSS rows; the holding program runs in a process of its`,
    "   own). Per held group the agent keeps the request object, its pending entry, the guard's timer and the app",
    "   socket's message; the relay the group, its pages, the ledger entry and the page request it sent.",
    "",
    `5. **RSS during the soak.** ${soakText(section<SoakData>(sections, "soak"))}`,
    "",
    "### Changes made for issue 16, and what they measured",
    "",
    "Each measured with the same bench command before and after the change, three runs of each build alternating, on",
    "the shared machine (load average 10-12 on 2 cores while the other engineers built a kernel and ran test suites);",
    "medians of three. Under that load every absolute figure is several times the quiet machine's.",
    "",
    "- Fault fds read and written through Node's fs instead of ffi-rs (`--quick --only throughput,latency`): 4",
    "  records/group 3.3k -> 7.8k groups/s, relay + agent CPU per group 78.6 -> 57.3 us.",
    "- PAGE_REQUESTS and PAGE_RESPONSES encoded and decoded by hand, without an object per page or group, and the",
    "  agent answering synchronous handlers from the decoded arrays (same command): 4 records/group 7.8k -> 27.0k",
    "  groups/s, CPU per group 57.3 -> 23.3 us (924x -> 361x the C responder's); the agent's share 21 -> 4 us.",
    "- The bench itself: the tail section (collections and threads' run states beside each slow group), the",
    "  emulator's slowest answers, the holding program in a process of its own, the relay of issue 13's command line.",
    "",
    "Measured and not kept (no difference the runs could tell from their noise):",
    "",
    "- V8's knobs for a 2-core host, on both processes (`--quick --only throughput,latency,tail`, three runs each,",
    "  load average 8-17): `--single-threaded-gc` (4 records/group 21.8 us per group against 15.9 without; tail p99",
    "  at 10k groups/s 61 ms against 23 ms) and a young generation of 16-64 MiB (59.1 us per group; longer pauses).",
    "  A small one (`--max-semi-space-size=1` or `4`) made the relay's scavenges shorter (longest 5-7 ms against",
    "  14-16 ms, twice each at 10k groups/s, load average 4) for more of them; the p99 moved within its noise. Not",
    "  shipped: it would have to reach every launcher of the relay (systemd unit, keeper, scripts) as a node flag.",
    "- The ledger's memory of settled tags in typed arrays with an open-addressing index, and the latency",
    "  histogram's bucket in integer operations (`--quick --only throughput,latency`, three runs each, load average",
    "  4-5): 4 records/group 12.1 against 11.2 us per group, 1 record 7.2 against 9.3; the relay's scavenges stayed",
    "  as long. Reverted.",
    "",
    "### Earlier changes",
    "",
    "- The agent answers a synchronous handler without a timer, a listener or an AbortController, and the relay builds",
    "  page addresses without BigInt or object spreads: 4 records/group 46.3k -> 80.6k groups/s (1.74x).",
    "- The agent declines FEATURE_RAW_RECORDS unless its config asks (`rawRecords`): the throughput section's",
    `  experiment measures it again in every run: with \`rawRecords: true\` the path carries ${tp && four ? times(ratio(tp.rawRecords.groupsPerSec, four.groupsPerSec)) : "n/a"} of the default's groups/s.`,
    "- PAGE_REQUESTS batches are cut by encoded size as well as count, and a request larger than max_payload is",
    "  answered INVALID by the relay.",
    "- The pump's worker goes back to poll() after a short read instead of reading the fd empty: one system call",
    "  fewer per wake-up.",
    "- The agent's max_in_flight is configurable (`maxInFlight`), so a guest can hold more than 4096 groups.",
    "",
  ].join("\n");
}
