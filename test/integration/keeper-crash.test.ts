// SIGKILL of the relay while groups are in flight: the keeper restarts it
// with the same fault fd, the journal answers what the dead relay had read,
// and every group the emulator delivered is answered exactly once.
import test from "ava";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";
import { until } from "../support/memory-stream.js";

const relay = fileURLToPath(new URL("../../src/cli/iopf-relay.js", import.meta.url));

test("the relay SIGKILLed mid-flight: restarted by the keeper, every group answered once", async (t) => {
  t.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), "iopf-keeper-"));
  const config = join(dir, "relay.json");
  writeFileSync(config, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 1 }, { devId: 2, endpointId: 2 }] }));
  const socket = join(dir, "link.sock");
  const emulator = await KernelEmulator.start();
  const keeper = spawn(process.execPath, [relay, "--keeper", "--fault-fd", "3", "--config", config, "--socket-path", socket, "--journal", join(dir, "journal"), "--log-format", "json"], {
    stdio: ["ignore", "pipe", "pipe", emulator.faultFd],
  });
  const logs: Record<string, unknown>[] = [];
  createInterface({ input: keeper.stderr! }).on("line", (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      t.log(line);
    }
  });
  const started = () => logs.filter((l) => l.msg === "relay started");
  await until(() => started().length === 1, 10_000, "the keeper's first relay");
  const agent = reconnectingAgent(socket, 20);
  await until(() => agent.sessions >= 1, 10_000, "an agent session");

  const load = emulator.load({ devices: 2, devBase: 1, records: 1, rate: 1000, durationMs: 3000, maxOutstanding: 256, pasid: 1 });
  await new Promise((r) => setTimeout(r, 1000));
  const victim = started()[0]!.pid as number;
  process.kill(victim, "SIGKILL");
  await until(() => started().length === 2, 10_000, "the restarted relay");
  await load;
  await until(() => agent.sessions >= 2, 10_000, "a session with the restarted relay");
  let stats = await emulator.stats();
  try {
    await until(() => {
      void emulator.stats().then((s) => (stats = s));
      return stats.outstanding === 0;
    }, 15_000, "every delivered group answered");
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

  // The first replay is the first relay's (an empty journal); the restarted relay's comes second.
  const replay = logs.filter((l) => l.msg === "journal replayed")[1] as { pending: number; reanswered: number; refusedAsAlreadyAnswered: number } | undefined;
  t.truthy(replay, "the restarted relay replayed the journal");
  t.log(`delivered ${final.deliveredGroups}, success ${final.answeredSuccess}, invalid ${final.answeredInvalid}, journal: ${JSON.stringify(replay)}`);
  t.is(final.outstanding, 0);
  t.is(final.answeredSuccess + final.answeredInvalid, final.deliveredGroups, "one accepted answer per delivered group");
  // A second answer for a cookie is possible only for a batch the dead relay was
  // writing when it died, which the new one answers again (the kernel's EINVAL).
  const repeats = final.violations.filter((v) => v.kind === "repeated-cookie").length;
  t.true(repeats <= (replay?.refusedAsAlreadyAnswered ?? 0) + (replay?.reanswered ?? 0));
  t.deepEqual(final.violations.filter((v) => v.kind !== "repeated-cookie"), []);
});
