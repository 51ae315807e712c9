// What VM-B's agent answers in e2e-two-vms.test.ts: the contract between
// VM-A's scenarios (which raise the faults) and VM-B's driver (which runs
// the agent), kept apart from both so that VM-B loads none of VM-A's kernel code.

/** Answered by policy: SUCCESS inside POLICY_RANGE, INVALID elsewhere. */
export const POLICY_PASID = 1;
export const POLICY_RANGE = { start: 0x10_0000, end: 0x20_0000 };
/** Answered SUCCESS by a guest program after SLOW_APP_MS: groups stay in flight that long. */
export const SLOW_APP_PASID = 2;
export const SLOW_APP_MS = 3000;

const hex = (n: number): string => `0x${n.toString(16)}`;

export const VM_B_AGENT_CONFIG = {
  handlers: [
    { pasid: SLOW_APP_PASID, handler: "app" },
    { pasid: POLICY_PASID, handler: "policy", otherwise: "invalid", rules: [{ start: hex(POLICY_RANGE.start), end: hex(POLICY_RANGE.end), perm: "rw", answer: "success" }] },
  ],
};
