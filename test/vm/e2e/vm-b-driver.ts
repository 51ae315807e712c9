// Runs inside VM-B of e2e-two-vms.test.ts: the agent from the image's bundle
// (vm-b-agent.ts says what it answers) and the guest program that answers
// one PASID after a delay. It runs until the host stops the VM.
import { startAgent } from "./guest-processes.js";
import { register } from "./guest-registration.js";
import { SLOW_APP_MS, SLOW_APP_PASID, VM_B_AGENT_CONFIG } from "./vm-b-agent.js";

await startAgent(VM_B_AGENT_CONFIG, "/tmp/agent.json", "vm-b agent");
await register({ mode: "app", pasid: SLOW_APP_PASID, answer: "success", delayMs: SLOW_APP_MS });
process.stdout.write("\nvm-b-driver: the agent runs and the guest program is registered\n");
