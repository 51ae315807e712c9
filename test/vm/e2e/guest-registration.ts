// Guest side: a guest program's registration with the agent over its app
// socket, through the project's client library (guest-agent/app/client.ts):
// either a PASID bound to a process whose pages procmem faults in, or a
// PASID whose faults this program answers itself, after a delay that keeps
// groups in flight long enough for a scenario to break something meanwhile.
import { setTimeout as sleep } from "node:timers/promises";
import { AgentClient, type FaultAnswer } from "../../../guest-agent/app/client.js";

export type Registration =
  | { mode: "procmem"; pasid: number; pid: number }
  | { mode: "app"; pasid: number; answer: FaultAnswer; delayMs: number };

/** Registers and returns the connection; the registration lasts as long as it (or the agent) does. */
export async function register(reg: Registration, socketPath?: string): Promise<AgentClient> {
  const client = await AgentClient.connect(socketPath);
  if (reg.mode === "procmem") {
    await client.registerProcess(reg.pasid, reg.pid);
    return client;
  }
  client.onPageRequest(async (fault) => {
    // A cancelled fault rejects here; the client answers nothing for it.
    await sleep(reg.delayMs, undefined, { signal: fault.signal });
    return reg.answer;
  });
  await client.register(reg.pasid);
  return client;
}
