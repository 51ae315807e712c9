// Flow control toward the agent: which connection speaks for it, the
// session, its credit window, whether the stream takes more, what is owed
// back after a deadline, cancels, and how many groups the relay should hold
// (its read limit). The relay core admits and expires groups; this sends
// them while the session and the window allow.
//
// Connections: a new one does not displace the agent in session until it
// completes a valid handshake; then it takes over and the old one is closed
// for good (GOODBYE_REPLACED, then the socket). Connections still shaking
// hands are bounded (beyond the bound the one waiting longest is closed) and
// each has one handshake timeout to succeed. Every event is checked against
// the link and session it belongs to: a displaced connection can do nothing.
import { randomInt } from "node:crypto";
import { Ledger, LedgerEntry } from "../fault/ledger.js";
import { HostLink, HostLinkOptions, HostSession } from "../link/host-link.js";
import { PageResponseColumns } from "../link/hot-codec.js";
import { SESSION_END_CAUSES, SessionEndCause } from "../link/link-peer.js";
import { pb } from "../link/messages.js";
import { Feature } from "../link/negotiation.js";
import { ByteStream } from "../link/transport/byte-stream.js";
import { iopf } from "../gen/guest_link.js";

export interface AgentFlowOptions {
  link: Omit<HostLinkOptions, "nextEpoch">;
  /** How long groups of a lost session (or, at start, no session yet) wait for one before the relay answers by itself. */
  sessionGraceMs: number;
  /** The most groups the relay holds. */
  maxHeld: number;
  /** Groups read ahead of the agent's window: one read. */
  readAhead: number;
  /** Connections still shaking hands at once; a new one beyond it closes the one waiting longest. */
  maxCandidates: number;
}

/** Why the relay's session with its agent ended: the link's causes, a takeover by another connection, or the relay stopping. */
export const SESSION_DOWN_CAUSES = [...SESSION_END_CAUSES, "replaced"] as const;
export type SessionDownCause = (typeof SESSION_DOWN_CAUSES)[number];

export type FlowEvent =
  | { kind: "session-up"; session: HostSession; takeover: boolean }
  | { kind: "session-down"; epoch: number; reason: string; cause: SessionDownCause; requeued: number }
  | { kind: "credit"; window: number }
  | { kind: "agent-absent"; graceMs: number }
  | { kind: "connection-refused"; from: string; candidates: number }
  /** An agent answered HELLO with an ERROR; reason: its code and message, bounded and escaped. */
  | { kind: "agent-refused"; from: string; code: iopf.link.v1.ErrorCode; reason: string }
  | { kind: "candidate-failed"; from: string; reason: string };

export interface AgentFlowHost<D> {
  /** Answers by deadline every group whose deadline is at or before nowMs (called before sending: no group goes out with no time left). */
  expireDue(nowMs: number): void;
  /** The page request the guest sees for a queued group. */
  request(entry: LedgerEntry<D>, budgetUs: number, raw: boolean): iopf.link.v1.IPageRequest;
  /** The agent's answers of the session in epoch. */
  responses(epoch: number, responses: PageResponseColumns): void;
  /** Groups went to the agent. */
  sent(count: number, epoch: number): void;
  /** Groups too large for one frame of the agreed max_payload: the agent can never receive them. */
  unsendable(entries: LedgerEntry<D>[], maxPayload: number): void;
  /** The read limit changed. */
  limit(groups: number): void;
  event(e: FlowEvent): void;
}

/** A handshake this long after connecting has failed; the connection is closed. */
const CANDIDATE_TIMEOUT_MS = 10_000;

export class AgentFlow<D> {
  private current: HostLink | null = null;
  private readonly candidates = new Map<HostLink, NodeJS.Timeout>();
  private session: HostSession | null = null;
  private window = 0;
  private writable = true;
  private agentAbsent = false;
  private stopping = false;
  private pumpScheduled = false;
  private graceTimer: NodeJS.Timeout | null = null;
  private lastLimit = -1;
  private lastEpoch = 0;

