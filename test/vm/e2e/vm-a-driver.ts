// Runs inside VM-A of e2e-two-vms.test.ts: finds its end of the wired port,
// prints the plan, runs each scenario of two-vm-scenarios.ts in turn (those
// named in IOPF_E2E_SCENARIO, or all), and prints one result line each.
// Exits 0 when every scenario passed.
import { findPortByName } from "../../../guest-agent/port/sysfs-ports.js";
import { PLAN_PREFIX, RESULT_PREFIX, runScenarios, selectedScenarios } from "./scenario-runner.js";
import { twoVmScenarios } from "./two-vm-scenarios.js";

const PORT_NAME = process.argv[2] ?? "org.iopf-relay.0";

const port = await findPortByName("/sys", "/dev", PORT_NAME);
if (!port) {
  console.error(`vm-a-driver: no virtio-serial port named ${PORT_NAME} under /sys/class/virtio-ports; the host test must wire one`);
  process.exit(1);
}
const scenarios = selectedScenarios(twoVmScenarios);
// Leading newlines: kernel messages may have left the console mid-line.
process.stdout.write(`\n${PLAN_PREFIX}${JSON.stringify(scenarios.map((s) => s.name))}\n`);
const results = await runScenarios(scenarios, { portPath: port.device }, (r) => process.stdout.write(`\n${RESULT_PREFIX}${JSON.stringify(r)}\n`));
process.exit(results.every((r) => r.ok) ? 0 : 1);
