// The relay's core: fault groups in from the sources, page requests out to
// the agent within its credit window, answers back to the sources exactly
// once (from the agent, a deadline, or draining). It knows the link only as
// a HostLink and the kernel only as FaultSources.
import { EventEmitter } from "node:events";
import { AnswerOrigin, FaultGroup, KernelCode } from "../fault/fault-group.js";
import { FaultRecord, FaultSource } from "../fault/fault-source.js";
import { GroupAssembler } from "../fault/group-assembler.js";
import { RecoveredGroup } from "../fault/journal-replay.js";
import { DEFAULT_LEDGER_LIMITS, Ledger, LedgerEntry, LedgerLimits } from "../fault/ledger.js";
import { HostLink, HostLinkHandler, HostLinkOptions, HostSession } from "../link/host-link.js";
import { pb, WirePageResponse } from "../link/messages.js";
import { Feature } from "../link/negotiation.js";
import { ByteStream } from "../link/transport/byte-stream.js";
import { iopf } from "../gen/guest_link.js";
import { AnswerObserver, AnswerWriter } from "./answer-writer.js";
import { RelayMetrics } from "./relay-metrics.js";
import { linkToKernel } from "../viommu/response-code.js";

export interface DeviceDeadline {
  ms: number;
  code: KernelCode;
}

/** How the relay sees devices: the device map and the vIOMMU encoding, behind two calls. */
export interface DeviceModel<D> {
  /** The guest's view of a group's device, or null for a device the map does not know. */
  resolve(group: FaultGroup): D | null;
  deadline(device: D): DeviceDeadline;
  /** The page request the guest sees: relay tag, guest ids, no host cookie or dev_id. */
  pageRequest(group: FaultGroup, device: D, tag: number, budgetUs: number, rawRecords: boolean): iopf.link.v1.IPageRequest;
}

export interface RelayCoreOptions<D> {
  devices: DeviceModel<D>;
  link: Omit<HostLinkOptions, "nextEpoch">;
  ledger?: LedgerLimits;
  maxPagesPerGroup?: number;
  /** How long the groups of a lost session wait for a new session before being answered. */
  sessionGraceMs?: number;
  /** Sees answers before they are written (the journal) and after they are decided. */
  observer?: AnswerObserver;
  log: (msg: string, fields?: object) => void;
}

export type RelayEvent =
  | { kind: "group-read"; devId: number; pasid: number; pages: number; cookie: number }
  | { kind: "sent"; count: number; epoch: number }
  | { kind: "answered"; devId: number; pasid: number; code: KernelCode; origin: AnswerOrigin; latencyUs: number }
  | { kind: "dropped"; reason: string; tag: number }
  | { kind: "session-up"; epoch: number; agent: string }
  | { kind: "session-down"; epoch: number; reason: string };

const NO_OBSERVER: AnswerObserver = { groupsRead: () => undefined, beforeWrite: () => undefined, afterWrite: () => undefined, answered: () => undefined };

export class RelayCore<D> {
  readonly metrics = new RelayMetrics();
  /** Emits "event" (RelayEvent) for watchers; nothing is built when nobody listens. */
  readonly events = new EventEmitter();
  private readonly sources = new Map<number, FaultSource>();
  private readonly assemblers = new Map<number, GroupAssembler>();
  private readonly ledger: Ledger;
  private readonly writer: AnswerWriter;
  private link: HostLink | null = null;
  private session: HostSession | null = null;
  private window = 0;
  private writable = true;
  /** Tags that expired while the agent held them and the agent cannot be told (no CANCELS). */
  private readonly heldAfterExpiry = new Set<number>();
  private pumpScheduled = false;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private deadlineArmedFor = Infinity;
  private graceTimer: NodeJS.Timeout | null = null;
  /** No agent for longer than the grace period: groups are answered at once. */
  private agentAbsent = false;
  private epochCounter = Math.floor(Math.random() * 2 ** 31) * 1024;
  private stopping = false;
  private readonly observer: AnswerObserver;
  /** Groups assembled from the records of the current read, journaled together. */
  private readBatch: FaultGroup[] = [];

