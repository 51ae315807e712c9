// GET /metrics in the Prometheus text exposition format (version 0.0.4).
// Every counter is a total since the relay started; latencies are
// histograms in seconds with fixed buckets, so rates and quantiles are
// computed by the scraper (rate(), histogram_quantile()).
import { ANSWER_ORIGINS, END_REASONS } from "../../fault/fault-group.js";
import { SESSION_DOWN_CAUSES } from "../agent-flow.js";
import { LatencyHistogram } from "../latency-histogram.js";
import { RelayMetrics } from "../relay-metrics.js";
import { DeviceStats } from "./device-stats.js";
import { EventStream } from "./event-stream.js";
import { CoreView, LATENCY_BOUNDS_US, RelayView } from "./relay-view.js";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string | number>;

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    return this;
  }

  sample(name: string, value: number, labels: Labels = {}): this {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
    this.lines.push(`${name}${l.length > 0 ? `{${l.join(",")}}` : ""} ${Number.isFinite(value) ? value : value > 0 ? "+Inf" : "NaN"}`);
    return this;
  }

  histogram(name: string, help: string, h: LatencyHistogram): this {
    this.family(name, "histogram", help);
    const cumulative = h.cumulative(LATENCY_BOUNDS_US);
    LATENCY_BOUNDS_US.forEach((us, i) => this.sample(`${name}_bucket`, cumulative[i] ?? 0, { le: String(us / 1e6) }));
    return this.sample(`${name}_bucket`, h.count, { le: "+Inf" }).sample(`${name}_sum`, h.sumUs / 1e6).sample(`${name}_count`, h.count);
  }

  text(): string {
    return this.lines.join("\n") + "\n";
  }
}

const DROP_REASONS = ["unknown-tag", "foreign-session", "late", "duplicate"] as const;
const SESSION_STATES: RelayMetrics["sessionState"][] = ["waiting", "handshake", "up"];

