// What the relay needs of a fault source: batches of fault records in, and
// batches of answers out. The kernel's fault fd, the kernel emulator, a
// replay file and the synthetic generator all look like this.
import { KernelCode } from "./fault-group.js";
import { constants, type FaultRecord } from "../kernel/uapi-structs.js";

export type { FaultRecord };

/** Record flags as the relay sees them (iommu_hwpt_pgfault.flags, already masked with 0x3). */
export const RecordFlag = {
  PASID_VALID: constants.IOMMU_PGFAULT_FLAGS_PASID_VALID,
  LAST_PAGE: constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE,
} as const;

export interface ResponseEntry {
  cookie: number;
  code: KernelCode;
}

/** Answers the source refused, e.g. EINVAL for a cookie the kernel answered at detach. */
export interface WriteOutcome {
  refused: { cookie: number; reason: string }[];
}

export interface FaultSource {
  /** Stamped on every group from this source, so answers go back to it. */
  readonly id: number;
  readonly description: string;
  /**
   * Starts delivery. Records arrive in read order; a group's records may be
   * split across batches from a non-kernel source. The array is the listener's.
   */
  start(onRecords: (records: FaultRecord[]) => void, onError: (err: Error) => void): void;
  /** Writes answers in as few calls as possible. */
  writeAnswers(answers: ResponseEntry[]): WriteOutcome;
  close(): Promise<void>;
}
