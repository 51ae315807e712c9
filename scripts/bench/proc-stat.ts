// CPU time and memory of a process from /proc, for "CPU seconds per million
// groups" and RSS. utime+stime cover every thread, so the relay's fault-pump
// worker is counted with its main thread.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  return ticksPerSecond;
}

/** User plus system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // comm (field 2) may hold spaces and parentheses; the fields after its last ")" are plain.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after comm and state.
  const utime = Number(fields[11]), stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`/proc/${pid}/stat: expected utime and stime, got "${stat.trim()}"`);
  return (utime + stime) / clockTicks();
}

/** Resident set size and its peak, in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status);
    if (!m) throw new Error(`/proc/${pid}/status: expected a "${key}:" line in kB; is ${pid} a live process?`);
    return Number(m[1]);
  };
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}
