// GET /api/status: one JSON snapshot of the relay for iopfctl and the
// dashboard. Counters are totals since start; viewers derive rates from two
// snapshots, so the relay keeps no timers or windows for them. Latency is
// the exception: a histogram of the last seconds (RecentLatency), since a
// histogram cannot be differenced by a viewer that polls rarely, and one
// since start keeps an early burst in its p99 for ever.
import { DeviceStats } from "./device-stats.js";
import { EventStream } from "./event-stream.js";
import { RECENT_WINDOW_S } from "../latency-histogram.js";
import { LATENCY_BOUNDS_US, RelayView } from "./relay-view.js";

export interface DeviceStatus {
  devId: number;
  name: string;
  endpoint: number;
  deadlineMs: number;
  groups: number;
  success: number;
  invalid: number;
  expired: number;
  /** Mean read-to-answer latency since start; a viewer takes the mean over its own interval from latencySumUs. */
  meanLatencyUs: number;
  /** Sum of the read-to-answer latencies of all its answers (success + invalid + expired) since start. */
  latencySumUs: number;
}

export interface RelayStatus {
  software: string;
  pid: number;
  uptimeS: number;
  /** Wall-clock milliseconds of this snapshot. */
  now: number;
  viommu: string;
  sources: string[];
  /** Whether POST /api/inject is served (the relay has a synthetic source or the kernel emulator). */
  inject: { synthetic: boolean; emulator: boolean };
  /**
   * The guest link's session. takeovers: sessions another connection took over; flapping: they come often
   * (two agents on one socket); refused: connections closed before a handshake; agentRefusals: HELLOs an agent
   * refused, and lastAgentRefusal the last one's reason (the agent's words, bounded and escaped) and wall-clock time.
   */
  session: {
    state: string; epoch: number | null; agent: string | null; up: number; down: number; lastDownReason: string; takeovers: number; flapping: boolean; refused: number;
    agentRefusals: number; lastAgentRefusal: { reason: string; from: string; at: number } | null;
  };
  creditWindow: number;
  inFlight: number;
  queued: number;
  counters: {
    records: number;
    groups: number;
    sent: number;
    answered: number;
    deadlines: number;
    refused: number;
    unknownCodes: number;
    answers: Record<string, { success: number; invalid: number }>;
    dropped: Record<string, number>;
  };
  /**
   * Answers of the last windowS seconds: buckets hold those whose latency is at most leUs and above the
   * previous bound, `over` those above the last. (Since start: /metrics.)
   */
  latencyUs: { windowS: number; count: number; p50: number; p90: number; p99: number; max: number; buckets: { leUs: number; count: number }[]; over: number };
  devices: DeviceStatus[];
  viewers: number;
  eventsLost: number;
}

export function relayStatus(view: RelayView, stats: DeviceStats, stream: EventStream, inject: RelayStatus["inject"]): RelayStatus {
  const { core } = view;
  const m = core.metrics;
  const session = core.currentSession;
  const recent = m.latency.recent.snapshot();
  const cumulative = recent.cumulative(LATENCY_BOUNDS_US);
  const mapped = new Set(view.devices.map((d) => d.devId));
  const devices: DeviceStatus[] = [];
  const seen = new Set<number>();
  for (const d of view.devices) {
    if (seen.has(d.devId)) continue;
    seen.add(d.devId);
    devices.push(deviceStatus(d.devId, d.name, d.endpoint, d.deadlineMs, stats));
  }
  // Devices that fault without being in the map are answered INVALID at once; show them too.
  for (const devId of stats.byDev.keys()) if (!mapped.has(devId)) devices.push(deviceStatus(devId, "(not in the device map)", -1, 0, stats));
  return {
    software: view.software,
    pid: process.pid,
    uptimeS: Math.round((performance.now() - view.startedAtMs) / 100) / 10,
    now: Date.now(),
    viommu: view.viommu,
    sources: view.sources,
    inject,
    session: {
      state: m.sessionState,
      epoch: session?.epoch ?? null,
      agent: session?.agentSoftware ?? null,
      up: m.sessionsUp,
      down: m.sessionsDown,
      lastDownReason: m.lastSessionDownReason,
      takeovers: m.takeovers,
      flapping: m.flapping(performance.now()),
      refused: m.connectionsRefused,
      agentRefusals: m.agentRefusals,
      lastAgentRefusal: m.lastAgentRefusal && { reason: m.lastAgentRefusal.reason, from: m.lastAgentRefusal.from, at: m.lastAgentRefusal.atMs },
    },
    creditWindow: m.creditWindow,
    inFlight: core.inFlight,
    queued: core.queued,
    counters: {
      records: m.records,
      groups: m.groups,
      sent: m.groupsSent,
      answered: m.totalAnswers(),
      deadlines: (m.answers.get("deadline")?.success ?? 0) + (m.answers.get("deadline")?.invalid ?? 0),
      refused: m.refused,
      unknownCodes: m.unknownCodes,
      answers: Object.fromEntries([...m.answers].map(([k, v]) => [k, { ...v }])),
      dropped: Object.fromEntries(m.dropped),
    },
    latencyUs: {
      windowS: RECENT_WINDOW_S,
      count: recent.count,
      p50: recent.quantile(0.5),
      p90: recent.quantile(0.9),
      p99: recent.quantile(0.99),
      max: recent.maxUs,
      // Per bucket, not cumulative: what a bar chart draws.
      buckets: LATENCY_BOUNDS_US.map((leUs, i) => ({ leUs, count: (cumulative[i] ?? 0) - (i > 0 ? cumulative[i - 1] ?? 0 : 0) })),
      over: recent.count - (cumulative[cumulative.length - 1] ?? 0),
    },
    devices,
    viewers: stream.viewerCount,
    eventsLost: stream.lostTotal,
  };
}

function deviceStatus(devId: number, name: string, endpoint: number, deadlineMs: number, stats: DeviceStats): DeviceStatus {
  const c = stats.byDev.get(devId) ?? { groups: 0, success: 0, invalid: 0, expired: 0, latencySumUs: 0 };
  const answered = c.success + c.invalid + c.expired;
  return {
    devId, name, endpoint, deadlineMs,
    groups: c.groups, success: c.success, invalid: c.invalid, expired: c.expired,
    meanLatencyUs: answered > 0 ? Math.round(c.latencySumUs / answered) : 0,
    latencySumUs: c.latencySumUs,
  };
}
