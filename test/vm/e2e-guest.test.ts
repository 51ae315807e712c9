// End to end, the relay on the host and the agent in a guest: the real relay
// (in this process, on a kernel emulator) reaches the agent through QEMU's
// virtio-serial port; the guest also runs a C test program whose pages the
// agent faults in. One boot runs every scenario of e2e/guest-scenarios.ts,
// driven from here over a second port (e2e/control-channel.ts).
// IOPF_E2E_SCENARIO=name runs one; the console log path is printed.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { compileC } from "../../src/fault/emulator/compile-c.js";
import { GUEST_PROJECT_DIR } from "../../scripts/vm/initramfs.js";
import { projectRoot } from "../../scripts/vm/paths.js";
import { runVm } from "../../scripts/vm/qemu.js";
import { vmTest } from "../../scripts/vm/vm-test.js";
import { consoleTail } from "./e2e/console-tail.js";
import { CONTROL_PORT_NAME, ControlClient, GUEST_READY_LINE } from "./e2e/control-channel.js";
import type { GuestCommands } from "./e2e/guest-commands.js";
import { GUEST_AGENT_EXE, GUEST_APP } from "./e2e/guest-processes.js";
import {
  guestScenarios, IMPATIENT_DEADLINE_MS, IMPATIENT_DEV, PATIENT_DEADLINE_MS, PATIENT_DEV,
  PROCMEM_PASID, SLOW_APP_MS, SLOW_APP_PASID, type GuestRunContext,
} from "./e2e/guest-scenarios.js";
import { HostRelay } from "./e2e/host-relay.js";
import { describeResult, runScenarios, selectedScenarios } from "./e2e/scenario-runner.js";
import { SocketProxy } from "./e2e/socket-proxy.js";

const LINK_PORT_NAME = "org.iopf-relay.0";

/** npm run build:agent-exe's second step: dist/iopf-agent, from its cache when the agent is unchanged. */
async function buildAgentExe(): Promise<string> {
  const { stdout } = await promisify(execFile)(process.execPath, [join(projectRoot, "scripts", "build-agent-exe.mjs")], { encoding: "utf8" });
  return stdout.trim();
}

const RELAY_CONFIG = {
  viommu: "virtio-iommu",
  devices: [
    { devId: PATIENT_DEV, endpointId: 8, name: "patient", deadlineMs: PATIENT_DEADLINE_MS },
    { devId: IMPATIENT_DEV, endpointId: 9, name: "impatient", deadlineMs: IMPATIENT_DEADLINE_MS },
  ],
  // Longer than an agent restart under TCG (node starts in about a second there),
  // so that a lost session's groups wait for the next agent instead of being answered INVALID.
  limits: { sessionGraceMs: 10_000 },
};

vmTest("end to end: host relay, guest agent and a guest program, one scenario after another", async (t) => {
  const scenarios = selectedScenarios(guestScenarios);
  if (scenarios.length === 0) {
    t.log(`IOPF_E2E_SCENARIO=${process.env.IOPF_E2E_SCENARIO} names none of this test's scenarios: ${guestScenarios.map((s) => s.name).join(", ")}`);
    t.pass();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "iopf-e2e-guest-"));
  const consoleLog = join(tmpdir(), "iopf-e2e-guest.console.log");
  const relayLog = join(tmpdir(), "iopf-e2e-guest.relay.log");
  const logs = (): string => `\n${consoleTail("guest console", consoleLog)}\n${consoleTail("host relay log", relayLog, 30)}`;
  const linkSocket = join(dir, "link.sock");
  const controlSocket = join(dir, "control.sock");
  const app = await compileC(join(projectRoot, "test", "vm", "e2e", "guest-app.c"));
  // The agent-exe scenario runs the agent as a single executable, built (or taken from the cache) here.
  const agentExe = scenarios.some((s) => s.name === "agent-exe")
    ? [{ path: GUEST_AGENT_EXE, data: readFileSync(await buildAgentExe()), mode: 0o755 }]
    : [];
  const proxy = await SocketProxy.listen(join(dir, "proxy.sock"), linkSocket);
  const relay = await HostRelay.start({ connect: `unix:${join(dir, "proxy.sock")}`, config: RELAY_CONFIG, logPath: relayLog });
  const stopVm = new AbortController();
  // Whatever failed, nothing outlives the test: the VM, the relay and its emulator, the proxy.
  t.teardown(async () => {
    stopVm.abort();
    await relay.stop().catch(() => undefined);
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  });
  t.log(`console: ${consoleLog}; relay log: ${relayLog}`);

  let guestReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => { guestReady = resolve; });
  const started = Date.now();
  const vm = runVm({
    script: `cd ${GUEST_PROJECT_DIR} && node build/test/vm/e2e/guest-driver.js`,
    files: [{ path: GUEST_APP, data: readFileSync(app), mode: 0o755 }, ...agentExe],
    ports: [
      { name: LINK_PORT_NAME, socketPath: linkSocket, server: true },
      { name: CONTROL_PORT_NAME, socketPath: controlSocket, server: true },
    ],
    consoleLog,
    onConsoleLine: (line) => { if (line === GUEST_READY_LINE) guestReady(); },
    signal: stopVm.signal,
    timeoutMs: 4 * 60_000,
  });
  const vmEnded = vm.then((r) => Promise.reject(new Error(`the VM ended (exit ${r.exitCode}, timed out: ${r.timedOut}) while the test still needed it`)));

  let ctx: GuestRunContext;
  try {
    const guest = await ControlClient.connect<GuestCommands>(controlSocket);
    t.teardown(() => guest.close());
    await Promise.race([ready, vmEnded]);
    t.log(`guest driver ready ${Date.now() - started} ms after QEMU started`);
    const info = await guest.call("app.start", {});
    ctx = {
      relay, guest, proxy, app: info,
      async startAgent(exe = false) {
        const started = await guest.call("agent.start", { config: { logLevel: "info" }, exe });
        await guest.call("register", { mode: "procmem", pasid: PROCMEM_PASID, pid: info.pid });
        await guest.call("register", { mode: "app", pasid: SLOW_APP_PASID, answer: "success", delayMs: SLOW_APP_MS });
        await relay.waitSession(20_000);
        return started;
      },
    };
    await ctx.startAgent();
  } catch (err) {
    throw new Error(`setting up the guest failed: ${(err as Error).message}${logs()}`, { cause: err });
  }
  const results = await runScenarios(scenarios, ctx, (r) => {
    t.log(describeResult(r));
    process.stdout.write(`e2e-guest: ${describeResult(r)}\n`);
  });

  const final = await relay.stop();
  // The guest driver exits when its control port's host end goes away.
  ctx.guest.close();
  const result = await vm;
  t.log(`VM part: ${Date.now() - started} ms (QEMU start to /init ${result.bootToInitMs} ms)`);

  const failed = results.filter((r) => !r.ok);
  const why = failed.length > 0 || final.violationCount > 0 || result.exitCode !== 0 ? logs() : "";
  t.deepEqual(failed.map((r) => r.name), [], `scenarios failed:\n${failed.map(describeResult).join("\n")}${why}`);
  t.is(final.violationCount, 0, `the emulator's final account has violations: ${JSON.stringify(final.violations)}${why}`);
  t.is(final.outstanding, 0, `groups left unanswered at the end${why}`);
  t.is(result.exitCode, 0, `the guest driver exited ${result.exitCode}, expected 0${why}`);
});
