// SIGKILL the relay at random points under load, again and again, each time
// restarting it with the same fault fd (this test plays the keeper): every
// other kill during start-up and its sweep, the others once the agent's
// session is up, mid-read, mid-answer. Afterwards every group the
// emulator delivered is answered exactly once. Two-record groups on the
// kernel-exact emulator (cookies given at read, as the kernel does).
// crash-windows.test.ts kills at chosen points; this one at random ones.
// IOPF_CRASH_RUNS sets the number of kills (20 by default).
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { sweepBound } from "../../src/kernel/fault-pump.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";
import { until } from "../support/memory-stream.js";

const relayCli = fileURLToPath(new URL("../../src/cli/iopf-relay.js", import.meta.url));
const KILLS = Number(process.env.IOPF_CRASH_RUNS ?? 20);
/** A relay lives this long at most before the kill: node's start-up alone takes a few hundred ms. */
const MAX_LIFE_MS = 900;

const MAX_HELD = 256;

test(`the relay SIGKILLed ${KILLS} times at random points: every group answered once`, async (t) => {
  t.timeout(60_000 + KILLS * 3_000);
  const dir = mkdtempSync(join(tmpdir(), "iopf-crash-"));
  const config = join(dir, "relay.json");
  writeFileSync(config, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 1 }, { devId: 2, endpointId: 2 }], limits: { maxHeld: MAX_HELD } }));
  const socket = join(dir, "link.sock");
  const emulator = await KernelEmulator.start({ mode: "kernel-exact" });
  // Whatever fails, the emulator and the last relay must end: left running they keep the test worker, and the whole run, alive.
  let last: ChildProcess | null = null;
  t.teardown(async () => {
    last?.kill("SIGKILL");
    await emulator.close();
  });
  /** What each relay's sweep found: groups its predecessor left. */
  const swept: number[] = [];
  /** Warnings and errors of every relay, shown if the test fails. */
  const complaints: string[] = [];
  const startRelay = (): ChildProcess => {
    const child = spawn(process.execPath, [relayCli, "--emulator-fd", "3", "--config", config, "--socket-path", socket, "--log-format", "json"], {
      stdio: ["ignore", "ignore", "pipe", emulator.faultFd],
    });
    createInterface({ input: child.stderr! }).on("line", (line) => {
      try {
        const l = JSON.parse(line) as Record<string, unknown>;
        if (typeof l.answered === "number" && String(l.msg).startsWith("answered SUCCESS to the groups a previous reader")) swept.push(l.answered);
        if (l.level === "warn" || l.level === "error") complaints.push(line);
      } catch {
        t.log(line);
      }
    });
    return child;
  };
  const exited = (c: ChildProcess): Promise<void> => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once("exit", () => r())));

  const agent = reconnectingAgent(socket, 10);
  // Load in slices until the last kill: how long the kills take depends on the machine.
  let killing = true;
  const load = (async () => {
    do await emulator.load({ devices: 2, devBase: 1, records: 2, rate: 2000, durationMs: 1000, maxOutstanding: 256, pasid: 1 });
    while (killing);
  })();
  const lives: string[] = [];
  for (let i = 0; i < KILLS; i++) {
    const child = startRelay();
    // Every other relay dies at a random point of its start (node's start-up, the sweep, the handshake); the
    // others once their session is up, with groups being read and answered.
    const sessions = agent.sessions;
    const inSession = i % 2 === 1;
    if (inSession) {
      await until(() => agent.sessions > sessions, 20_000, `relay ${i + 1}'s session`);
    }
    const life = Math.floor(Math.random() * (inSession ? MAX_LIFE_MS / 3 : MAX_LIFE_MS));
    lives.push(`${inSession ? "s+" : ""}${life}`);
    await new Promise((r) => setTimeout(r, life));
    child.kill("SIGKILL");
    await exited(child);
  }
  killing = false;
  const relay = (last = startRelay());
  await load;
  let stats = await emulator.stats();
  try {
    await until(() => {
      void emulator.stats().then((s) => (stats = s));
      return stats.outstanding === 0;
    }, 20_000, "every delivered group answered");
  } catch (err) {
    t.log(`still outstanding: ${stats.outstanding}; the last relay ${relay.exitCode === null && relay.signalCode === null ? "runs" : `exited (${relay.exitCode ?? relay.signalCode})`}; ` +
      `kills after ${lives.join(", ")} ms (s+: after the session came up); swept ${JSON.stringify(swept)}; warnings and errors:\n${complaints.slice(-20).join("\n")}`);
    throw err;
  } finally {
    relay.kill("SIGTERM");
    await exited(relay);
    agent.stop();
  }
  const final = await emulator.quit();

  t.log(`kills after ${lives.join(", ")} ms; delivered ${final.deliveredGroups}, success ${final.answeredSuccess}, invalid ${final.answeredInvalid}; ` +
    `${swept.length} sweeps answered ${swept.reduce((n, k) => n + k, 0)} groups left by a killed relay`);
  t.is(final.outstanding, 0);
  t.is(final.answeredSuccess + final.answeredInvalid, final.deliveredGroups, "one accepted answer per delivered group");
  t.true(final.maxCookie <= sweepBound(MAX_HELD), `cookie ${final.maxCookie} was given: beyond what a sweep covers`);
  // The only refusals: sweep answers to cookies that were not outstanding.
  t.deepEqual(final.violations.filter((v) => v.kind !== "unknown-cookie" && v.kind !== "repeated-cookie"), []);
});