export function renderMetrics(view: RelayView, stats: DeviceStats, stream: EventStream): string {
  const core: CoreView = view.core;
  const m = core.metrics;
  const x = new Exposition();
  x.family("iopf_relay_info", "gauge", "The relay's software version (always 1).").sample("iopf_relay_info", 1, { software: view.software, viommu: view.viommu });
  x.family("process_start_time_seconds", "gauge", "When this relay process started, in seconds since the Unix epoch (a change is a restart).")
    .sample("process_start_time_seconds", Math.round(performance.timeOrigin) / 1000);
  x.family("iopf_relay_keeper_restarts_total", "counter", "Times the keeper restarted its relay before this one (0 without --keeper).")
    .sample("iopf_relay_keeper_restarts_total", m.keeperRestarts);
  x.family("iopf_relay_records_total", "counter", "Fault records read from every source.").sample("iopf_relay_records_total", m.records);
  x.family("iopf_relay_groups_total", "counter", "Fault groups read (each gets exactly one answer).").sample("iopf_relay_groups_total", m.groups);
  x.family("iopf_relay_groups_sent_total", "counter", "Page request groups sent to the agent (a group is sent again after a lost session).")
    .sample("iopf_relay_groups_sent_total", m.groupsSent);

  x.family("iopf_relay_answers_total", "counter", "Answers written to the fault sources, by who decided them (origin) and the code.");
  // Every origin is listed, with zeros, so a dashboard's queries find their series before the first answer.
  for (const origin of ANSWER_ORIGINS) {
    const c = m.answers.get(origin) ?? { success: 0, invalid: 0 };
    x.sample("iopf_relay_answers_total", c.success, { origin, code: "success" }).sample("iopf_relay_answers_total", c.invalid, { origin, code: "invalid" });
  }
  const deadline = m.answers.get("deadline");
  x.family("iopf_relay_deadlines_total", "counter", "Groups answered by their deadline because the guest did not answer in time.")
    .sample("iopf_relay_deadlines_total", (deadline?.success ?? 0) + (deadline?.invalid ?? 0));
  x.family("iopf_relay_guest_answers_dropped_total", "counter", "Guest answers dropped and never written, by reason.");
  for (const reason of DROP_REASONS) x.sample("iopf_relay_guest_answers_dropped_total", m.dropped.get(reason) ?? 0, { reason });
  x.family("iopf_relay_answers_refused_total", "counter", "Answers the fault source refused (EINVAL: e.g. the kernel answered them at a detach).")
    .sample("iopf_relay_answers_refused_total", m.refused);
  x.family("iopf_relay_groups_ended_total", "counter", "Groups that got no answer from the relay: the kernel answered them itself (kernel-ended), or their source went away (source-gone).");
  for (const reason of END_REASONS) x.sample("iopf_relay_groups_ended_total", m.ended.get(reason) ?? 0, { reason });
  x.family("iopf_relay_swept_groups_total", "counter", "Groups a previous reader of a fault queue left unanswered, answered SUCCESS before the first read.")
    .sample("iopf_relay_swept_groups_total", m.sweptGroups);
  x.family("iopf_relay_source_failures_total", "counter", "Fault sources that stopped delivering (see /healthz and the log).").sample("iopf_relay_source_failures_total", m.sourceFailures);
  x.family("iopf_relay_unknown_response_codes_total", "counter", "Guest answers with a code the link does not define (each became INVALID).")
    .sample("iopf_relay_unknown_response_codes_total", m.unknownCodes);

  x.family("iopf_relay_groups_in_flight", "gauge", "Groups sent to the agent or queued for it.").sample("iopf_relay_groups_in_flight", core.inFlight);
  x.family("iopf_relay_groups_queued", "gauge", "Groups waiting for the agent's credit window.").sample("iopf_relay_groups_queued", core.queued);
  x.family("iopf_relay_credit_window", "gauge", "Groups the agent will hold at once (its credit window).").sample("iopf_relay_credit_window", m.creditWindow);
  x.family("iopf_relay_session_state", "gauge", "The guest link's session state: 1 for the current state.");
  for (const state of SESSION_STATES) x.sample("iopf_relay_session_state", m.sessionState === state ? 1 : 0, { state });
  x.family("iopf_relay_sessions_started_total", "counter", "Agent sessions that came up.").sample("iopf_relay_sessions_started_total", m.sessionsUp);
  x.family("iopf_relay_sessions_ended_total", "counter", "Agent sessions that ended, by cause (the log says more of each).");
  for (const cause of SESSION_DOWN_CAUSES) x.sample("iopf_relay_sessions_ended_total", m.sessionsEnded.get(cause) ?? 0, { cause });
  x.family("iopf_relay_session_takeovers_total", "counter", "Sessions taken over by another agent connection that completed a handshake.")
    .sample("iopf_relay_session_takeovers_total", m.takeovers);
  x.family("iopf_relay_agent_connections_refused_total", "counter", "Agent connections closed before a session: too many shaking hands at once, or no valid handshake in time.")
    .sample("iopf_relay_agent_connections_refused_total", m.connectionsRefused);
  x.family("iopf_relay_agent_refusals_total", "counter", "HELLOs the agent answered with an ERROR: it refused the relay's offer (the last reason is in /api/status).")
    .sample("iopf_relay_agent_refusals_total", m.agentRefusals);

  x.histogram("iopf_relay_answer_latency_seconds", "From a group's read to its answer's write, every origin.", m.latency);
  x.histogram("iopf_relay_guest_answer_latency_seconds", "From a group's read to its answer's write, guest answers only.", m.guestLatency);

  const names = new Map(view.devices.map((d) => [d.devId, d.name]));
  x.family("iopf_relay_device_groups_total", "counter", "Fault groups read, per host device.");
  for (const [dev, c] of stats.byDev) x.sample("iopf_relay_device_groups_total", c.groups, { dev, name: names.get(dev) ?? "" });
  x.family("iopf_relay_device_answers_total", "counter", "Answers per host device: success, invalid, or expired (by the deadline).");
  for (const [dev, c] of stats.byDev) {
    const name = names.get(dev) ?? "";
    x.sample("iopf_relay_device_answers_total", c.success, { dev, name, result: "success" })
      .sample("iopf_relay_device_answers_total", c.invalid, { dev, name, result: "invalid" })
      .sample("iopf_relay_device_answers_total", c.expired, { dev, name, result: "expired" });
  }
  x.family("iopf_relay_control_viewers", "gauge", "Live event stream viewers connected.").sample("iopf_relay_control_viewers", stream.viewerCount);
  x.family("iopf_relay_control_events_lost_total", "counter", "Events not delivered to a viewer that read too slowly.").sample("iopf_relay_control_events_lost_total", stream.lostTotal);
  return x.text();
}