  constructor(
    private readonly ledger: Ledger<D>,
    private readonly options: AgentFlowOptions,
    private readonly host: AgentFlowHost<D>,
  ) {
    this.startGrace();
  }

  get currentSession(): HostSession | null {
    return this.session;
  }

  get creditWindow(): number {
    return this.window;
  }

  /** No agent session for longer than the grace period: groups are answered at once. */
  get absent(): boolean {
    return this.agentAbsent;
  }

  /** How many groups the relay should hold now. */
  readLimit(): number {
    if (this.stopping) return 0;
    if (this.agentAbsent) return this.options.maxHeld;
    if (!this.session) return 0;
    return Math.min(this.options.maxHeld, Math.max(0, this.window - this.ledger.owedCount) + this.options.readAhead);
  }

  /** Serves an agent on a new connection; it speaks for the agent once its handshake succeeds. */
  attach(stream: ByteStream): void {
    if (this.stopping) {
      stream.destroy();
      return;
    }
    if (this.candidates.size >= this.options.maxCandidates) {
      // The oldest goes, not the newest: a connection that never shakes hands cannot lock the agent out.
      const [oldest] = this.candidates.keys();
      this.host.event({ kind: "connection-refused", from: oldest!.description, candidates: this.candidates.size });
      this.dropCandidate(oldest!);
      oldest!.close(pb.GoodbyeReason.GOODBYE_SHUTDOWN, "too many connections shaking hands at once; this one waited longest");
    }
    const link: HostLink = new HostLink(stream, {
      sessionUp: (session) => this.onSessionUp(link, session),
      pageResponses: (epoch, responses) => {
        if (this.isLive(link, epoch)) this.host.responses(epoch, responses);
        this.schedule();
      },
      credit: (epoch, window) => {
        if (!this.isLive(link, epoch)) return;
        this.window = window;
        this.host.event({ kind: "credit", window });
        this.limitChanged();
        this.schedule();
      },
      sessionDown: (epoch, reason, cause) => this.onSessionDown(link, epoch, reason, cause),
      refused: (code, reason) => this.host.event({ kind: "agent-refused", from: stream.description, code, reason }),
      writable: () => {
        if (link !== this.current) return;
        this.writable = true;
        this.schedule();
      },
      closed: () => {
        this.dropCandidate(link);
        if (link === this.current) this.current = null;
      },
    }, { ...this.options.link, nextEpoch: () => this.nextEpoch() });
    const timer = setTimeout(() => {
      if (!this.candidates.has(link)) return;
      this.host.event({ kind: "candidate-failed", from: stream.description, reason: `no valid handshake within ${CANDIDATE_TIMEOUT_MS} ms` });
      this.dropCandidate(link);
      link.close(pb.GoodbyeReason.GOODBYE_SHUTDOWN, "no valid handshake in time");
    }, CANDIDATE_TIMEOUT_MS);
    timer.unref();
    this.candidates.set(link, timer);
    link.start();
  }

  /** Queued groups may be sendable now. */
  schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * The relay answered these sent groups itself: tell the agent (CANCELS), or,
   * when it cannot be told, count them against its window until it answers.
   */
  cancelled(entries: readonly LedgerEntry<D>[], reason: iopf.link.v1.CancelReason): void {
    const session = this.session;
    if (!session || !this.current) return;
    const mine = entries.filter((e) => e.epoch === session.epoch);
    if (mine.length === 0) return;
    if (session.agreement.features & Feature.CANCELS) this.current.sendCancels(mine.map((e) => e.tag), reason);
    else {
      this.ledger.owe(mine, session.epoch);
      this.limitChanged();
    }
  }

  /** Stops reading and sending; says goodbye to every connection. */
  close(): void {
    this.stopping = true;
    this.limitChanged();
    this.clearGrace();
    for (const link of [...this.candidates.keys()]) {
      this.dropCandidate(link);
      link.close(pb.GoodbyeReason.GOODBYE_SHUTDOWN, "relay shutting down");
    }
    this.current?.close(pb.GoodbyeReason.GOODBYE_SHUTDOWN, "relay shutting down");
    this.current = null;
  }

