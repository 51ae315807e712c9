#!/usr/bin/env node
// `npm run bench`: measures the relay path against the C baseline and writes
// bench-results.json, docs/performance.md and its charts (docs/img/).
//   --quick          every load shortened (1.5 s loads, 20 s soak): the whole run in about 4 minutes
//   --only a,b       run only these sections (throughput, latency, tail, scale, deadline, soak, profile, real-kernel)
//   --render         measure nothing: write docs/performance.md again from bench-results.json (after a change to its text)
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { findings } from "./findings.js";
import { describeMachine } from "./machine.js";
import { ROOT } from "./paths.js";
import { performancePage, RunInfo } from "./report.js";
import { BenchContext, loadNow, SectionResult } from "./section.js";
import { deadline } from "./sections/deadline.js";
import { latency } from "./sections/latency.js";
import { profile } from "./sections/profile.js";
import { realKernel } from "./sections/real-kernel.js";
import { scale } from "./sections/scale.js";
import { soak } from "./sections/soak.js";
import { tail } from "./sections/tail.js";
import { throughput } from "./sections/throughput.js";

const SECTIONS: Record<string, (ctx: BenchContext) => Promise<SectionResult>> = { throughput, latency, tail, scale, deadline, soak, profile, "real-kernel": realKernel };

/** The code measured: the commit, "-dirty" when the working tree differs from it (others may be mid-change). */
function revision(): string {
  const git = (...args: string[]): string => execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
  return git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain", "--untracked-files=no") ? "-dirty" : "");
}

function options(): { quick: boolean; only: string[]; render: boolean } {
  const { values } = parseArgs({ options: { quick: { type: "boolean" }, only: { type: "string" }, render: { type: "boolean" } } });
  const only = values.only ? values.only.split(",") : Object.keys(SECTIONS);
  for (const s of only) {
    if (!(s in SECTIONS)) throw new Error(`--only: unknown section "${s}"; expected a comma-separated list of ${Object.keys(SECTIONS).join(", ")}`);
  }
  return { quick: values.quick ?? false, only, render: values.render ?? false };
}

/** docs/performance.md from the figures a run already wrote. */
function render(): void {
  const file = join(ROOT, "bench-results.json");
  const { run, sections } = JSON.parse(readFileSync(file, "utf8")) as { run: RunInfo; sections: Record<string, SectionResult> };
  const list = Object.values(sections);
  writeFileSync(join(ROOT, "docs", "performance.md"), performancePage(run, list, findings(list)));
  process.stderr.write(`wrote docs/performance.md from ${file} (${run.command}, ${run.startedAt})\n`);
}

async function main(): Promise<void> {
  const { quick, only, render: renderOnly } = options();
  if (renderOnly) return render();
  const started = Date.now();
  // Before any section writes its charts: the revision names the code measured, not the run's own output.
  const code = revision();
  const machine = describeMachine();
  const imgDir = join(ROOT, "docs", "img");
  const profileDir = join(ROOT, "build", "bench-profiles");
  mkdirSync(imgDir, { recursive: true });
  mkdirSync(profileDir, { recursive: true });
  const ctx: BenchContext = {
    quick,
    loadMs: quick ? 1500 : 10_000,
    warmUpMs: quick ? 300 : 2000,
    soakMs: quick ? 20_000 : 600_000,
    profileDir,
    chart: (name, svg) => {
      writeFileSync(join(imgDir, name), svg);
      return name;
    },
    progress: (message) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${message}\n`),
  };
  ctx.progress(`machine: ${machine.nproc} CPUs, ${machine.cpuModel}, load average ${machine.loadAverageAtStart.join(" ")}`);
  const sections: SectionResult[] = [];
  const failed: string[] = [];
  for (const name of only) {
    let result: SectionResult;
    const loadAverage = loadNow();
    try {
      result = await SECTIONS[name]!(ctx);
    } catch (err) {
      // One failed section must not lose the minutes of figures the others took: it is reported, and the run exits 1.
      const message = err instanceof Error ? err.message : String(err);
      ctx.progress(`${name}: FAILED: ${err instanceof Error ? err.stack ?? message : message}`);
      failed.push(name);
      result = { id: name, title: `${name} (failed)`, method: `This section failed in this run: ${message}`, loadAverage, tables: [], charts: [], notes: [], data: { error: message } };
    }
    sections.push(result);
    for (const n of result.notes) ctx.progress(`${name}: ${n}`);
  }
  const run = {
    machine,
    command: `npm run bench${process.argv.length > 2 ? " -- " + process.argv.slice(2).join(" ") : ""}`,
    quick,
    revision: code,
    startedAt: new Date(started).toISOString(),
    durationSeconds: (Date.now() - started) / 1000,
  };
  const results = join(ROOT, "bench-results.json");
  // Written whole and renamed: an interrupted run never leaves half a file.
  writeFileSync(results + ".tmp", JSON.stringify({ run, sections: Object.fromEntries(sections.map((s) => [s.id, s])) }, null, 2) + "\n");
  renameSync(results + ".tmp", results);
  writeFileSync(join(ROOT, "docs", "performance.md"), performancePage(run, sections, findings(sections)));
  ctx.progress(`wrote bench-results.json, docs/performance.md and ${sections.reduce((n, s) => n + s.charts.length, 0)} charts in docs/img/`);
  if (failed.length > 0) {
    ctx.progress(`sections that failed: ${failed.join(", ")}; rerun them with --only, or the whole run`);
    process.exitCode = 1;
  }
}

main().then(
  () => process.exit(),
  (err: Error) => {
    process.stderr.write(`bench: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
