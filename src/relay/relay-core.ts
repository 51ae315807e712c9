// The relay's core: fault groups in from the sources, each admitted to the
// ledger once (the ledger decides every answer), deadlines, and telemetry.
// Flow control toward the agent is agent-flow.ts; writing answers is
// answer-writer.ts. It knows the link only as streams handed to attach()
// and the kernel only as FaultSources.
import { EventEmitter } from "node:events";
import { AnswerOrigin, EndReason, FaultGroup, KernelCode } from "../fault/fault-group.js";
import { FaultRecord, FaultSource } from "../fault/fault-source.js";
import { GroupAssembler } from "../fault/group-assembler.js";
import { DEFAULT_LEDGER_LIMITS, Ledger, LedgerEntry, LedgerLimits, Route } from "../fault/ledger.js";
import { HostLinkOptions, HostSession } from "../link/host-link.js";
import { PageResponseColumns } from "../link/hot-codec.js";
import { isLinkErrorCode, linkErrorName } from "../link/link-error.js";
import { pb } from "../link/messages.js";
import { ByteStream } from "../link/transport/byte-stream.js";
import { iopf } from "../gen/guest_link.js";
import { linkToKernel } from "../viommu/response-code.js";
import { AgentFlow, FlowEvent } from "./agent-flow.js";
import { AnswerWriter } from "./answer-writer.js";
import { Logger } from "./log.js";
import { FLAPPING_TAKEOVERS, FLAPPING_WINDOW_MS, RelayMetrics } from "./relay-metrics.js";
import { RateLimitedLog } from "./rate-limited-log.js";

export interface DeviceDeadline {
  ms: number;
  code: KernelCode;
}

/** How the relay sees devices: the device map and the vIOMMU encoding, behind three calls. */
export interface DeviceModel<D> {
  /** The guest's view of a group's device, or null for a device the map does not know. */
  resolve(group: FaultGroup): D | null;
  deadline(device: D): DeviceDeadline;
  /** The page request the guest sees: relay tag, guest ids, no host cookie or dev_id. */
  pageRequest(group: FaultGroup, device: D, tag: number, budgetUs: number, rawRecords: boolean): iopf.link.v1.IPageRequest;
}

/** Sees every group read and its one outcome (tests audit exactly-once with it). */
export interface GroupObserver {
  read(group: FaultGroup): void;
  /** Its answer reached its source. */
  answered(group: FaultGroup, code: KernelCode, origin: AnswerOrigin): void;
  /** It ended with no answer from the relay. */
  ended(group: FaultGroup, reason: EndReason): void;
}

export interface RelayCoreOptions<D> {
  devices: DeviceModel<D>;
  link: Omit<HostLinkOptions, "nextEpoch">;
  ledger?: LedgerLimits;
  maxPagesPerGroup?: number;
  /** The most groups the relay holds read and unanswered (back-pressure: the rest wait in the kernel's list). */
  maxHeld?: number;
  /** Groups read ahead of the agent's window: one read of a fault fd. */
  readAhead?: number;
  /** How long groups wait for an agent session (after a session ends, and at start) before the relay answers them. */
  sessionGraceMs?: number;
  /** Agent connections still shaking hands at once. */
  maxCandidates?: number;
  observer?: GroupObserver;
  log: Logger;
}

/**
 * maxHeld covers the agent's default window (256 credits) plus a read ahead
 * several times over; a restarted relay sweeps that many cookies, one write
 * each, before it reads, so it is kept near what agents use.
 */
export const CORE_DEFAULTS = { maxPagesPerGroup: 256, maxHeld: 1024, readAhead: 100, sessionGraceMs: 2000, maxCandidates: 4 } as const;

export type RelayEvent =
  | { kind: "group-read"; devId: number; pasid: number; pages: number; cookie: number }
  | { kind: "sent"; count: number; epoch: number }
  | { kind: "answered"; devId: number; pasid: number; code: KernelCode; origin: AnswerOrigin; latencyUs: number }
  | { kind: "ended"; devId: number; pasid: number; reason: EndReason }
  | { kind: "dropped"; reason: string; tag: number }
  | { kind: "session-up"; epoch: number; agent: string }
  | { kind: "session-down"; epoch: number; reason: string };

