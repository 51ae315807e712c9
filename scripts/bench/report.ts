// docs/performance.md from a run's results: the machine, the command, then
// each section's method, tables, charts and notes, then the findings.
import { Machine } from "./machine.js";
import { SectionResult, Table } from "./section.js";

export interface RunInfo {
  machine: Machine;
  command: string;
  quick: boolean;
  revision: string;
  startedAt: string;
  durationSeconds: number;
}

function table(t: Table): string {
  const row = (cells: string[]): string => `| ${cells.join(" | ")} |`;
  return [`*${t.caption}*`, "", row(t.columns), row(t.columns.map(() => "---")), ...t.rows.map(row)].join("\n");
}

export function performancePage(run: RunInfo, sections: SectionResult[], findings: string): string {
  const m = run.machine;
  const out = [
    "# Performance",
    "",
    "Written by `npm run bench` (scripts/bench/main.ts); do not edit by hand. Every figure of the relay path is",
    "shown beside a baseline measured in the same run (the C baseline responder answering the same kernel",
    "emulator directly, or the same process idle), because the machine is shared and absolute figures move",
    "with its load. The raw figures are in bench-results.json.",
    "",
    "The measured path, as in production: kernel emulator -> `iopf-relay` (its own node process, reading the",
    "emulator's socket as an inherited `--emulator-fd`) -> Unix socket -> `iopf-agent` (`dist/iopf-agent.mjs`, its own",
    "node process; the policy handler answers at once) -> back. The baseline: the same emulator answered by",
    "`scripts/bench/baseline-responder.c` (poll, read 64 KiB, one write of every answer), the floor for any",
    "userspace responder.",
    "",
    "## Run",
    "",
    `- command: \`${run.command}\`${run.quick ? " (quick: every load shortened; figures are noisier)" : ""}`,
    `- code: ${run.revision}`,
    `- started ${run.startedAt}, took ${Math.round(run.durationSeconds)} s`,
    `- machine: ${m.nproc} CPUs, ${m.cpuModel}, Linux ${m.kernel}, node ${m.node}`,
    `- load average at start: ${m.loadAverageAtStart.join(", ")} (1, 5, 15 min)`,
    "",
  ];
  for (const s of sections) {
    out.push(`## ${s.title}`, "", s.method, "", `Load average (1 min) when the section started: ${s.loadAverage}.`, "");
    for (const t of s.tables) out.push(table(t), "");
    for (const c of s.charts) out.push(`![${s.title}](img/${c})`, "");
    for (const n of s.notes) out.push(`- ${n}`);
    if (s.notes.length > 0) out.push("");
  }
  out.push(findings);
  return out.join("\n") + "\n";
}
