// `iopfctl replay FILE`: the group-read events of a recording raised again,
// in time order and with their recorded spacing (scaled by --speed), into a
// relay's synthetic source, or its kernel emulator with --emulator (the
// emulator takes them through the same fault-fd path as the kernel's). The
// event stream carries no page addresses or permissions, so a replay
// reproduces timing, devices, PASIDs and group sizes; addresses step up from
// --addr and every page asks --perm.
import { readFileSync } from "node:fs";
import type { WireEvent } from "../relay/control/wire-event.js";
import { MAX_INJECT, MAX_INJECT_PAGES } from "../relay/control/inject-limits.js";
import { ControlClient, CtlError } from "./control-client.js";

export interface ReplayOptions {
  file: string;
  emulator: boolean;
  speed: number;
  addr: number;
  perm: number;
}

export interface ReplayGroup {
  t: number;
  dev: number;
  pasid: number | undefined;
  pages: number;
}

/** Groups read within this much recorded time on the same device, PASID and size go in one request. */
const BATCH_MS = 10;

export function readRecording(file: string): { groups: ReplayGroup[]; skipped: number; lost: number } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new CtlError(`cannot read the recording ${file}: ${(err as Error).message}`);
  }
  const groups: ReplayGroup[] = [];
  let skipped = 0;
  let lost = 0;
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let e: Partial<WireEvent> & { lost?: number };
    try {
      e = JSON.parse(line) as typeof e;
    } catch {
      throw new CtlError(`${file}:${i + 1}: expected one JSON event per line (as iopfctl record writes), got ${JSON.stringify(line.slice(0, 60))}`);
    }
    if (typeof e.lost === "number") lost += e.lost;
    if (e.kind !== "group-read" || typeof e.t !== "number" || typeof e.dev !== "number") {
      skipped++;
      return;
    }
    // The stream shows a group without a PASID as PASID 0.
    groups.push({ t: e.t, dev: e.dev, pasid: e.pasid ? e.pasid : undefined, pages: Math.max(1, Math.min(MAX_INJECT_PAGES, e.pages ?? 1)) });
  });
  groups.sort((a, b) => a.t - b.t);
  return { groups, skipped, lost };
}

/** Consecutive groups alike in device, PASID and size, close in time, as one inject request each (of at most MAX_INJECT). */
export function batches(groups: ReplayGroup[]): { t: number; group: ReplayGroup; count: number }[] {
  const out: { t: number; group: ReplayGroup; count: number }[] = [];
  for (const g of groups) {
    const last = out[out.length - 1];
    if (last && g.t - last.t < BATCH_MS && last.count < MAX_INJECT && last.group.dev === g.dev && last.group.pasid === g.pasid && last.group.pages === g.pages) last.count++;
    else out.push({ t: g.t, group: g, count: 1 });
  }
  return out;
}

export async function replayCommand(client: ControlClient, o: ReplayOptions, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const { groups, skipped, lost } = readRecording(o.file);
  if (groups.length === 0) throw new CtlError(`${o.file}: no group-read events to replay (${skipped} other lines); record with a filter that keeps group-read`);
  if (lost > 0) err(`iopfctl: the recording has gaps: ${lost} events were lost while recording; the replay raises only what was recorded\n`);
  const plan = batches(groups);
  const t0 = plan[0]!.t;
  const start = performance.now();
  let addr = o.addr;
  let raised = 0;
  for (const b of plan) {
    const wait = start + (b.t - t0) / o.speed - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const r = await client.inject({ target: o.emulator ? "emulator" : "synthetic", dev: b.group.dev, pasid: b.group.pasid, addr, perm: o.perm, pages: b.group.pages, count: b.count });
    raised += r.raised;
    addr += b.count * b.group.pages * 4096;
  }
  const seconds = ((performance.now() - start) / 1000).toFixed(2);
  out(`replayed ${raised} groups in ${plan.length} requests over ${seconds} s into the relay's ${o.emulator ? "kernel emulator" : "synthetic source"} (${skipped} other events skipped)\n`);
  return raised;
}