/** A source that stopped, for the log, /healthz and status. */
export interface SourceFailure {
  source: string;
  error: string;
  atMs: number;
}

export class RelayCore<D> {
  readonly metrics = new RelayMetrics();
  /** Emits "event" (RelayEvent) for watchers; nothing is built when nobody listens. */
  readonly events = new EventEmitter();
  /** Sources that stopped delivering, in the order they failed. */
  readonly failures: SourceFailure[] = [];
  private readonly sources = new Map<number, FaultSource>();
  private readonly assemblers = new Map<number, GroupAssembler>();
  private readonly ledger: Ledger<D>;
  private readonly writer: AnswerWriter;
  private readonly flow: AgentFlow<D>;
  private readonly log: Logger;
  private readonly maxPagesPerGroup: number;
  private readonly maxHeld: number;
  private readonly readAhead: number;
  /** Lines a guest or a peer can trigger at its own pace: written at most once a second per cause. */
  private readonly lines: Record<"refused" | "handshakeFailed" | "agentRefused" | "sessionUp" | "sessionDown" | "flapping" | "windowOverHeld", RateLimitedLog>;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineArmedFor = Infinity;
  private stopping = false;
  private readLimit = 0;

  constructor(private readonly options: RelayCoreOptions<D>) {
    this.log = options.log;
    this.maxPagesPerGroup = options.maxPagesPerGroup ?? CORE_DEFAULTS.maxPagesPerGroup;
    this.maxHeld = options.maxHeld ?? CORE_DEFAULTS.maxHeld;
    this.readAhead = options.readAhead ?? CORE_DEFAULTS.readAhead;
    const warn = (msg: string, fields: object): void => this.log.level("warn", msg, fields);
    const info = (msg: string, fields: object): void => this.log(msg, fields);
    this.lines = {
      refused: new RateLimitedLog(warn, "an agent connection still shaking hands was closed: too many connections at once"),
      handshakeFailed: new RateLimitedLog(warn, "an agent connection was closed: it made no valid handshake"),
      agentRefused: new RateLimitedLog(warn, "the agent refused the relay's offer: no session until it sends a new SYNC (restarts); its reason names what it could not agree to, so change that limit or feature on one side"),
      sessionUp: new RateLimitedLog(info, "agent session up"),
      sessionDown: new RateLimitedLog(info, "agent session down"),
      flapping: new RateLimitedLog(warn, "agent connections keep taking the session from each other: are two agents using this relay's socket?", 60_000),
      windowOverHeld: new RateLimitedLog(warn, "the agent's window is more than the relay may hold: groups wait in the kernel's queue while the agent has credit; raise limits.maxHeld", 60_000),
    };
    this.writer = new AnswerWriter(this.sources, this.metrics, {
      answered: (group, code, origin) => {
        options.observer?.answered(group, code, origin);
        if (this.watched()) this.emit({ kind: "answered", devId: group.devId, pasid: group.pasid, code, origin, latencyUs: Math.round((performance.now() - group.readAtMs) * 1000) });
      },
      ended: (group, reason) => {
        options.observer?.ended(group, reason);
        if (this.watched()) this.emit({ kind: "ended", devId: group.devId, pasid: group.pasid, reason });
      },
      sourceGone: (source, err, unsent) => this.sourceFailed(source, err, false, unsent),
      log: (msg, fields) => this.log.level("warn", msg, fields),
    });
    this.ledger = new Ledger<D>(this.writer, options.ledger ?? DEFAULT_LEDGER_LIMITS);
    this.writer.ledger = this.ledger;
    this.flow = new AgentFlow<D>(this.ledger, {
      link: options.link,
      sessionGraceMs: options.sessionGraceMs ?? CORE_DEFAULTS.sessionGraceMs,
      maxHeld: this.maxHeld,
      readAhead: this.readAhead,
      maxCandidates: options.maxCandidates ?? CORE_DEFAULTS.maxCandidates,
    }, {
      expireDue: (nowMs) => this.expire(nowMs),
      request: (entry, budgetUs, raw) => options.devices.pageRequest(entry.group, entry.device as D, entry.tag, budgetUs, raw),
      responses: (epoch, responses) => this.onPageResponses(epoch, responses),
      sent: (count, epoch) => {
        this.metrics.groupsSent += count;
        if (this.watched()) this.emit({ kind: "sent", count, epoch });
      },
      unsendable: (entries, maxPayload) => {
        const set = new Set(entries);
        this.ledger.drain("oversized", KernelCode.INVALID, (e) => set.has(e));
        this.log.level("warn", "groups too large for one frame of the agreed max_payload answered INVALID", { count: entries.length, maxPayload });
      },
      limit: (groups) => this.setReadLimit(groups),
      event: (e) => this.onFlowEvent(e),
    });
  }

