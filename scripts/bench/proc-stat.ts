// CPU time and memory of a process from /proc, for "CPU seconds per million
// groups" and RSS. utime+stime cover every thread, so the relay's fault-pump
// worker is counted with its main thread.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  ticksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  return ticksPerSecond;
}

/** User and system CPU seconds from a /proc stat file (a process's or one thread's). */
function userSys(path: string): { userS: number; sysS: number } {
  const stat = readFileSync(path, "utf8");
  // comm (field 2) may hold spaces and parentheses; the fields after its last ")" are plain.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after comm and state.
  const utime = Number(fields[11]), stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`${path}: expected utime and stime, got "${stat.trim()}"`);
  return { userS: utime / clockTicks(), sysS: stime / clockTicks() };
}

/** User plus system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const { userS, sysS } = userSys(`/proc/${pid}/stat`);
  return userS + sysS;
}

/** CPU in user and kernel mode, and how often the thread went to sleep (voluntary context switches). */
export interface CpuSplit {
  userS: number;
  sysS: number;
  sleeps: number;
}

/**
 * CPU and sleeps of the process's main thread and of its other threads
 * (the relay's fault-pump worker, V8's and libuv's helpers) summed. A sleep
 * is a wake-up to come: on a virtual machine each costs a trip through the
 * hypervisor, which is where a low-rate relay spends its time.
 */
export function threadCpu(pid: number): { main: CpuSplit; others: CpuSplit } {
  const main: CpuSplit = { userS: 0, sysS: 0, sleeps: 0 };
  const others: CpuSplit = { userS: 0, sysS: 0, sleeps: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let cpu: { userS: number; sysS: number }, status: string;
    try {
      cpu = userSys(`/proc/${pid}/task/${tid}/stat`);
      status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const sleeps = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? NaN);
    const into = Number(tid) === pid ? main : others;
    into.userS += cpu.userS;
    into.sysS += cpu.sysS;
    into.sleeps += sleeps;
  }
  return { main, others };
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

/** Every thread of a threadCpu() reading together. */
export function allThreads(t: { main: CpuSplit; others: CpuSplit }): CpuSplit {
  return { userS: t.main.userS + t.others.userS, sysS: t.main.sysS + t.others.sysS, sleeps: t.main.sleeps + t.others.sleeps };
}
