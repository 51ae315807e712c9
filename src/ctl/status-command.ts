// `iopfctl status`: the relay at a glance, as a person reads it; --json
// prints /api/status as it came, for scripts.
import type { RelayStatus } from "../relay/control/status.js";
import { ControlClient } from "./control-client.js";
import { microseconds, table } from "./text-table.js";

export function statusText(s: RelayStatus): string {
  const c = s.counters;
  const guest = c.answers["guest"] ?? { success: 0, invalid: 0 };
  const otherOrigins = Object.entries(c.answers).filter(([o]) => o !== "guest" && o !== "deadline")
    .map(([o, v]) => `${o} ${v.success + v.invalid}`).join(", ");
  const dropped = Object.entries(c.dropped).map(([r, n]) => `${r} ${n}`).join(", ");
  const session = s.session.state === "up"
    ? `up, session ${s.session.epoch} with ${s.session.agent}, credit window ${s.creditWindow}`
    : `${s.session.state}${s.session.lastDownReason ? ` (last session ended: ${s.session.lastDownReason})` : s.session.lastAgentRefusal ? "" : " (no agent has connected yet)"}`;
  const lines = [
    `relay        ${s.software}, pid ${s.pid}, up ${s.uptimeS} s, ${s.viommu}`,
    `sources      ${s.sources.join(", ")}${s.inject.synthetic || s.inject.emulator ? `  (inject: ${[s.inject.synthetic ? "synthetic" : "", s.inject.emulator ? "emulator" : ""].filter(Boolean).join(", ")})` : ""}`,
    `session      ${session}; ${s.session.up} up, ${s.session.down} down so far`,
    ...(s.session.state !== "up" && s.session.lastAgentRefusal ? [`             the agent refused the offer (${s.session.agentRefusals} times so far), last: ${s.session.lastAgentRefusal.reason}`] : []),
    ...(s.session.flapping ? [`             FLAPPING: agent connections keep taking the session from each other (${s.session.takeovers} takeovers): are two agents using this socket?`] : []),
    `in flight    ${s.inFlight} groups (${s.queued} waiting for credit)`,
    `groups       ${c.groups} read from ${c.records} records, ${c.sent} sent to the agent`,
    `answers      ${c.answered}: guest ${guest.success} success / ${guest.invalid} invalid, deadline ${c.deadlines}${otherOrigins ? `, ${otherOrigins}` : ""}`,
    `refused      ${c.refused} by the source${c.unknownCodes ? `; ${c.unknownCodes} unknown guest codes` : ""}`,
    `dropped      ${dropped || "none"} (guest answers never written)`,
    s.latencyUs.count > 0
      ? `latency      p50 ${microseconds(s.latencyUs.p50)}, p90 ${microseconds(s.latencyUs.p90)}, p99 ${microseconds(s.latencyUs.p99)}, max ${microseconds(s.latencyUs.max)} over the last ${s.latencyUs.windowS} s (${s.latencyUs.count} answers)`
      : `latency      no answers in the last ${s.latencyUs.windowS} s`,
    `viewers      ${s.viewers} watching the event stream${s.eventsLost ? `, ${s.eventsLost} events lost to slow viewers` : ""}`,
    "",
    ...table(
      ["dev", "name", "groups", "success", "invalid", "expired", "mean latency", "deadline"],
      s.devices.map((d) => [d.devId, d.name, d.groups, d.success, d.invalid, d.expired, microseconds(d.meanLatencyUs), d.deadlineMs ? `${d.deadlineMs} ms` : "-"]),
    ),
  ];
  return lines.join("\n") + "\n";
}

export async function statusCommand(client: ControlClient, json: boolean, out: (s: string) => void): Promise<void> {
  const s = await client.status();
  out(json ? JSON.stringify(s, null, 2) + "\n" : statusText(s));
}
