// The keeper: SIGKILL of the relay while groups are in flight, and a relay
// that exits 0 by itself, are both restarted with the same fault fd; the
// restarted relay answers what the dead one held (its sweep), and every
// group the emulator delivered is answered exactly once. A relay that cannot
// start is not restarted for ever: the keeper answers what it holds and
// exits non-zero with the reason.
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { createServer } from "node:net";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";
import { until } from "../support/memory-stream.js";

const relay = fileURLToPath(new URL("../../src/cli/iopf-relay.js", import.meta.url));

/** A keeper over a kernel-exact emulator, its log lines parsed. */
async function startKeeper(t: { log: (...v: unknown[]) => void }, extra: string[] = [], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), "iopf-keeper-"));
  const config = join(dir, "relay.json");
  writeFileSync(config, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 1 }, { devId: 2, endpointId: 2 }], limits: { maxHeld: 512 } }));
  const socket = join(dir, "link.sock");
  const emulator = await KernelEmulator.start({ mode: "kernel-exact" });
  const keeper = spawn(process.execPath, [relay, "--keeper", "--emulator-fd", "3", "--config", config, "--socket-path", socket, "--log-format", "json", ...extra], {
    stdio: ["ignore", "pipe", "pipe", emulator.faultFd],
    env: { ...process.env, ...env },
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: keeper.stderr! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      t.log(line);
    }
  });
  const exited = new Promise<number | null>((resolve) => keeper.once("exit", (code) => resolve(code)));
  return { emulator, keeper, logs, socket, exited, started: () => logs.filter((l) => l.msg === "relay started") };
}

test("the relay SIGKILLed mid-flight: restarted by the keeper, every group answered once", async (t) => {
  t.timeout(60_000);
  const { emulator, keeper, logs, socket, started } = await startKeeper(t);
  await until(() => started().length === 1, 10_000, "the keeper's first relay");
  const agent = reconnectingAgent(socket, 20);
  await until(() => agent.sessions >= 1, 10_000, "an agent session");

  const load = emulator.load({ devices: 2, devBase: 1, records: 1, rate: 1000, durationMs: 3000, maxOutstanding: 256, pasid: 1 });
  await until(async () => (await emulator.stats()).deliveredGroups >= 500, 10_000, "groups in flight");
  process.kill(started()[0]!.pid as number, "SIGKILL");
  await until(() => started().length === 2, 10_000, "the restarted relay");
  await load;
  await until(() => agent.sessions >= 2, 10_000, "a session with the restarted relay");
  let stats = await emulator.stats();
  try {
    await until(async () => (stats = await emulator.stats()).outstanding === 0 && stats.queued === 0, 15_000, "every delivered group answered");
  } catch (err) {
    t.log(JSON.stringify(stats).slice(0, 1500));
    for (const l of logs) if (l.level !== "debug") t.log(JSON.stringify(l).slice(0, 400));
    keeper.kill("SIGKILL");
    throw err;
  }
  keeper.kill("SIGTERM");
  await new Promise((r) => keeper.once("exit", r));
  agent.stop();
  const final = await emulator.quit();
  await emulator.close();

  const sweeps = logs.filter((l) => String(l.msg).startsWith("answered SUCCESS to the groups a previous reader"));
  t.log(`delivered ${final.deliveredGroups}, success ${final.answeredSuccess}, invalid ${final.answeredInvalid}; sweeps ${JSON.stringify(sweeps.map((l) => l.answered))}`);
  t.is(sweeps.length, 2, "each relay swept before its first read");
  t.is(final.outstanding, 0);
  t.is(final.answeredSuccess + final.answeredInvalid, final.deliveredGroups, "one accepted answer per delivered group");
  t.deepEqual(final.violations.filter((v) => v.kind !== "unknown-cookie" && v.kind !== "repeated-cookie"), [], "the only refusals are sweep answers to cookies not outstanding");
});

test("a relay that exits 0 on its own (SIGTERM to the child alone) is restarted: the keeper does not stop", async (t) => {
  t.timeout(60_000);
  const { emulator, keeper, started, exited, logs } = await startKeeper(t, ["--control", "tcp:127.0.0.1:0"]);
  const controls = () => logs.filter((l) => l.msg === "control server listening");
  await until(() => controls().length === 1, 10_000, "the keeper's first relay, ready");
  process.kill(started()[0]!.pid as number, "SIGTERM");
  await until(() => started().length === 2, 10_000, "a second relay");
  t.is(keeper.exitCode, null, "the keeper still runs");
  // The restarted relay counts the restart in its metrics (its own counters start again).
  await until(() => controls().length === 2, 10_000, "the second relay's control server");
  const on = String(controls()[1]!.on).slice(4);
  const metrics = await (await fetch(`http://${on}/metrics`)).text();
  t.regex(metrics, /^iopf_relay_keeper_restarts_total 1$/m);
  keeper.kill("SIGTERM");
  t.is(await exited, 0);
  await emulator.close();
});

test("a relay that cannot start is not restarted for ever: the keeper answers what it holds and exits 1 with the reason", async (t) => {
  t.timeout(60_000);
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
  const port = (busy.address() as { port: number }).port;
  const { emulator, logs, started, exited } = await startKeeper(t, ["--control", `tcp:127.0.0.1:${port}`]);
  t.is(await exited, 1);
  busy.close();
  await emulator.close();
  t.is(started().length, 5, "five tries, then it gave up");
  const gaveUp = logs.find((l) => String(l.msg).includes("gives up"));
  t.truthy(gaveUp, "it says so");
  t.regex(String(gaveUp?.lastLine), /127\.0\.0\.1/, "with the relay's own last words");
  t.true(logs.some((l) => l.msg === "answered SUCCESS to the groups the relay left"), "and answered what it held first");
});

test("a relay that dies just after it said it was ready counts as started: the keeper restarts it past the failed-start limit", async (t) => {
  t.timeout(120_000);
  // Every relay of this keeper dies (SIGKILL) as soon as its ready message has left it.
  const { emulator, keeper, started, exited, logs } = await startKeeper(t, [], { IOPF_FAILPOINT: "relay-after-ready" });
  try {
    await until(() => started().length >= 7 || keeper.exitCode !== null, 90_000, "seven relays started, or the keeper gone");
  } finally {
    keeper.kill("SIGTERM");
  }
  const gaveUp = logs.find((l) => String(l.msg).includes("gives up"));
  t.is(gaveUp, undefined, `the keeper did not give up: ${JSON.stringify(gaveUp)}`);
  t.true(started().length >= 7);
  t.is(await exited, 0);
  await emulator.close();
});
