// `iopfctl top`: per-device rates from two /api/status snapshots an
// interval apart, busiest device first; per-device mean latency over the
// same interval, and p99 over the relay's recent window (never since start). On a terminal the frame is redrawn
// in place (ANSI home and clear); piped, each refresh is a block of plain
// lines starting with a time, so a log or `grep` can follow it.
import type { RelayStatus } from "../relay/control/status.js";
import { ControlClient } from "./control-client.js";
import { microseconds, rate, table } from "./text-table.js";

export interface TopOptions {
  intervalMs: number;
  /** Frames to print (0: until interrupted). */
  iterations: number;
  ansi: boolean;
}

const HOME_CLEAR = "\x1b[H\x1b[2J";
const BOLD = "\x1b[1m";
const RESET = "\x1b[0m";

export function topFrame(prev: RelayStatus, cur: RelayStatus, ansi: boolean): string {
  const dt = Math.max(0.001, (cur.now - prev.now) / 1000);
  const before = new Map(prev.devices.map((d) => [d.devId, d]));
  type Key = "groups" | "success" | "invalid" | "expired" | "latencySumUs";
  const delta = (d: RelayStatus["devices"][number], key: Key): number => d[key] - (before.get(d.devId)?.[key] ?? d[key]);
  const per = (d: RelayStatus["devices"][number], key: Key): number => delta(d, key) / dt;
  const meanLatency = (d: RelayStatus["devices"][number]): string => {
    const answered = delta(d, "success") + delta(d, "invalid") + delta(d, "expired");
    return answered > 0 ? microseconds(Math.round(delta(d, "latencySumUs") / answered)) : "-";
  };
  const rows = cur.devices
    .map((d) => ({ d, groups: per(d, "groups") }))
    .sort((a, b) => b.groups - a.groups || a.d.devId - b.d.devId)
    .map(({ d, groups }) => [d.devId, d.name, rate(groups), rate(per(d, "success")), rate(per(d, "invalid")), rate(per(d, "expired")), meanLatency(d)]);
  const total = (cur.counters.groups - prev.counters.groups) / dt;
  const time = new Date(cur.now).toISOString().slice(11, 19);
  const summary = `${time}  ${cur.software}  session ${cur.session.state}  ${rate(total)} groups/s  in flight ${cur.inFlight}  queued ${cur.queued}  p99 (last ${cur.latencyUs.windowS} s) ${cur.latencyUs.count > 0 ? microseconds(cur.latencyUs.p99) : "-"}`;
  const [header = "", ...body] = table(["dev", "name", "groups/s", "success/s", "invalid/s", "expired/s", "mean latency"], rows);
  if (ansi) return `${HOME_CLEAR}${summary}\n\n${BOLD}${header}${RESET}\n${body.join("\n")}\n`;
  return [summary, header, ...body].map((l) => (l === summary ? l : `${time}  ${l}`)).join("\n") + "\n";
}

export async function topCommand(client: ControlClient, o: TopOptions, out: (s: string) => void): Promise<void> {
  let stop = false;
  const onSignal = (): void => {
    stop = true;
  };
  process.once("SIGINT", onSignal);
  try {
    let prev = await client.status();
    for (let i = 0; !stop && (o.iterations === 0 || i < o.iterations); i++) {
      await new Promise((r) => setTimeout(r, o.intervalMs));
      if (stop) break;
      const cur = await client.status();
      out(topFrame(prev, cur, o.ansi));
      prev = cur;
    }
  } finally {
    process.off("SIGINT", onSignal);
  }
}