  /** Groups queued or sent to the agent. */
  get inFlight(): number {
    return this.ledger.size;
  }

  get queued(): number {
    return this.ledger.queued;
  }

  /** Groups read and not yet written or ended. */
  get held(): number {
    return this.ledger.held;
  }

  get currentSession(): HostSession | null {
    return this.flow.currentSession;
  }

  /** The sources read now, by description. */
  get sourceNames(): string[] {
    return [...this.sources.values()].map((s) => s.description);
  }

  addSource(source: FaultSource): void {
    if (this.sources.has(source.id)) throw new Error(`fault source id ${source.id} is already in use (by ${this.sources.get(source.id)?.description}); give each source its own id`);
    this.sources.set(source.id, source);
    const assembler = new GroupAssembler(source.id, this.maxPagesPerGroup, {
      group: (g) => this.admit(g, null),
      oversized: (g, count) => {
        this.log.level("warn", "a group over the page limit was answered INVALID", { source: source.description, devId: g.devId, pages: count, maxPagesPerGroup: this.maxPagesPerGroup });
        this.admit(g, { answer: KernelCode.INVALID, origin: "oversized" });
      },
    });
    this.assemblers.set(source.id, assembler);
    source.start({
      records: (records) => this.onRecords(assembler, records),
      failed: (err, answerable) => this.sourceFailed(source, err, answerable, 0),
      swept: (accepted, bound) => {
        if (accepted !== null) this.metrics.sweptGroups += accepted;
        this.log("answered SUCCESS to the groups a previous reader of this fault queue left, before reading it", { source: source.description, cookies: `1..${bound}`, answered: accepted ?? "unknown (a stream cannot tell)" });
      },
    });
    source.setReadLimit(this.readLimit);
  }

  /**
   * Takes a source away for good (its queue detached, or its VMM gone): stops
   * reading it, then, with "answer", answers INVALID every group of it still
   * held and writes those answers; with "drop" (the kernel has answered them
   * already: the VMM detached first, or died), ends them with no answer.
   * Returns how many it answered or dropped.
   */
  async removeSource(source: FaultSource, how: "answer" | "drop"): Promise<number> {
    if (this.sources.get(source.id) !== source) return 0;
    await source.close();
    const partial = this.assemblers.get(source.id)?.takePartial() ?? [];
    let n: number;
    if (how === "answer") {
      for (const g of partial) this.admit(g, { answer: KernelCode.INVALID, origin: "device-removed" });
      const drained = this.ledger.drain("device-removed", KernelCode.INVALID, (e) => e.group.sourceId === source.id);
      this.flow.cancelled(drained, pb.CancelReason.CANCEL_DEVICE_REMOVED);
      this.writer.flush();
      n = drained.length + partial.length;
    } else {
      const ended = this.ledger.endSource(source.id, "kernel-ended");
      this.flow.cancelled(ended, pb.CancelReason.CANCEL_DEVICE_REMOVED);
      n = ended.length;
    }
    this.sources.delete(source.id);
    this.assemblers.delete(source.id);
    return n;
  }

  /** Writes the answers decided so far now, rather than at the end of this turn. */
  flushAnswers(): void {
    this.writer.flush();
  }