  private isLive(link: HostLink, epoch: number): boolean {
    return link === this.current && this.session !== null && this.session.epoch === epoch;
  }

  private onSessionUp(link: HostLink, session: HostSession): void {
    if (this.stopping) return;
    let takeover = false;
    if (link !== this.current) {
      if (!this.candidates.has(link)) return;
      this.dropCandidate(link);
      const old = this.current;
      this.current = link;
      if (old) {
        takeover = true;
        // Its session ends here (sessionDown runs, and is ignored: old is no longer current).
        this.endSession("another agent connection completed a handshake", "replaced");
        old.close(pb.GoodbyeReason.GOODBYE_REPLACED, "another agent connection took over this relay");
      }
    }
    this.session = session;
    this.window = session.agreement.limits.maxInFlight;
    this.writable = true;
    this.ledger.forgiveOwed();
    this.agentAbsent = false;
    this.clearGrace();
    this.host.event({ kind: "session-up", session, takeover });
    this.limitChanged();
    this.schedule();
  }

  private onSessionDown(link: HostLink, epoch: number, reason: string, cause: SessionEndCause): void {
    if (link !== this.current || this.session?.epoch !== epoch) return;
    this.endSession(reason, cause);
  }

  private endSession(reason: string, cause: SessionDownCause): void {
    const session = this.session;
    if (!session) return;
    this.session = null;
    this.ledger.forgiveOwed();
    const requeued = this.ledger.requeueSession(session.epoch);
    this.host.event({ kind: "session-down", epoch: session.epoch, reason, cause, requeued });
    this.limitChanged();
    if (!this.stopping) this.startGrace();
  }

  private dropCandidate(link: HostLink): void {
    const timer = this.candidates.get(link);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.candidates.delete(link);
  }

  /** Sends queued groups while the session, the window and the stream allow. */
  private pump(): void {
    const link = this.current;
    const session = this.session;
    if (!link || !session || !this.writable) return;
    if (this.window - this.ledger.sent - this.ledger.owedCount <= 0 || this.ledger.queued === 0) return;
    // A deadline can pass before its timer runs (the loop was busy): such a group is answered now, not sent with nothing left of its budget.
    const now = performance.now();
    this.host.expireDue(now);
    const room = this.window - this.ledger.sent - this.ledger.owedCount;
    const entries = room > 0 ? this.ledger.takeForSending(room, session.epoch) : [];
    if (entries.length === 0) return;
    const raw = (session.agreement.features & Feature.RAW_RECORDS) !== 0;
    // Every deadline left is after now, so each budget is at least 1 us: budget_us 0 means "not stated" (docs/protocol.md 4.1).
    const requests = entries.map((e) => this.host.request(e, Math.ceil((e.deadlineMs - now) * 1000), raw));
    const { writable, tooLarge } = link.sendPageRequests(requests);
    this.writable = writable;
    this.host.sent(requests.length - tooLarge.length, session.epoch);
    if (tooLarge.length > 0) {
      const tags = new Set(tooLarge.map((r) => r.tag));
      this.host.unsendable(entries.filter((e) => tags.has(e.tag)), session.agreement.limits.maxPayload);
    }
  }

  private limitChanged(): void {
    const limit = this.readLimit();
    if (limit === this.lastLimit) return;
    this.lastLimit = limit;
    this.host.limit(limit);
  }

  /** Epochs are random, so a peer cannot guess the next session's from this one's. */
  private nextEpoch(): number {
    let epoch: number;
    do epoch = randomInt(1, 2 ** 48);
    while (epoch === this.lastEpoch);
    this.lastEpoch = epoch;
    return epoch;
  }

  private startGrace(): void {
    this.clearGrace();
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      if (this.session || this.stopping) return;
      this.agentAbsent = true;
      this.host.event({ kind: "agent-absent", graceMs: this.options.sessionGraceMs });
      this.limitChanged();
    }, this.options.sessionGraceMs);
    this.graceTimer.unref();
  }

  private clearGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }
}
