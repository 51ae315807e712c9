// What the host section (sections/real-kernel.ts) and the guest driver
// (guest.ts) agree on: where the C programs are, the plan (the driver's
// argument), and the figures (printed by the guest as one console line).

/** Console line prefixes; a leading newline goes before each, since kernel messages may leave the console mid-line. */
export const REPORT_PREFIX = "IOPF-REAL-KERNEL ";
export const PROGRESS_PREFIX = "IOPF-REAL-KERNEL-PROGRESS ";

/** Where the host puts the compiled raiser.c and responder.c in the job archive. */
export const GUEST_RAISER = "/job/real-kernel-raiser";
export const GUEST_RESPONDER = "/job/real-kernel-responder";

export interface Plan {
  /** Faults raised back to back before measuring: start-up and JIT stay out of the figures. */
  warmUpFaults: number;
  /** Faults raised back to back: answers per second. */
  throughputFaults: number;
  /** Faults raised at latencyRateHz: raise-to-answer latency without a queue. */
  latencyFaults: number;
  latencyRateHz: number;
}

export interface PathFigures {
  /** Throughput run: first raise to last answer. */
  seconds: number;
  answeredPerSec: number;
  /** How fast the raiser itself raised them: the ceiling of answeredPerSec. */
  raisedPerSec: number;
  /** Latency run, raise to answer, microseconds. */
  p50Us: number;
  p90Us: number;
  p99Us: number;
  maxUs: number;
}

export interface GuestReport {
  baseline: PathFigures;
  relay: PathFigures;
  /** The relay's own counters at its exit ("stopped"), as a check that the agent answered every fault. */
  relayCounters: unknown;
}

export function parsePlan(text: string | undefined): Plan {
  const plan = JSON.parse(text ?? "null") as Partial<Plan> | null;
  const keys: (keyof Plan)[] = ["warmUpFaults", "throughputFaults", "latencyFaults", "latencyRateHz"];
  const bad = keys.filter((k) => !Number.isInteger(plan?.[k]) || plan![k]! <= 0);
  if (bad.length > 0) throw new Error(`real-kernel guest: expected a JSON plan with positive integers ${keys.join(", ")}, got ${text}; bad: ${bad.join(", ")}`);
  return plan as Plan;
}
