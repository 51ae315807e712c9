// The relay killed on purpose inside each window where a crash could lose a
// group (failpoints, src/kernel/failpoint.ts), then started again with the
// same fault fd, as the keeper does: every group the emulator delivered is
// answered exactly once. The emulator runs kernel-exact (cookies given when a
// group is read, EINVAL for a cookie not outstanding), so the restarted
// relay's sweep meets exactly what the kernel would show it.
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { sweepBound } from "../../src/kernel/fault-pump.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";
import { until } from "../support/memory-stream.js";

const relayCli = fileURLToPath(new URL("../../src/cli/iopf-relay.js", import.meta.url));
const MAX_HELD = 256;

/** Each relay life in turn: the failpoint it dies at, or none for the last, which runs until every group is answered. */
const cases: [string, (string | null)[]][] = [
  ["between a read and its hand-over to the main thread", ["worker-after-read:40", null]],
  ["with answers decided and not written", ["writer-before-write:30", null]],
  ["after a write, before the ledger hears of it", ["writer-after-write:30", null]],
  ["inside the restarted relay's own sweep", ["worker-after-read:40", "worker-mid-sweep", null]],
];

for (const [name, lives] of cases) {
  test.serial(`killed ${name}: the next relay answers every group once`, async (t) => {
    t.timeout(60_000);
    const dir = mkdtempSync(join(tmpdir(), "iopf-window-"));
    const config = join(dir, "relay.json");
    writeFileSync(config, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 1 }, { devId: 2, endpointId: 2 }], limits: { maxHeld: MAX_HELD } }));
    const socket = join(dir, "link.sock");
    const emulator = await KernelEmulator.start({ mode: "kernel-exact" });
    let relay: ChildProcess | null = null;
    const agent = reconnectingAgent(socket, 5);
    t.teardown(async () => {
      agent.stop();
      relay?.kill("SIGKILL");
      await emulator.close();
    });
    const start = (failpoint: string | null): ChildProcess => spawn(process.execPath,
      [relayCli, "--emulator-fd", "3", "--config", config, "--socket-path", socket, "--log-format", "json", "--log-level", "warn"],
      { stdio: ["ignore", "ignore", "inherit", emulator.faultFd], env: { ...process.env, IOPF_FAILPOINT: failpoint ?? "" } });
    const load = emulator.load({ devices: 2, devBase: 1, records: 2, rate: 4000, durationMs: 3000, maxOutstanding: 4096, pasid: 1 });
    for (const failpoint of lives) {
      relay = start(failpoint);
      if (failpoint === null) break;
      const signal = await new Promise<string | null>((resolve) => relay!.once("exit", (_code, sig) => resolve(sig)));
      t.is(signal, "SIGKILL", `the relay died at ${failpoint}`);
    }
    const { generated } = await load;
    let stats = await emulator.stats();
    await until(async () => {
      stats = await emulator.stats();
      return stats.queued === 0 && stats.outstanding === 0;
    }, 20_000, "every group read and answered").catch((err: Error) => {
      t.log(`queued ${stats.queued}, outstanding ${stats.outstanding} of ${stats.deliveredGroups}`);
      throw err;
    });
    relay!.kill("SIGTERM");
    await new Promise((resolve) => relay!.once("exit", resolve));
    const final = await emulator.quit();
    t.is(final.deliveredGroups, generated);
    t.is(final.answeredSuccess + final.answeredInvalid, generated, "one accepted answer per group");
    t.true(final.maxCookie <= sweepBound(MAX_HELD), `cookie ${final.maxCookie} was given: beyond what a sweep covers`);
    // The only refusals: sweep answers to cookies that were not outstanding (never given, or already answered).
    t.deepEqual(final.violations.filter((v) => v.kind !== "unknown-cookie" && v.kind !== "repeated-cookie"), []);
  });
}
