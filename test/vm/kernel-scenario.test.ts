// The real kernel's fault queue, in one boot of a QEMU guest whose kernel has
// CONFIG_IOMMUFD_TEST: the shared fault scenario (test/integration/kernel-scenario.ts,
// through kernel-scenario-guest.js, the project's own kernel layer), then the
// count of the kernel's answers (kernel-responses-guest.js). Each guest
// program prints one report line and its exit status; each test here asserts
// on its own program's line.
import { join } from "node:path";
import { tmpdir } from "node:os";
import type { ExecutionContext } from "ava";
import { vmTest } from "../../scripts/vm/vm-test.js";
import { runVm, type VmResult } from "../../scripts/vm/qemu.js";
import { GUEST_PROJECT_DIR } from "../../scripts/vm/initramfs.js";
import type { ScenarioReport } from "../integration/kernel-scenario.js";
import type { ResponsesReport } from "./kernel-responses-guest.js";

const consoleLog = join(tmpdir(), `iopf-kernel-scenario-${process.pid}.log`);
const PROGRAMS = ["kernel-scenario-guest", "kernel-responses-guest"] as const;

let booted: Promise<VmResult> | undefined;
/** The one boot both tests read, started by whichever runs first. */
function boot(): Promise<VmResult> {
  booted ??= runVm({
    script: `cd ${GUEST_PROJECT_DIR}\n` +
      PROGRAMS.map((p) => `node build/test/vm/${p}.js; printf '\\nIOPF-STATUS ${p} %d\\n' $?`).join("\n"),
    timeoutMs: 5 * 60_000,
    consoleLog,
  });
  return booted;
}

/** The JSON after `prefix` on the console, once the program's exit status says it ended with 0; or a failure. */
async function reportOf<T>(t: ExecutionContext, program: (typeof PROGRAMS)[number], prefix: string): Promise<T | undefined> {
  const result = await boot();
  const lines = result.console.split("\n");
  const line = lines.find((l) => l.startsWith(`${prefix} `));
  const status = lines.find((l) => l.startsWith(`IOPF-STATUS ${program} `))?.split(" ")[2];
  if (!line) {
    t.fail(`${program} printed no ${prefix} line (status ${status}, VM exit ${result.exitCode}, timed out: ${result.timedOut}); console in ${consoleLog}`);
    return undefined;
  }
  t.is(status, "0", `${program}'s exit status; console in ${consoleLog}`);
  return JSON.parse(line.slice(prefix.length + 1)) as T;
}

vmTest("the fault scenario passes against the real kernel's mock devices", async (t) => {
  const report = await reportOf<ScenarioReport>(t, "kernel-scenario-guest", "IOPF-SCENARIO");
  if (!report) return;
  for (const l of report.log) t.log(l);
  t.deepEqual(report.failures, [], `console in ${consoleLog}`);
});

vmTest("the kernel answers each group once: N answered through the fault fd, M by a detach, N + M calls of iopf_group_response", async (t) => {
  const report = await reportOf<ResponsesReport>(t, "kernel-responses-guest", "IOPF-RESPONSES");
  if (!report) return;
  t.log(`N = ${report.n}, M = ${report.m}`);
  for (const [step, count] of Object.entries(report.counts)) t.log(`${step}: ${count}`);
  t.deepEqual(report.failures, [], `console in ${consoleLog}`);
  t.is(Object.values(report.counts).at(-1), report.n + report.m);
});
