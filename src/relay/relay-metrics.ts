// Everything the relay counts. Plain fields, bumped on the hot path; readers
// (the live view, the control server) take snapshots.
import { AnswerOrigin } from "../fault/fault-group.js";
import { DropReason } from "../fault/ledger.js";
import { LatencyHistogram } from "./latency-histogram.js";

export type SessionState = "waiting" | "handshake" | "up";

export class RelayMetrics {
  records = 0;
  groups = 0;
  /** Answers written, by origin and code. */
  readonly answers = new Map<AnswerOrigin, { success: number; invalid: number }>();
  /** Guest answers dropped, by reason; none of them reached the kernel. */
  readonly dropped = new Map<DropReason, number>();
  /** Answers the source refused (EINVAL from the kernel, e.g. after a detach answered them). */
  refused = 0;
  /** Guest answers with a code the link does not define; each became INVALID. */
  unknownCodes = 0;
  groupsSent = 0;
  sessionsUp = 0;
  sessionsDown = 0;
  sessionState: SessionState = "waiting";
  lastSessionDownReason = "";
  creditWindow = 0;
  /** From a group's read to its answer's write, for every origin. */
  readonly latency = new LatencyHistogram();
  /** The same, for guest answers only: what the guest path costs. */
  readonly guestLatency = new LatencyHistogram();

  countAnswer(origin: AnswerOrigin, code: number): void {
    let c = this.answers.get(origin);
    if (!c) {
      c = { success: 0, invalid: 0 };
      this.answers.set(origin, c);
    }
    if (code === 0) c.success++;
    else c.invalid++;
  }

  countDrop(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  totalAnswers(): number {
    let n = 0;
    for (const c of this.answers.values()) n += c.success + c.invalid;
    return n;
  }

  totalDropped(): number {
    let n = 0;
    for (const v of this.dropped.values()) n += v;
    return n;
  }
}
