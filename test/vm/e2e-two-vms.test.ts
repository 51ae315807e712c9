// End to end with nothing emulated: VM-A runs the iopf-relay command on its
// real kernel's fault queue (IOMMUFD_TEST mock devices), VM-B runs the agent,
// and their virtio-serial ports are wired port to port through one Unix
// socket (VM-A's QEMU listens, VM-B's connects; no host process between).
// VM-A's driver runs the scenarios of e2e/two-vm-scenarios.ts and prints one
// result line each; VM-B serves until VM-A is done. VM-A also gets the
// handoff's reference C client, which its VMM stand-in runs.
// IOPF_E2E_SCENARIO=name runs one; the console log paths are printed.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildHandoffClient } from "../../scripts/handoff/build-client.js";
import { GUEST_PROJECT_DIR } from "../../scripts/vm/initramfs.js";
import { runVm, wiredPorts } from "../../scripts/vm/qemu.js";
import { vmTest } from "../../scripts/vm/vm-test.js";
import { consoleTail } from "./e2e/console-tail.js";
import { describeResult, PLAN_PREFIX, RESULT_PREFIX, selectedScenarios, type ScenarioResult } from "./e2e/scenario-runner.js";
import { twoVmScenarios } from "./e2e/two-vm-scenarios.js";
import { GUEST_HANDOFF_CLIENT } from "./e2e/vmm-commands.js";

const PORT_NAME = "org.iopf-relay.0";

vmTest("end to end: relay in VM-A on the real kernel, agent in VM-B, ports wired", async (t) => {
  const names = selectedScenarios(twoVmScenarios).map((s) => s.name);
  if (names.length === 0) {
    t.log(`IOPF_E2E_SCENARIO=${process.env.IOPF_E2E_SCENARIO} names none of this test's scenarios: ${twoVmScenarios.map((s) => s.name).join(", ")}`);
    t.pass();
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "iopf-e2e-two-vms-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const consoleA = join(tmpdir(), "iopf-e2e-vm-a.console.log");
  const consoleB = join(tmpdir(), "iopf-e2e-vm-b.console.log");
  t.log(`consoles: VM-A ${consoleA}, VM-B ${consoleB}`);
  const [portA, portB] = wiredPorts(PORT_NAME, join(dir, "wire.sock"));
  const handoffClient = readFileSync(await buildHandoffClient());

  let plan: string[] | null = null;
  const results: ScenarioResult[] = [];
  const onLineA = (line: string): void => {
    if (line.startsWith(PLAN_PREFIX)) plan = JSON.parse(line.slice(PLAN_PREFIX.length)) as string[];
    if (!line.startsWith(RESULT_PREFIX)) return;
    const r = JSON.parse(line.slice(RESULT_PREFIX.length)) as ScenarioResult;
    results.push(r);
    t.log(describeResult(r));
    process.stdout.write(`e2e-two-vms: ${describeResult(r)}\n`);
  };

  const started = Date.now();
  const stopA = new AbortController();
  const stopB = new AbortController();
  // A test that fails or times out leaves no QEMU behind.
  t.teardown(() => {
    stopA.abort();
    stopB.abort();
  });
  // VM-A first: its QEMU creates the socket VM-B's QEMU connects to (VM-B retries until it is there).
  const vmA = runVm({
    script: `cd ${GUEST_PROJECT_DIR} && IOPF_E2E_SCENARIO=${names.join(",")} node build/test/vm/e2e/vm-a-driver.js ${PORT_NAME}`,
    files: [{ path: GUEST_HANDOFF_CLIENT, data: handoffClient, mode: 0o755 }],
    ports: [portA], consoleLog: consoleA, onConsoleLine: onLineA, signal: stopA.signal, timeoutMs: 6 * 60_000,
  });
  const vmB = runVm({
    script: `cd ${GUEST_PROJECT_DIR} && node build/test/vm/e2e/vm-b-driver.js`,
    ports: [portB], consoleLog: consoleB, signal: stopB.signal, timeoutMs: 7 * 60_000,
  });
  const a = await vmA.finally(() => stopB.abort());
  const b = await vmB;
  t.log(`VM part: ${Date.now() - started} ms (VM-A ${a.durationMs} ms, QEMU start to /init ${a.bootToInitMs} ms)`);

  const reported = results.map((r) => r.name);
  const missing = (plan ?? names).filter((n) => !reported.includes(n));
  const failed = results.filter((r) => !r.ok);
  const why = missing.length > 0 || failed.length > 0 || a.exitCode !== 0
    ? `\n${consoleTail("VM-A console", consoleA)}\n${consoleTail("VM-B console", consoleB, 40)}` : "";
  t.deepEqual(plan, names, `VM-A's driver planned other scenarios than asked (null: it printed no plan)${why}`);
  t.deepEqual(missing, [], `scenarios with no result (VM-A ended early, exit ${a.exitCode}, timed out ${a.timedOut})${why}`);
  t.deepEqual(failed.map((r) => r.name), [], `scenarios failed:\n${failed.map(describeResult).join("\n")}${why}`);
  t.is(a.exitCode, 0, `VM-A's driver exited ${a.exitCode}, expected 0${why}`);
  t.false(b.timedOut, `VM-B ran into its timeout instead of being stopped when VM-A was done${why}`);
});
