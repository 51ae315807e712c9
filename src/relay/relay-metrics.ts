// Everything the relay counts. Plain fields, bumped on the hot path; readers
// (the live view, the control server) take snapshots.
import { AnswerOrigin, EndReason } from "../fault/fault-group.js";
import type { SessionDownCause } from "./agent-flow.js";
import { DropReason } from "../fault/ledger.js";
import { LatencyRecorder } from "./latency-histogram.js";

export type SessionState = "waiting" | "handshake" | "up";

/** This many takeovers (a new connection taking the session) within the window: two agents fighting over the relay. */
export const FLAPPING_TAKEOVERS = 3;
export const FLAPPING_WINDOW_MS = 60_000;

export class RelayMetrics {
  records = 0;
  groups = 0;
  /** Answers written, by origin and code. */
  readonly answers = new Map<AnswerOrigin, { success: number; invalid: number }>();
  /** Guest answers dropped, by reason; none of them reached the kernel. */
  readonly dropped = new Map<DropReason, number>();
  /** Answers the source refused (EINVAL from the kernel, e.g. after a detach answered them). */
  refused = 0;
  /** Groups that ended with no answer written, by why: the kernel answered them, or their source went away. */
  readonly ended = new Map<EndReason, number>();
  /** Groups a previous reader left, answered SUCCESS before the first read of an inherited or handed-over fault fd. */
  sweptGroups = 0;
  /** Fault sources that stopped delivering. */
  sourceFailures = 0;
  /** Relays the keeper started before this one (0 without a keeper). */
  keeperRestarts = 0;
  /** Guest answers with a code the link does not define; each became INVALID. */
  unknownCodes = 0;
  groupsSent = 0;
  sessionsUp = 0;
  sessionsDown = 0;
  /** Sessions ended, by cause. */
  readonly sessionsEnded = new Map<SessionDownCause, number>();
  /** Sessions taken over by another agent connection, and the monotonic times of the last few. */
  takeovers = 0;
  recentTakeovers: number[] = [];
  /** Agent connections closed before a session: too many shaking hands at once, or no valid handshake. */
  connectionsRefused = 0;
  /** HELLOs an agent answered with an ERROR (it refused the offer), and the last one's reason, bounded and escaped. */
  agentRefusals = 0;
  lastAgentRefusal: { reason: string; from: string; atMs: number } | null = null;
  sessionState: SessionState = "waiting";
  lastSessionDownReason = "";
  creditWindow = 0;
  /** From a group's read to its answer's write, for every origin: since start, and `.recent` for the last seconds. */
  readonly latency: LatencyRecorder;
  /** The same, for guest answers only: what the guest path costs. */
  readonly guestLatency: LatencyRecorder;

  /** clock: whole seconds for the recent latency window (tests pass their own). */
  constructor(clock?: () => number) {
    this.latency = new LatencyRecorder(clock);
    this.guestLatency = new LatencyRecorder(clock);
  }

  countAnswer(origin: AnswerOrigin, code: number): void {
    let c = this.answers.get(origin);
    if (!c) {
      c = { success: 0, invalid: 0 };
      this.answers.set(origin, c);
    }
    if (code === 0) c.success++;
    else c.invalid++;
  }

  countEnd(reason: EndReason): void {
    this.ended.set(reason, (this.ended.get(reason) ?? 0) + 1);
  }

  /** Whether agent connections keep taking the session from each other. */
  flapping(nowMs: number): boolean {
    return this.recentTakeovers.length >= FLAPPING_TAKEOVERS && nowMs - this.recentTakeovers[0]! < FLAPPING_WINDOW_MS;
  }

  countDrop(reason: DropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
  }

  /** A plain snapshot for logs and status: counts by origin and reason, latency percentiles in microseconds. */
  summary(): object {
    return {
      records: this.records,
      groups: this.groups,
      sent: this.groupsSent,
      answers: Object.fromEntries(this.answers),
      dropped: Object.fromEntries(this.dropped),
      refused: this.refused,
      ended: Object.fromEntries(this.ended),
      swept: this.sweptGroups,
      unknownCodes: this.unknownCodes,
      sessions: { up: this.sessionsUp, down: this.sessionsDown, takeovers: this.takeovers, state: this.sessionState },
      latencyUs: { p50: this.latency.quantile(0.5), p99: this.latency.quantile(0.99), max: this.latency.maxUs },
      guestLatencyUs: { p50: this.guestLatency.quantile(0.5), p99: this.guestLatency.quantile(0.99) },
    };
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
