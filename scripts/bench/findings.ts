// The findings of docs/performance.md: what holds the figures back, with the
// shares taken from this run's profiles and the raw-records experiment, and
// the change each one calls for (files and functions named, so the owner of
// that code can act on it).
import { ProfileSummary } from "./cpuprofile.js";
import { SectionResult, times } from "./section.js";
import { ratio } from "./statistics.js";

/** Self time of the functions whose "name (file:line)" matches, as a share of busy time, within the profile's top list. */
function share(p: ProfileSummary | undefined, pattern: RegExp): string {
  if (!p) return "n/a";
  const s = p.top.filter((t) => pattern.test(t.function)).reduce((a, t) => a + t.share, 0);
  return `${(s * 100).toFixed(0)}%`;
}

// Everything runGuarded and AnswerBatcher.hold do per group besides calling the handler.
const GUARD = /^(finish|runGuarded|createAbortSignal|abortSignal|onCancel|removeEventListener|addEventListener|dispatchEvent|Event|isEventTarget|insert|unenroll|setTimeout|get signal) /;
// Building and encoding the per-page raw record and the page list.
const RAW = /group-builder|encodePageRequest|Page\.Page\.encode|pageBits|longbits/;

export function findings(sections: SectionResult[]): string {
  const prof = sections.find((s) => s.id === "profile")?.data as { relay: ProfileSummary; agent: ProfileSummary } | undefined;
  const tp = sections.find((s) => s.id === "throughput")?.data as
    | { rows: { records: number; relay: { groupsPerSec: number; relayCpuSPerMillion: number; agentCpuSPerMillion: number } }[]; noRawRecords: { groupsPerSec: number; relayCpuSPerMillion: number } }
    | undefined;
  const shipped4 = tp?.rows.find((r) => r.records === 4)?.relay;
  const noRawGain = tp && shipped4 ? times(ratio(tp.noRawRecords.groupsPerSec, shipped4.groupsPerSec)) : "n/a";
  const noRawCpu = tp && shipped4 ? times(ratio(tp.noRawRecords.relayCpuSPerMillion, shipped4.relayCpuSPerMillion)) : "n/a";
  return [
    "## Findings and proposed changes",
    "",
    "Shares are of busy (non-idle) samples in this run's profiles above; the profiler's own overhead is in them.",
    "",
    `1. **The agent's per-group guard** (\`guest-agent/handlers/guard.ts\` \`runGuarded\`, and`,
    "   `guest-agent/session/answer-batcher.ts` `AnswerBatcher.hold`). For every group, even one the policy",
    "   handler answers synchronously, the agent creates two AbortControllers (`hold`, and `inner` in",
    "   `runGuarded`), arms a `setTimeout`, adds an abort listener, and on the answer clears the timer, removes",
    "   the listener and aborts `inner` with `new Error(...)` (a stack trace captured per group, and an abort",
    `   Event dispatched). In the agent's profile these functions take ${share(prof?.agent, GUARD)} of busy time`,
    "   (`finish`, `createAbortSignal`, `abortSignal`, event-target and timer internals). Proposed change: call",
    "   the handler first with a context whose `signal` is created on first access; when the answer is not a",
    "   thenable, report it at once (no timer, no listener, no abort); arm the timer and the cancel listener",
    "   only for a pending promise; abort `inner` only if it was created, with a reason that is not an `Error`",
    "   built per call; create `Pending.abort` lazily the same way. Expected gain: the agent's CPU per group",
    "   roughly halved, which makes the relay the limit of the path.",
    "",
    "2. **Raw records nobody reads** (`src/viommu/group-builder.ts` `buildPageRequest`, its `pages.map`",
    "   callback; `src/viommu/virtio-iommu.ts` `encodePageRequest`; the generated `Page.encode`). FEATURE_RAW_RECORDS",
    "   is in `ALL_FEATURES` and the agent accepts it, so the relay builds a 48-byte record per page (a",
    "   `Uint8Array`, a `DataView`, a BigInt address) and protobuf-encodes it, and the agent decodes it, though no",
    `   handler reads \`raw\`. These take ${share(prof?.relay, RAW)} of the relay's busy time. Measured in this run`,
    `   (throughput section, experiment): the same agent declining the feature gives ${noRawGain} the groups/s`,
    `   and ${noRawCpu} the relay CPU per group. Proposed change: the agent offers RAW_RECORDS only when a`,
    "   configured handler asks for raw records (`guest-agent/agent.ts` passes `capabilities` to the",
    "   SessionClient already); and in `buildPageRequest` compute the page address without BigInt",
    "   (`addr - (addr % 4096)` is exact below 2^53, which every number address is) and without the object spread.",
    "",
    "3. **Garbage collection** is the largest single item in both profiles: per group the relay allocates",
    "   the group, its page objects, the wire request and its pages, the encoder's buffers; the agent the",
    "   decoded request, the Pending entry and the guard's closures. Items 1 and 2 remove most of the",
    "   per-page and per-group garbage; beyond that, encoding a PageRequestBatch straight from the ledger's",
    "   groups into one reused buffer would remove the intermediate wire objects.",
    "",
    "4. **The shipped agent cannot hold more than 4096 groups**: it offers `OUR_CAPABILITIES.limits.maxInFlight`",
    "   (4096) and its config has no key for it, so `credits` above 4096 are clamped. The scale section runs",
    "   the same `Agent` class with a larger max_in_flight. Proposed change: a `maxInFlight` key in the agent",
    "   config (guest-agent/config.ts), passed as `capabilities` in guest-agent/cli.ts.",
    "",
    "5. **A warning per group** (`src/relay/daemon.ts`, the `unfit` callback of `GuestDevices`): a device that",
    "   sends group indexes beyond the vIOMMU model's range gets one `warn` line per group; found while",
    "   raising 100k groups with 17-bit indexes (35k lines in seconds). Proposed change: count per device",
    "   and log the first, then a summary once a second.",
    "",
    "6. **Batches over the negotiated payload limit** (`src/link/link-peer.ts` `sendBatched`, called by",
    "   `src/link/host-link.ts` for PAGE_REQUESTS): batches are cut by count (`maxBatch`, 256) only. At 32",
    "   records/group a batch of 256 groups is ~496 KB (with raw records) against the agreed `maxPayload` of",
    "   262144, the agent ends the session with PAYLOAD_TOO_LARGE, the relay requeues, and the next session",
    "   fails the same way: every group ends by deadline (the 32-record row of the throughput table). Proposed",
    "   change: cut batches by encoded size as well (encode each request's length, e.g.",
    "   `PageRequest.encode(r).len` or an upper bound from the page count, and start a new frame before",
    "   `maxPayload`); a single request larger than `maxPayload` must be answered INVALID by the relay, not sent.",
    "",
  ].join("\n");
}
