// Threads' run states from the kernel's scheduler events: `perf sched
// record` (sched_switch and sched_wakeup, system-wide, stamped on
// CLOCK_MONOTONIC) around a load, then `perf sched timehist`, which gives for
// every stretch a thread ran how long it had waited for a core after its
// wake-up (the scheduling delay) and how long it ran. Needs perf and the
// kernel's tracepoints (tracefs); without them the caller says so and goes
// on with the GC evidence alone.
import { ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** A stretch of one thread: waiting for a core from waitStartNs to runStartNs, then running until endNs (CLOCK_MONOTONIC). */
export interface Stretch {
  waitStartNs: number;
  runStartNs: number;
  endNs: number;
}

export class SchedTrace {
  private constructor(private readonly perf: ChildProcess, private readonly dir: string, private readonly exited: Promise<number | null>) {}

  /** Starts recording; null, with why, when perf cannot record scheduler events here. */
  static async start(): Promise<SchedTrace | string> {
    try {
      await run("perf", ["version"]);
    } catch {
      return "perf is not installed (Debian: linux-perf)";
    }
    const dir = mkdtempSync(join(tmpdir(), "iopf-bench-sched-"));
    const perf = spawn("perf", ["sched", "record", "-k", "CLOCK_MONOTONIC", "-o", join(dir, "perf.data")], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    perf.stderr!.on("data", (d: Buffer) => void (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => perf.once("exit", (code) => resolve(code)));
    // perf says nothing when it records; a failure (no tracepoints, no permission) ends it at once.
    const early = await Promise.race([exited, new Promise<"running">((r) => setTimeout(() => r("running"), 1000))]);
    if (early !== "running") {
      rmSync(dir, { recursive: true, force: true });
      return `perf sched record failed (exit ${early}): ${err.trim().split("\n").slice(-2).join(" ")}; it needs root and tracefs (mount -t tracefs nodev /sys/kernel/tracing)`;
    }
    return new SchedTrace(perf, dir, exited);
  }

  /** Stops recording and returns each given thread's stretches. */
  async stop(tids: number[]): Promise<Map<number, Stretch[]>> {
    this.perf.kill("SIGINT");
    await this.exited;
    try {
      const { stdout } = await run("perf", ["sched", "timehist", "-i", join(this.dir, "perf.data"), "--tid", tids.join(",")], { maxBuffer: 512 * 1024 * 1024 });
      return parseTimehist(stdout, new Set(tids));
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// "    4754.615962 [0000]  node[20910/20789]     0.000      0.003      0.087 "; times in seconds, the three figures in ms.
const LINE = /^\s*(\d+\.\d+)\s+\[\d+\]\s+.*\[(\d+)(?:\/\d+)?\]\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s*$/;

export function parseTimehist(text: string, tids: Set<number>): Map<number, Stretch[]> {
  const out = new Map<number, Stretch[]>([...tids].map((t) => [t, []]));
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const tid = Number(m[2]);
    if (!tids.has(tid)) continue;
    const endNs = Math.round(Number(m[1]) * 1e9);
    const runNs = Math.round(Number(m[5]) * 1e6), delayNs = Math.round(Number(m[4]) * 1e6);
    out.get(tid)!.push({ waitStartNs: endNs - runNs - delayNs, runStartNs: endNs - runNs, endNs });
  }
  return out;
}