  /** Serves an agent on a new stream; it replaces the agent in session once its handshake succeeds. */
  attach(stream: ByteStream): void {
    this.flow.attach(stream);
  }

  /** A device is gone: answer its groups INVALID (the kernel does the same at detach). */
  removeDevice(devId: number): number {
    const drained = this.ledger.drain("device-removed", KernelCode.INVALID, (e) => e.group.devId === devId);
    this.flow.cancelled(drained, pb.CancelReason.CANCEL_DEVICE_REMOVED);
    return drained.length;
  }

  /**
   * Stops reading, answers every group read (sent, queued, or delivered by a
   * source while it stopped), says goodbye, and writes the answers. The
   * answers are SUCCESS: nobody decided these faults, and the device retries
   * them with whoever reads the fault queue next.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    this.flow.close();
    // Sources first: records they had read arrive while they close, and are answered as "shutdown" by admit.
    await Promise.all([...this.sources.values()].map((s) => s.close()));
    for (const assembler of this.assemblers.values()) {
      for (const g of assembler.takePartial()) this.admit(g, { answer: KernelCode.SUCCESS, origin: "shutdown" });
    }
    this.ledger.drain("shutdown", KernelCode.SUCCESS);
    this.writer.flush();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  private watched(): boolean {
    return this.events.listenerCount("event") > 0;
  }

  private onRecords(assembler: GroupAssembler, records: FaultRecord[]): void {
    this.metrics.records += records.length;
    assembler.push(records, performance.now());
  }

  /** Every group read enters the ledger here, once: queued for the agent, or answered at once with `route`. */
  private admit(group: FaultGroup, forced: Route | null): void {
    this.metrics.groups++;
    this.options.observer?.read(group);
    if (this.watched()) this.emit({ kind: "group-read", devId: group.devId, pasid: group.pasid, pages: group.pages.length, cookie: group.cookie });
    let route: Route | null = forced;
    let device: D | null = null;
    if (route === null && this.stopping) route = { answer: KernelCode.SUCCESS, origin: "shutdown" };
    if (route === null) {
      device = this.options.devices.resolve(group);
      if (device === null) route = { answer: KernelCode.INVALID, origin: "unknown-device" };
      else if (this.flow.absent) route = { answer: KernelCode.INVALID, origin: "session-lost" };
      else {
        const deadline = this.options.devices.deadline(device);
        route = { deadlineMs: deadline.ms, deadlineCode: deadline.code };
      }
    }
    const { ended } = this.ledger.admit(group, route, device);
    // Its cookie read again: the kernel answered the old group itself (a detach or replace) and gave the cookie to this one.
    if (ended) this.flow.cancelled([ended], pb.CancelReason.CANCEL_DEVICE_REMOVED);
    if ("deadlineMs" in route) {
      this.armDeadline();
      this.flow.schedule();
    }
  }

  private onPageResponses(epoch: number, responses: PageResponseColumns): void {
    const { tags, codes } = responses;
    for (let i = 0; i < tags.length; i++) {
      const tag = tags[i]!;
      const { code, unknown } = linkToKernel(codes[i]!);
      if (unknown) this.metrics.unknownCodes++;
      const outcome = this.ledger.guestAnswer(epoch, tag, code);
      if (outcome === "answered") continue;
      this.metrics.countDrop(outcome);
      if (this.watched()) this.emit({ kind: "dropped", reason: outcome, tag });
    }
  }

  private sourceFailed(source: FaultSource, err: Error, answerable: boolean, unsent: number): void {
    if (this.stopping && !answerable) return;
    this.failures.push({ source: source.description, error: err.message, atMs: Date.now() });
    this.metrics.sourceFailures++;
    let ended = 0;
    if (!answerable) {
      this.assemblers.get(source.id)?.takePartial();
      ended = this.ledger.endSource(source.id, "source-gone").length;
    }
    this.log.level("error", answerable ? "a fault source stopped delivering; its groups read so far are still answered" : "a fault source went away; the groups read from it cannot be answered", {
      source: source.description, error: err.message, ...(answerable ? {} : { groupsLost: ended + unsent }),
    });
  }

