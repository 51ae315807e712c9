// The machine a run was measured on: figures from a shared 2-core box mean
// little without its load, so the load average is taken at the start (and
// by each section).
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

export interface Machine {
  nproc: number;
  cpuModel: string;
  loadAverageAtStart: [number, number, number];
  node: string;
  kernel: string;
}

export function describeMachine(): Machine {
  const model = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"));
  const [a, b, c] = loadavg().map((v) => Math.round(v * 100) / 100) as [number, number, number];
  return {
    nproc: cpus().length,
    cpuModel: model ? model[1]! : cpus()[0]?.model ?? "unknown",
    loadAverageAtStart: [a, b, c],
    node: process.version,
    kernel: readFileSync("/proc/sys/kernel/osrelease", "utf8").trim(),
  };
}
