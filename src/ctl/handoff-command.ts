// iopfctl attach / detach: the handoff protocol from the command line, for
// scripts and tests: hand an inherited fault fd over, and take it back.
import type { CtlCommand } from "./ctl-options.js";
import { handoffRequest } from "./handoff-client.js";

type HandoffCommand = Extract<CtlCommand, { cmd: "attach" | "detach" }>;

/** Prints the relay's reply (JSON) on stdout; exit 0 when it says ok, 1 with its error otherwise. */
export function handoffCommand(c: HandoffCommand, out: (s: string) => void, err: (s: string) => void): number {
  const reply = c.cmd === "attach"
    ? handoffRequest(c.handoff, {
      v: 1, op: "attach", ...(c.vmmPid !== null ? { vmmPid: c.vmmPid } : {}),
      queues: [{ fd: 0, faultId: c.faultId, devices: c.devices, ...(c.viommu !== null ? { viommu: c.viommu } : {}), ...(c.emulator ? { emulator: true } : {}) }],
    }, [c.faultFd])
    : handoffRequest(c.handoff, { v: 1, op: "detach", faultId: c.faultId, ...(c.devIds ? { devIds: c.devIds } : {}) });
  if (!reply.ok) {
    err(`iopfctl: the relay refused the ${c.cmd}: ${reply.error}\n`);
    return 1;
  }
  out(JSON.stringify(reply) + "\n");
  return 0;
}
