// A chaos run: the relay under --keeper on the kernel-exact emulator
// (two-record groups, cookies given at read as the kernel gives them), a
// real agent, and a stream of random blows while the load runs: the relay
// SIGKILLed, SIGTERMed or SIGSTOPped, the agent SIGKILLed or SIGSTOPped past
// its deadlines. At the end every group the emulator delivered must have had
// exactly one accepted answer. Not a test (it takes minutes); its figures go
// in the exactly-once issue's notes.
//
//   node build/scripts/chaos/chaos-run.js [--blows N] [--rate GROUPS_PER_S] [--seed S]
// CHAOS_DEBUG=1 copies the keeper's and relay's log lines to stderr.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { projectRoot } from "../vm/paths.js";

const { values } = parseArgs({ options: { blows: { type: "string" }, rate: { type: "string" }, seed: { type: "string" } } });
const BLOWS = Number(values.blows ?? 30);
const RATE = Number(values.rate ?? 2000);
let seed = Number(values.seed ?? Date.now() % 2 ** 31);
const firstSeed = seed;
/** A small deterministic generator, so a run can be repeated with its seed. */
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
}
const between = (lo: number, hi: number): number => Math.floor(lo + random() * (hi - lo));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), "iopf-chaos-"));
const config = join(dir, "relay.json");
writeFileSync(config, JSON.stringify({
  viommu: "virtio-iommu",
  devices: [{ devId: 1, endpointId: 1, deadlineMs: 300 }, { devId: 2, endpointId: 2, deadlineMs: 2000 }],
  limits: { maxHeld: 512 },
}));
const agentConfig = join(dir, "agent.json");
writeFileSync(agentConfig, JSON.stringify({ credits: 256, appSocket: "none", handlers: [{ handler: "policy", rules: [{ start: "0x0", end: "0x4000000000", perm: "rwx", answer: "success" }] }] }));
const socket = join(dir, "link.sock");

const emulator = await KernelEmulator.start({ mode: "kernel-exact" });
const keeper = spawn(process.execPath, [join(projectRoot, "build", "src", "cli", "iopf-relay.js"), "--keeper", "--emulator-fd", "3", "--config", config, "--socket-path", socket, "--log-format", "json"], {
  stdio: ["ignore", "ignore", "pipe", emulator.faultFd],
});
let relayPid = 0;
let relayReady = false;
/** Kills in a row of relays not yet ready: kept under the keeper's limit, past which it gives up by design. */
let unreadyKills = 0;
let lastError = "";
let keeperExited = false;
/** The blows are still coming: until then, the keeper must not exit. */
let running = true;
keeper.once("exit", (code, signal) => {
  keeperExited = true;
  if (running) {
    process.stderr.write(`chaos: the keeper exited during the run (${signal ?? `code ${code}`}): ${lastError || "no error logged"}\n`);
    process.exit(1);
  }
});
let sweeps = 0;
let swept = 0;
createInterface({ input: keeper.stderr! }).on("line", (line) => {
  if (process.env.CHAOS_DEBUG) process.stderr.write(line + "\n");
  let l: Record<string, unknown>;
  try {
    l = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return;
  }
  if (l.msg === "relay started") {
    relayPid = l.pid as number;
    relayReady = false;
  }
  if (l.msg === "relay ready") relayReady = true;
  if (l.level === "error") lastError = String(l.msg);
  if (typeof l.answered === "number" && String(l.msg).startsWith("answered SUCCESS to the groups a previous reader")) {
    sweeps++;
    swept += l.answered;
  }
});

let agent: ChildProcess | null = null;
const startAgent = (): void => {
  agent = spawn(process.execPath, [join(projectRoot, "dist", "iopf-agent.mjs"), "--connect", `unix:${socket}`, "--config", agentConfig], { stdio: "ignore" });
};
startAgent();

const blows: Record<string, number> = {};
const kinds = ["relay-sigkill", "relay-sigterm", "relay-sigstop", "agent-sigkill", "agent-sigstop"] as const;
const load = (async () => {
  let generated = 0;
  do generated += (await emulator.load({ devices: 2, devBase: 1, records: 2, rate: RATE, durationMs: 1000, maxOutstanding: 512, pasid: 1 })).generated;
  while (running);
  return generated;
})();

/**
 * Signals the running relay, after waiting for the keeper to start one (a
 * pid of 0 would signal this process's group); at most two relays in a
 * row are hit before they are ready (the keeper gives up on a relay that
 * keeps dying in its start-up, as it should). A killed or vanished
 * relay's pid is cleared; the keeper's next "relay started" line sets the
 * new one. Returns the pid signalled, 0 if that relay had exited by then.
 */
async function signalRelay(signal: NodeJS.Signals): Promise<number> {
  while (!relayPid || (!relayReady && unreadyKills >= 2)) await sleep(20);
  unreadyKills = relayReady ? 0 : unreadyKills + 1;
  const pid = relayPid;
  try {
    process.kill(pid, signal);
    return pid;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ESRCH") throw e;
    if (relayPid === pid) relayPid = 0;
    return 0;
  }
}

while (!relayPid) await sleep(50);
const startedAt = Date.now();
for (let i = 0; i < BLOWS; i++) {
  await sleep(between(200, 1500));
  const kind = kinds[between(0, kinds.length)]!;
  blows[kind] = (blows[kind] ?? 0) + 1;
  process.stderr.write(`chaos: ${i + 1}/${BLOWS} ${kind}\n`);
  switch (kind) {
    case "relay-sigkill":
    case "relay-sigterm":
      if (await signalRelay(kind === "relay-sigkill" ? "SIGKILL" : "SIGTERM")) relayPid = 0;
      break;
    case "relay-sigstop": {
      const pid = await signalRelay("SIGSTOP");
      if (!pid) break;
      await sleep(between(100, 1500));
      process.kill(pid, "SIGCONT");
      break;
    }
    case "agent-sigkill":
      agent!.kill("SIGKILL");
      await sleep(between(0, 1000));
      startAgent();
      break;
    case "agent-sigstop":
      agent!.kill("SIGSTOP");
      await sleep(between(100, 3000));
      agent!.kill("SIGCONT");
      break;
  }
}
running = false;
process.stderr.write("chaos: the last blow; waiting for the load to end and every group to be answered\n");
const generated = await load;
let stats = await emulator.stats();
const settleBy = Date.now() + 60_000;
while ((stats.outstanding > 0 || stats.queued > 0) && Date.now() < settleBy) {
  await sleep(200);
  stats = await emulator.stats();
}
keeper.kill("SIGTERM");
if (!keeperExited) await new Promise((r) => keeper.once("exit", r));
agent!.kill("SIGTERM");
const final = await emulator.quit();
await emulator.close();
rmSync(dir, { recursive: true, force: true });

const violations: Record<string, number> = {};
for (const v of final.violations) violations[v.kind] = (violations[v.kind] ?? 0) + 1;
const exactlyOnce = final.outstanding === 0 && final.answeredSuccess + final.answeredInvalid === final.deliveredGroups && !violations["unanswered-group"] && !violations["partial-answer"];
process.stdout.write(JSON.stringify({
  seed: firstSeed, seconds: Math.round((Date.now() - startedAt) / 1000), blows, generated,
  delivered: final.deliveredGroups, deliveredRecords: final.deliveredRecords, success: final.answeredSuccess, invalid: final.answeredInvalid,
  outstanding: final.outstanding, sweeps, swept, refusedAnswers: violations, exactlyOnce,
}, null, 2) + "\n");
process.exit(exactlyOnce ? 0 : 1);