  constructor(private readonly options: RelayCoreOptions<D>) {
    const observer = options.observer ?? NO_OBSERVER;
    this.observer = observer;
    this.writer = new AnswerWriter(this.sources, this.metrics, {
      groupsRead: (groups) => observer.groupsRead(groups),
      beforeWrite: (id, answers) => observer.beforeWrite(id, answers),
      afterWrite: (id, answers) => observer.afterWrite(id, answers),
      answered: (group, code, origin) => {
        observer.answered(group, code, origin);
        if (this.events.listenerCount("event") > 0) {
          this.emit({ kind: "answered", devId: group.devId, pasid: group.pasid, code, origin, latencyUs: Math.round((performance.now() - group.readAtMs) * 1000) });
        }
      },
    }, options.log);
    this.ledger = new Ledger(this.writer, options.ledger ?? DEFAULT_LEDGER_LIMITS);
    this.startGrace();
  }

  get inFlight(): number {
    return this.ledger.size;
  }

  get queued(): number {
    return this.ledger.queued;
  }

  get currentSession(): HostSession | null {
    return this.session;
  }

  addSource(source: FaultSource): void {
    if (this.sources.has(source.id)) throw new Error(`fault source id ${source.id} is already in use (by ${this.sources.get(source.id)?.description}); give each source its own id`);
    this.sources.set(source.id, source);
    const assembler = new GroupAssembler(source.id, this.options.maxPagesPerGroup ?? 256, {
      group: (g) => this.readBatch.push(g),
      oversized: (g, count) => {
        this.options.log("group over the page limit answered INVALID", { devId: g.devId, cookie: g.cookie, pages: count });
        this.observer.groupsRead([{ group: g, deadlineWallMs: Date.now() }]);
        this.metrics.groups++;
        this.writer.answer(g, KernelCode.INVALID, "oversized");
      },
    });
    this.assemblers.set(source.id, assembler);
    source.start(
      (records) => this.onRecords(assembler, records),
      (err) => this.options.log("fault source failed", { source: source.description, error: err.message }),
    );
  }

  /**
   * Groups read by an earlier run and never answered (from the journal):
   * forwarded again while their device's deadline, counted from when they
   * were read, allows, else answered INVALID. Their cookies are still
   * unanswered, so the kernel has not reused them.
   */
  adoptRecovered(groups: RecoveredGroup[]): void {
    const now = performance.now();
    const wallMinusMono = Date.now() - now;
    const live: FaultGroup[] = [];
    for (const { group, readWallMs } of groups) {
      const device = this.options.devices.resolve(group);
      // readAtMs on this process's monotonic clock, so that the ledger's deadline counts from the read.
      const readAtMs = readWallMs - wallMinusMono;
      if (device === null || readAtMs + this.options.devices.deadline(device).ms <= now || !this.sources.has(group.sourceId)) {
        this.writer.answer({ ...group, readAtMs: now }, KernelCode.INVALID, "recovered");
        continue;
      }
      live.push({ ...group, readAtMs });
    }
    this.admitBatch(live);
  }

  /**
   * Serves an agent on a new stream. A second agent replaces the first: the
   * old stream is closed and its session's groups go to the new one.
   */
  attach(stream: ByteStream): HostLink {
    if (this.link) this.link.close(pb.GoodbyeReason.GOODBYE_RESTART, "another agent connected");
    const link: HostLink = new HostLink(stream, this.linkHandler((): boolean => this.link === link), {
      ...this.options.link,
      nextEpoch: () => ++this.epochCounter,
    });
    this.link = link;
    link.start();
    return link;
  }

  /** A device is gone: answer its groups INVALID (the kernel does the same at detach). */
  removeDevice(devId: number): number {
    return this.drain("device-removed", (e) => e.group.devId === devId, pb.CancelReason.CANCEL_DEVICE_REMOVED);
  }

