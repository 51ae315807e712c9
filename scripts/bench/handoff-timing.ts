#!/usr/bin/env node
// Handoff timings on the kernel-exact emulator (docs/handoff.md), for the
// issue's notes; not a section of `npm run bench`, whose page compares the
// relay path with a C baseline. A relay with --handoff and the shipped agent
// (answering at once) as separate processes, as in production; this process
// plays the VMM with the synchronous client iopfctl uses.
//
//   node build/scripts/bench/handoff-timing.js [--rounds N] [--cycles N] [--max-held N]
//
// --max-held sets the relay's limits.maxHeld, which bounds the sweep a
// handed-over queue gets before its first read (cookies 1..maxHeld plus one
// read), the largest part of the time to the first answer.
//
// Measured, each against a baseline from the same run:
//   first answer   a group waits in a queue not handed over yet; from the
//                  attach sent to the group answered (the relay sweeps the
//                  queue, reads it, the agent answers, the relay writes),
//                  and of that the sweep (until the relay logs it);
//                  against a group raised on a queue already served.
//   cycle          attach then detach of a whole queue with nothing in it,
//                  each request timed from send to reply.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { handoffRequest } from "../../src/ctl/handoff-client.js";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { Child } from "./child.js";
import { agentConfig } from "./configs.js";
import { AGENT_BUNDLE, RELAY_CLI } from "./paths.js";
import { quantile } from "./statistics.js";

const START_TIMEOUT_MS = 20_000;
const DEVICES = [{ devId: 1, endpointId: 0x11 }];

const { values } = parseArgs({ options: { rounds: { type: "string" }, cycles: { type: "string" }, "max-held": { type: "string" } } });
const rounds = Number(values.rounds ?? 20);
const cycles = Number(values.cycles ?? 100);
const limits = values["max-held"] === undefined ? {} : { limits: { maxHeld: Number(values["max-held"]) } };

function request(path: string, body: object, fds: number[] = []): void {
  const reply = handoffRequest(path, body, fds);
  if (!reply.ok) throw new Error(`the relay refused ${JSON.stringify(body).slice(0, 120)}: ${reply.error}`);
}

/** Resolves once the emulator has `n` answers SUCCESS; polls its stats, so the time is exact to one round trip to it. */
async function answered(emu: KernelEmulator, n: number): Promise<void> {
  while ((await emu.stats()).answeredSuccess < n);
}

function summary(name: string, ms: number[]): string {
  const f = (q: number): string => quantile(ms, q).toFixed(2);
  return `${name.padEnd(34)} median ${f(0.5).padStart(8)} ms   p90 ${f(0.9).padStart(8)} ms   max ${f(1).padStart(8)} ms   (n=${ms.length})`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "iopf-handoff-timing-"));
  const handoff = join(dir, "handoff.sock");
  writeFileSync(join(dir, "relay.json"), JSON.stringify({ viommu: "virtio-iommu", devices: [], ...limits }));
  writeFileSync(join(dir, "agent.json"), JSON.stringify(agentConfig(256)));
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  const relay = new Child("iopf-relay", process.execPath, [RELAY_CLI, "--handoff", `unix:${handoff}`, "--config", join(dir, "relay.json"),
    "--socket-path", join(dir, "link.sock"), "--log-format", "json", "--log-level", "info"]);
  let agent: Child | null = null;
  try {
    await relay.waitForLine(/relay ready/, START_TIMEOUT_MS);
    let sweptAt = 0;
    let sweepBound = "";
    relay.follow((line) => {
      const m = /"msg":"answered SUCCESS to the groups a previous reader[^"]*",.*"cookies":"([^"]+)"/.exec(line);
      if (m) {
        sweptAt = performance.now();
        sweepBound = m[1]!;
      }
    });
    agent = new Child("iopf-agent", process.execPath, [AGENT_BUNDLE, "--connect", `unix:${join(dir, "link.sock")}`, "--config", join(dir, "agent.json"), "--log-level", "info"]);
    await agent.waitForLine(/"session up"/, START_TIMEOUT_MS);
    let success = 0;
    let faultId = 1;
    const first: number[] = [];
    const sweep: number[] = [];
    const steady: number[] = [];
    for (let r = 0; r < rounds; r++) {
      await emu.raise({ dev: 1, count: 1, addr: r * 0x10000 });
      const t0 = performance.now();
      request(handoff, { v: 1, op: "attach", queues: [{ fd: 0, faultId, devices: DEVICES, emulator: true }] }, [emu.faultFd]);
      await answered(emu, ++success);
      first.push(performance.now() - t0);
      sweep.push(sweptAt - t0);
      const t1 = performance.now();
      await emu.raise({ dev: 1, count: 1, addr: r * 0x10000 + 0x1000 });
      await answered(emu, ++success);
      steady.push(performance.now() - t1);
      request(handoff, { v: 1, op: "detach", faultId: faultId++ });
    }
    const attach: number[] = [];
    const detach: number[] = [];
    const cycle: number[] = [];
    for (let c = 0; c < cycles; c++) {
      const t0 = performance.now();
      request(handoff, { v: 1, op: "attach", queues: [{ fd: 0, faultId, devices: DEVICES, emulator: true }] }, [emu.faultFd]);
      const t1 = performance.now();
      request(handoff, { v: 1, op: "detach", faultId: faultId++ });
      const t2 = performance.now();
      attach.push(t1 - t0);
      detach.push(t2 - t1);
      cycle.push(t2 - t0);
    }
    const s = await emu.stats();
    const lines = [
      `handoff timings on the kernel-exact emulator (${rounds} rounds, ${cycles} cycles, sweep of cookies ${sweepBound}; violations: ${s.violations.filter((v) => v.kind !== "unknown-cookie").length})`,
      summary("attach sent -> first answer", first),
      summary("  of which: attach sent -> swept", sweep),
      summary("baseline: raise -> answer (served)", steady),
      `ratio of medians: ${(quantile(first, 0.5) / quantile(steady, 0.5)).toFixed(1)}x`,
      summary("attach (send -> reply)", attach),
      summary("detach of the queue (send -> reply)", detach),
      summary("attach + detach cycle", cycle),
    ];
    process.stdout.write(lines.join("\n") + "\n");
  } finally {
    await agent?.stop();
    await relay.stop();
    await emu.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  process.stderr.write(`handoff-timing: ${err.message}\n`);
  process.exit(1);
});
