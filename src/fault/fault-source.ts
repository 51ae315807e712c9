// What the relay needs of a fault source: batches of fault records in, and
// batches of answers out. The kernel's fault fd, the kernel emulator and the
// synthetic generator all look like this.
import { constants, type FaultAnswer, type FaultRecord } from "../kernel/uapi-structs.js";

export type { FaultAnswer, FaultRecord };

/** Record flags as the relay sees them (iommu_hwpt_pgfault.flags, already masked with 0x3). */
export const RecordFlag = {
  PASID_VALID: constants.IOMMU_PGFAULT_FLAGS_PASID_VALID,
  LAST_PAGE: constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE,
} as const;

/**
 * What became of a batch of answers, in order: the first `written` plus
 * `refused` were taken by the source, the next `queued` wait for it, and with
 * the source gone the rest went nowhere. Nothing counts as answered before
 * its bytes are written.
 */
export interface WriteOutcome {
  written: number;
  /** Answers the source refused (the kernel's EINVAL: a cookie it answered itself at a detach). */
  refused: { cookie: number; reason: string }[];
  /** Answers waiting for the source to take them (a full stream); they go out in order, later. */
  queued: number;
  /** The source is gone: the answers not written or queued went nowhere, and so will every later one. */
  gone: Error | null;
}

/** What a source tells the relay. */
export interface SourceListener {
  /** Records in read order; a group's records may be split across batches. The array is the listener's. */
  records(records: FaultRecord[]): void;
  /**
   * The source stopped delivering. `answerable`: answers can still be
   * written to it (a fault fd whose reading failed), or not (a stream whose
   * other end went away).
   */
  failed(err: Error, answerable: boolean): void;
  /** Before its first read, cookies a previous reader may have left were answered SUCCESS (a null count: a stream cannot tell). */
  swept(accepted: number | null, bound: number): void;
}

export interface FaultSource {
  /** Stamped on every group from this source, so answers go back to it. */
  readonly id: number;
  readonly description: string;
  start(listener: SourceListener): void;
  /** Writes answers in as few calls as possible. */
  writeAnswers(answers: FaultAnswer[]): WriteOutcome;
  /**
   * How many groups the relay wants to hold at most (flow control); a source
   * that can wait (a fault fd: groups stay in the kernel's list) reads no
   * more while the relay holds that many. Sources of one pump share it.
   */
  setReadLimit(groups: number): void;
  /** Groups of this source the relay no longer holds and never answered (the kernel ended them, or the source went away). */
  forget(groups: number): void;
  close(): Promise<void>;
}
