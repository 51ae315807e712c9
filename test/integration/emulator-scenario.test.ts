// The shared fault scenario (kernel-scenario.ts) against the kernel emulator;
// test/vm/kernel-scenario.test.ts runs it against the real kernel.
import test from "ava";
import { emulatorScenarioSource, runFaultScenario } from "./kernel-scenario.js";

test("the fault scenario passes against the kernel emulator", async (t) => {
  const report = await runFaultScenario(emulatorScenarioSource());
  for (const line of report.log) t.log(line);
  t.deepEqual(report.failures, []);
});
