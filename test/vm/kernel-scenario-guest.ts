// Runs inside the test VM (scripts/vm): the shared fault scenario against the
// real kernel's IOMMUFD_TEST mock devices. Prints one "IOPF-SCENARIO <json>"
// line for test/vm/kernel-scenario.test.ts and exits non-zero on a failure.
import { kernelScenarioSource, runFaultScenario, type ScenarioReport } from "../integration/kernel-scenario.js";

const report: ScenarioReport = await runFaultScenario(kernelScenarioSource()).catch((err: unknown) => ({
  source: "kernel",
  failures: [`the scenario threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`],
  log: [],
}));
// A leading newline: kernel messages may have left the console mid-line.
process.stdout.write(`\nIOPF-SCENARIO ${JSON.stringify(report)}\n`);
process.exitCode = report.failures.length === 0 ? 0 : 1;
