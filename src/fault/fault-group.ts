// A fault group: the records of one cookie, the unit that gets exactly one
// answer. Built by the group assembler from a fault source's records.

/** One page of a group, as the fault record gave it. */
export interface FaultPage {
  addr: number;
  perm: number;
}

export interface FaultGroup {
  /** Which fault source (fault fd) the group came from: answers go back there. */
  sourceId: number;
  cookie: number;
  devId: number;
  pasid: number;
  pasidValid: boolean;
  grpid: number;
  pages: FaultPage[];
  /** Monotonic milliseconds (performance.now()) when the group's last record was read. */
  readAtMs: number;
}

/** The two codes the iommufd response uAPI accepts. */
export const KernelCode = { SUCCESS: 0, INVALID: 1 } as const;
export type KernelCode = (typeof KernelCode)[keyof typeof KernelCode];

/** Who decided a group's answer; every answer is counted by origin. */
export const ANSWER_ORIGINS = [
  "guest", "deadline", "unknown-device", "oversized", "shutdown", "device-removed", "session-lost",
] as const;
export type AnswerOrigin = (typeof ANSWER_ORIGINS)[number];

/**
 * How a group can end without an answer from the relay: the kernel answered
 * it itself (a detach or replace; the relay learns it when the cookie is read
 * again, or from the VMM), or its source went away with it.
 */
export const END_REASONS = ["kernel-ended", "source-gone"] as const;
export type EndReason = (typeof END_REASONS)[number];