  /**
   * Stops reading, answers every group read (sent, queued, or delivered by a
   * source while it stopped), says goodbye, and writes the answers.
   */
  async shutdown(): Promise<void> {
    this.stopping = true;
    // Sources first: records they had read arrive while they close, and are
    // answered as "shutdown" by onGroup.
    await Promise.all([...this.sources.values()].map((s) => s.close()));
    for (const assembler of this.assemblers.values()) {
      for (const g of assembler.takePartial()) this.writer.answer(g, KernelCode.INVALID, "shutdown");
    }
    this.drain("shutdown", () => true, pb.CancelReason.CANCEL_SHUTDOWN);
    this.writer.flush();
    this.clearTimers();
    this.link?.close(pb.GoodbyeReason.GOODBYE_SHUTDOWN, "relay shutting down");
    this.link = null;
    this.sources.clear();
  }

  private onRecords(assembler: GroupAssembler, records: FaultRecord[]): void {
    this.metrics.records += records.length;
    assembler.push(records, performance.now());
    const groups = this.readBatch;
    this.readBatch = [];
    this.admitBatch(groups);
  }

  /** Journals a batch of groups, then routes each: the journal record comes first. */
  private admitBatch(groups: FaultGroup[]): void {
    if (groups.length === 0) return;
    const wallMinusMono = Date.now() - performance.now();
    const devices = groups.map((g) => this.options.devices.resolve(g));
    this.observer.groupsRead(groups.map((group, i) => {
      const device = devices[i] ?? null;
      const ms = device === null ? 0 : this.options.devices.deadline(device).ms;
      return { group, deadlineWallMs: group.readAtMs + ms + wallMinusMono };
    }));
    groups.forEach((g, i) => this.onGroup(g, devices[i] ?? null));
  }

