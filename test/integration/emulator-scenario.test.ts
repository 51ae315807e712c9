// The shared fault scenario (kernel-scenario.ts) against both front ends of
// the kernel emulator; test/vm/kernel-scenario.test.ts runs it against the
// real kernel, so the kernel-exact emulator is held to the same checks.
import test from "ava";
import { emulatorScenarioSource, runFaultScenario } from "./kernel-scenario.js";

for (const mode of ["stream", "kernel-exact"] as const) {
  test.serial(`the fault scenario passes against the kernel emulator (${mode})`, async (t) => {
    const report = await runFaultScenario(emulatorScenarioSource(mode));
    for (const line of report.log) t.log(line);
    t.deepEqual(report.failures, []);
  });
}
