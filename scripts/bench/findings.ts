// The findings of docs/performance.md: what holds the figures back, each
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
interface HeldRow { held: number; idle: { relay: number; agent: number }; holding: { relay: number; agent: number } }

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
  return `The relay's RSS trend over the second half is ${num(s.relay.mibPerMin)} MiB/min, while its live heap after each full ` +
    `collection went from ${num(s.liveRelay.start)} to ${num(s.liveRelay.end)} MiB (${num(s.liveRelay.mibPerMin)} MiB/min): the RSS follows V8's ` +
    "heap sizing (V8 resizes the heap it keeps between collections), not live data. A steadier RSS would take " +
    "capping the young generation (`--max-semi-space-size`) at some cost in scavenges; not done, as nothing leaks.";
}

export function findings(sections: SectionResult[]): string {
  const prof = section<{ relay: ProfileSummary; agent: ProfileSummary; syscall: SyscallCost }>(sections, "profile");
  const sys = prof?.syscall;
  const tp = section<{ rows: ThroughputRow[]; rawRecords: RelayLoadResult }>(sections, "throughput");
  const lat = section<{ rows: LatencyRow[]; wakeUpFloor: GroupCost }>(sections, "latency");
  const held = section<{ held: HeldRow[] }>(sections, "scale")?.held;
  const four = tp?.rows.find((r) => r.records === 4)?.relay;
  const usPerGroup = four ? (four.relayCpuSPerMillion + four.agentCpuSPerMillion) : NaN;
  const at10k = lat?.rows.find((r) => r.rate === 10_000);
  const cores10k = at10k ? ((cpuUs(at10k.relay.cost.relayMain) + cpuUs(at10k.relay.cost.relayOthers) + cpuUs(at10k.relay.cost.agent)) * 10_000) / 1e6 : NaN;
  const most = held?.at(-1);
  const bytesPerHeld = (who: "relay" | "agent"): string => (most ? num(((most.holding[who] - most.idle[who]) * 1024 * 1024) / most.held) : "n/a");
  return [
    "## Findings",
    "",
    "Shares are of busy (non-idle) samples in this run's profiles; per-group costs are from the per-thread table of the latency",
    "section (user and kernel CPU from /proc/PID/task/*/stat, sleeps from voluntary context switches).",
    "",
    "### What holds the targets back",
    "",
    `1. **CPU per group at saturation.** At 4 records/group the relay and the agent together spend ${num(usPerGroup)} us of CPU`,
    `   per group, so two cores carry at most about ${num(2e6 / usPerGroup)} groups/s before the emulator takes its share; 200k`,
    "   groups/s needs 10 us or less. In the profiles, garbage collection takes",
    `   ${share(prof?.relay, GC)} of the relay's and ${share(prof?.agent, GC)} of the agent's busy time, protobufjs encoding and decoding`,
    `   ${share(prof?.relay, PROTOBUF)} and ${share(prof?.agent, PROTOBUF)}, ffi-rs calls (\`wrapLoad\`: the fault fd's read, write`,
    `   and poll) ${share(prof?.relay, FFI)} of the relay's, socket writes ${share(prof?.relay, SOCKET_WRITE)} and ${share(prof?.agent, SOCKET_WRITE)}.`,
    "   What it would take: encode a PageRequestBatch straight from the ledger's groups into one reused buffer,",
    "   and decode it in the agent without an object per page (a hand-written codec for the two hot messages, checked",
    "   against protobufjs by a property test), which removes most per-group garbage; and a native fault-fd binding",
    "   (item 3).",
    "",
    `2. **Wake-ups at low and middle rates.** ${wakeUpCosts(lat)}. A group can wake the relay twice (the pump's`,
    "   worker hands it the records; the agent's answer arrives) and the agent once, and a wake-up costs far more",
    `   than the work it wakes for (compare the saturated cost in item 1). At 10k groups/s the relay path keeps ${num(cores10k)}`,
    "   of the 2 cores busy beside the emulator, so a thread that wakes often finds both cores taken; waiting for a",
    "   core is the likely source of the p99 (this kernel keeps no run-queue delay statistics to show it directly).",
    "   What it would take: fewer wake-ups per group (item 3) and less CPU per wake-up (item 1), so that the path",
    "   needs well under one core at 10k groups/s.",
    "",
    "3. **The worker thread and the FFI.** Node cannot poll a fault fd, so a worker thread polls it through ffi-rs and",
    "   hands records over a shared ring (Atomics.waitAsync): a thread hop per wake-up. And every read, write and",
    `   poll through ffi-rs costs ${sys ? `${num(sys.ffiUs)} us against ${num(sys.nodeUs)} us for the same write through Node's own binding (${times(ratio(sys.ffiUs, sys.nodeUs))}, the profile section's last table)` : "more than the system call"}.`,
    "   A small N-API addon that registers the fault fd with libuv (`uv_poll_t`)",
    "   on the main loop and reads and writes it directly would remove the hop, the ring and the FFI cost; it replaces",
    "   ffi-rs, the chosen binding, on the data path, so it is a decision for the project, proposed here and not made.",
    "",
    `4. **Memory of held groups.** With ${most ? num(most.held) : "n/a"} groups held, each costs the relay about ${bytesPerHeld("relay")} bytes`,
    `   and the agent ${bytesPerHeld("agent")} bytes above idle (the scale section's RSS rows). The agent's figure includes the`,
    "   app client that holds the groups, which this bench runs in the agent's process (in production it is the",
    "   guest program's); per group the agent keeps the decoded request, its Pending entry, the guard's timer and",
    "   the app socket's message, the app client the parsed message and a promise; the relay the group, its pages",
    "   and the ledger entry. What it would take: keep held groups in typed arrays indexed by tag instead of objects.",
    "",
    `5. **RSS during the soak.** ${soakText(section<SoakData>(sections, "soak"))}`,
    "",
    "### Changes made, and what they measured",
    "",
    "Each measured on this machine with `npm run bench -- --quick --only throughput,profile` before and after the",
    "change, in the same hour; quick runs move by 10-20% from run to run, so only large changes are claimed.",
    "",
    "- The agent answers a synchronous handler without a timer, a listener or an AbortController (the guard's",
    "  fast path, and the request's abort signal made only when a pending answer listens), and the relay builds",
    "  page addresses without BigInt or object spreads: 4 records/group 46.3k -> 80.6k groups/s (1.74x), 32",
    "  records/group 12.2k -> 29.2k; the agent's AbortSignal share of busy time went from 18% to none.",
    "- The agent declines FEATURE_RAW_RECORDS unless its config asks (`rawRecords`): no built-in handler reads the",
    "  records, which cost the relay a third of its CPU per group when they were on. The throughput section's",
    `  experiment measures it again in every run: with \`rawRecords: true\` the path carries ${tp && four ? times(ratio(tp.rawRecords.groupsPerSec, four.groupsPerSec)) : "n/a"} of the default's groups/s.`,
    "- PAGE_REQUESTS batches are cut by encoded size as well as count, and a request larger than max_payload is",
    "  answered INVALID by the relay: at 32 records/group every group used to end by deadline (a batch over",
    "  the agent's max_payload ended each session).",
    "- The pump's worker goes back to poll() after a short read instead of reading the fd empty: one system call",
    "  fewer per wake-up; the worker's CPU at 10k groups/s went from 37 to 31 us per group.",
    "- A device sending groups the vIOMMU model cannot show is warned about once, then at most once a second",
    "  with a count, where it used to write a line per group (35k lines in seconds at 100k groups).",
    "- The agent's max_in_flight is configurable (`maxInFlight`), so a guest can hold more than 4096 groups.",
    "",
  ].join("\n");
}