  private onGroup(group: FaultGroup, device: D | null): void {
    this.metrics.groups++;
    if (this.events.listenerCount("event") > 0) {
      this.emit({ kind: "group-read", devId: group.devId, pasid: group.pasid, pages: group.pages.length, cookie: group.cookie });
    }
    if (this.stopping) {
      this.writer.answer(group, KernelCode.INVALID, "shutdown");
      return;
    }
    if (device === null) {
      this.writer.answer(group, KernelCode.INVALID, "unknown-device");
      return;
    }
    if (this.agentAbsent) {
      this.writer.answer(group, KernelCode.INVALID, "session-lost");
      return;
    }
    const deadline = this.options.devices.deadline(device);
    if (this.ledger.admit(group, deadline.ms, deadline.code)) {
      this.armDeadline();
      this.schedulePump();
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Sends queued groups while the session, the window and the stream allow. */
  private pump(): void {
    const link = this.link;
    const session = this.session;
    if (!link || !session || !this.writable) return;
    const room = this.window - this.ledger.sent - this.heldAfterExpiry.size;
    if (room <= 0 || this.ledger.queued === 0) return;
    const entries = this.ledger.takeForSending(room, session.epoch);
    if (entries.length === 0) return;
    const raw = (session.agreement.features & Feature.RAW_RECORDS) !== 0;
    const now = performance.now();
    const requests: iopf.link.v1.IPageRequest[] = [];
    for (const e of entries) {
      const device = this.options.devices.resolve(e.group);
      if (device === null) {
        this.drain("device-removed", (x) => x === e, pb.CancelReason.CANCEL_DEVICE_REMOVED);
        continue;
      }
      requests.push(this.options.devices.pageRequest(e.group, device, e.tag, Math.max(0, Math.round((e.deadlineMs - now) * 1000)), raw));
    }
    const { writable, tooLarge } = link.sendPageRequests(requests);
    this.writable = writable;
    this.metrics.groupsSent += requests.length - tooLarge.length;
    if (tooLarge.length > 0) {
      // Too many pages for one frame of the agreed max_payload: the agent can never receive it.
      const tags = new Set(tooLarge.map((r) => r.tag));
      this.ledger.drain("oversized", (e) => tags.has(e.tag));
      this.options.log("groups too large for one frame of the agreed max_payload answered INVALID", { count: tooLarge.length, maxPayload: session.agreement.limits.maxPayload });
    }
    if (this.events.listenerCount("event") > 0) this.emit({ kind: "sent", count: requests.length, epoch: session.epoch });
  }

  private onPageResponses(epoch: number, responses: WirePageResponse[]): void {
    for (const r of responses) {
      const { code, unknown } = linkToKernel(r.code);
      if (unknown) this.metrics.unknownCodes++;
      const outcome = this.ledger.guestAnswer(epoch, r.tag, code);
      if (outcome === "answered") continue;
      if (outcome === "late") this.heldAfterExpiry.delete(r.tag);
      this.metrics.countDrop(outcome);
      if (this.events.listenerCount("event") > 0) this.emit({ kind: "dropped", reason: outcome, tag: r.tag });
    }
    this.schedulePump();
  }

  private drain(origin: AnswerOrigin, match: (e: LedgerEntry) => boolean, reason: iopf.link.v1.CancelReason): number {
    const epoch = this.session?.epoch;
    const cancelled: number[] = [];
    const n = this.ledger.drain(origin, (e) => {
      if (!match(e)) return false;
      if (e.state === "sent" && e.epoch === epoch) cancelled.push(e.tag);
      return true;
    });
    this.tellAgentCancelled(cancelled, reason);
    return n;
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
    const epoch = this.session?.epoch;
    const expired = this.ledger.expire(performance.now());
    const cancelled = expired.filter((e) => e.epoch === epoch && epoch !== undefined).map((e) => e.tag);
    this.tellAgentCancelled(cancelled, pb.CancelReason.CANCEL_DEADLINE);
    this.armDeadline();
    this.schedulePump();
  }

  private tellAgentCancelled(tags: number[], reason: iopf.link.v1.CancelReason): void {
    const session = this.session;
    if (tags.length === 0 || !session || !this.link) return;
    if (session.agreement.features & Feature.CANCELS) this.link.sendCancels(tags, reason);
    else for (const t of tags) this.heldAfterExpiry.add(t);
  }

  private linkHandler(isCurrent: () => boolean): HostLinkHandler {
    return {
      sessionUp: (session) => {
        if (!isCurrent()) return;
        this.session = session;
        this.window = session.agreement.limits.maxInFlight;
        this.writable = true;
        this.heldAfterExpiry.clear();
        this.agentAbsent = false;
        this.clearGrace();
        this.metrics.sessionsUp++;
        this.metrics.sessionState = "up";
        this.metrics.creditWindow = this.window;
        this.options.log("agent session up", { epoch: session.epoch, agent: session.agentSoftware, limits: session.agreement.limits, features: session.agreement.features });
        this.emit({ kind: "session-up", epoch: session.epoch, agent: session.agentSoftware });
        this.schedulePump();
      },
      pageResponses: (epoch, responses) => this.onPageResponses(epoch, responses),
      credit: (_epoch, window) => {
        this.window = window;
        this.metrics.creditWindow = window;
        this.schedulePump();
      },
      sessionDown: (epoch, reason) => {
        if (this.session?.epoch !== epoch) return;
        this.session = null;
        this.heldAfterExpiry.clear();
        const requeued = this.ledger.requeueSession(epoch);
        this.metrics.sessionsDown++;
        this.metrics.sessionState = "waiting";
        this.metrics.lastSessionDownReason = reason;
        this.options.log("agent session down", { epoch, reason, requeued });
        this.emit({ kind: "session-down", epoch, reason });
        this.startGrace();
      },
      writable: () => {
        this.writable = true;
        this.schedulePump();
      },
      closed: () => {
        if (isCurrent()) this.link = null;
      },
    };
  }

  private startGrace(): void {
    this.clearGrace();
    this.graceTimer = setTimeout(() => {
      this.graceTimer = null;
      if (this.session) return;
      this.agentAbsent = true;
      const n = this.ledger.drain("session-lost");
      this.options.log("no agent session within the grace period: answering INVALID until one comes", { drained: n, graceMs: this.options.sessionGraceMs ?? 2000 });
    }, this.options.sessionGraceMs ?? 2000);
    this.graceTimer.unref();
  }

  private clearGrace(): void {
    if (this.graceTimer) clearTimeout(this.graceTimer);
    this.graceTimer = null;
  }

  private clearTimers(): void {
    this.clearGrace();
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  private emit(event: RelayEvent): void {
    this.events.emit("event", event);
  }
}
