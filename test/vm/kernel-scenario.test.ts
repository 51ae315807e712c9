// The shared fault scenario (test/integration/kernel-scenario.ts) against the
// real kernel: a QEMU guest whose kernel has CONFIG_IOMMUFD_TEST runs
// kernel-scenario-guest.js through the project's own kernel layer.
import { join } from "node:path";
import { tmpdir } from "node:os";
import { vmTest } from "../../scripts/vm/vm-test.js";
import { runVm } from "../../scripts/vm/qemu.js";
import { GUEST_PROJECT_DIR } from "../../scripts/vm/initramfs.js";
import type { ScenarioReport } from "../integration/kernel-scenario.js";

vmTest("the fault scenario passes against the real kernel's mock devices", async (t) => {
  const consoleLog = join(tmpdir(), `iopf-kernel-scenario-${process.pid}.log`);
  const result = await runVm({
    script: `cd ${GUEST_PROJECT_DIR} && node build/test/vm/kernel-scenario-guest.js`,
    timeoutMs: 5 * 60_000,
    consoleLog,
  });
  const line = result.console.split("\n").find((l) => l.startsWith("IOPF-SCENARIO "));
  if (!line) {
    t.fail(`the guest printed no IOPF-SCENARIO line (exit ${result.exitCode}, timed out: ${result.timedOut}); console in ${consoleLog}`);
    return;
  }
  const report = JSON.parse(line.slice("IOPF-SCENARIO ".length)) as ScenarioReport;
  for (const l of report.log) t.log(l);
  t.deepEqual(report.failures, [], `console in ${consoleLog}`);
  t.is(result.exitCode, 0);
});