  private setReadLimit(groups: number): void {
    this.readLimit = groups;
    for (const s of this.sources.values()) s.setReadLimit(groups);
  }

  private onFlowEvent(e: FlowEvent): void {
    const m = this.metrics;
    switch (e.kind) {
      case "session-up": {
        const agent = e.session.agentSoftware;
        m.sessionsUp++;
        m.sessionState = "up";
        m.creditWindow = e.session.agreement.limits.maxInFlight;
        this.lines.sessionUp.report("up", {
          epoch: e.session.epoch, agent, limits: e.session.agreement.limits, features: e.session.agreement.features, ...(e.takeover ? { takeover: true } : {}),
        });
        if (e.takeover) this.tookOver();
        this.emit({ kind: "session-up", epoch: e.session.epoch, agent });
        return;
      }
      case "session-down": {
        const reason = e.reason;
        m.sessionsDown++;
        m.sessionsEnded.set(e.cause, (m.sessionsEnded.get(e.cause) ?? 0) + 1);
        m.sessionState = "waiting";
        m.lastSessionDownReason = reason;
        this.lines.sessionDown.report("down", { epoch: e.epoch, reason, cause: e.cause, requeued: e.requeued });
        this.emit({ kind: "session-down", epoch: e.epoch, reason });
        return;
      }
      case "credit":
        m.creditWindow = e.window;
        // The agent's own window (its credits), not the ceiling agreed at the handshake, is what it asks for.
        if (e.window + this.readAhead > this.maxHeld) {
          this.lines.windowOverHeld.report("window", { window: e.window, maxHeld: this.maxHeld, enough: e.window + this.readAhead });
        }
        return;
      case "agent-absent": {
        const drained = this.ledger.drain("session-lost", KernelCode.INVALID);
        this.log.level("warn", "no agent session within the grace period: answering INVALID until one comes", { drained: drained.length, graceMs: e.graceMs });
        return;
      }
      case "connection-refused":
        m.connectionsRefused++;
        this.lines.refused.report("refused", { from: e.from, handshaking: e.candidates });
        return;
      case "agent-refused":
        m.agentRefusals++;
        m.lastAgentRefusal = { reason: e.reason, from: e.from, atMs: Date.now() };
        // Keyed by the code: a peer can pick any number, but the keys stay a bounded set.
        this.lines.agentRefused.report(isLinkErrorCode(e.code) ? linkErrorName(e.code) : "other", { from: e.from, reason: e.reason });
        return;
      case "candidate-failed":
        m.connectionsRefused++;
        this.lines.handshakeFailed.report("failed", { from: e.from, reason: e.reason });
        return;
    }
  }

  /** Counts a takeover, and warns when they come often: each one ends a session and resends its groups. */
  private tookOver(): void {
    const m = this.metrics;
    m.takeovers++;
    m.recentTakeovers = [...m.recentTakeovers, performance.now()].slice(-FLAPPING_TAKEOVERS);
    if (m.flapping(performance.now())) this.lines.flapping.report("flapping", { takeovers: FLAPPING_TAKEOVERS, withinMs: FLAPPING_WINDOW_MS });
  }

  private armDeadline(): void {
    const next = this.ledger.nextDeadlineMs();
    if (next === null || next >= this.deadlineArmedFor) return;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineArmedFor = next;
    this.deadlineTimer = setTimeout(() => this.onDeadline(), Math.max(0, next - performance.now()));
  }

  private onDeadline(): void {
    this.deadlineTimer = null;
    this.deadlineArmedFor = Infinity;
    this.expire(performance.now());
    this.flow.schedule();
  }

  /** Answers by deadline the groups due at nowMs; tells the agent of those it held. */
  private expire(nowMs: number): void {
    const expired: LedgerEntry<D>[] = this.ledger.expire(nowMs);
    this.flow.cancelled(expired, pb.CancelReason.CANCEL_DEADLINE);
    this.armDeadline();
  }

  private emit(event: RelayEvent): void {
    this.events.emit("event", event);
  }
}
