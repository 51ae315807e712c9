// The ledger: every group the relay read and has not answered, with its
// relay tag, deadline and session. It guarantees exactly one outcome per
// group: a group enters once (admit) and leaves once, either with an answer
// handed to the sink (settle: by the guest, its deadline, or a drain; or at
// admission, for a group that cannot go to the guest), or ended without one
// when the kernel answered it itself or its source went away.
//
// Groups are keyed by (source, cookie) from admission until their answer is
// written: the kernel gives a cookie again only once it is free, so a cookie
// read again while the ledger holds it means the kernel ended the old group
// (a detach or replace answers INVALID with no event) and gave its cookie to
// the new one. The old group's answer must then never be written: it would
// land on the new group.
//
// Guest answers are matched by (session epoch, tag), and anything that does
// not match a live group is dropped and counted, never answered.
import { Fifo } from "./fifo.js";
import { AnswerOrigin, EndReason, FaultGroup, KernelCode } from "./fault-group.js";

export interface LedgerEntry<D = unknown> {
  readonly group: FaultGroup;
  /** What the relay resolved the group's device to, once at admission (null: answered at admission). */
  readonly device: D | null;
  /** The relay's tag for the guest; 0 for a group answered at admission. */
  readonly tag: number;
  /** Monotonic milliseconds after which the relay answers by itself. */
  readonly deadlineMs: number;
  /** The code answered on expiry (per device; INVALID unless configured). */
  readonly deadlineCode: KernelCode;
  /** Admission order, to keep resends in the order groups were read. */
  readonly seq: number;
  /**
   * queued: waiting for the agent's credit; sent: the agent holds it;
   * answering: answered, the write pending; done: written, or ended.
   */
  state: "queued" | "sent" | "answering" | "done";
  /** Epoch of the session the group was last sent in; 0 while never sent. */
  epoch: number;
  /** Once answering: the answer and who decided it. */
  code: KernelCode;
  origin: AnswerOrigin | null;
}

/** Where the ledger's outcomes go: the answer writer and the metrics. */
export interface AnswerSink<D = unknown> {
  /** An answer to write; once written (or handed to its source) the writer calls ledger.written(entry). */
  answer(entry: LedgerEntry<D>): void;
  /** A group that ends with no answer from the relay. */
  ended(entry: LedgerEntry<D>, reason: EndReason): void;
}

/** How a group is admitted: queued for the guest with a deadline, or answered at once. */
export type Route =
  | { deadlineMs: number; deadlineCode: KernelCode }
  | { answer: KernelCode; origin: AnswerOrigin };

/** Why a guest answer was dropped. */
export type DropReason = "unknown-tag" | "foreign-session" | "late" | "duplicate";

export interface LedgerLimits {
  /** How many settled tags are remembered to tell late and duplicate answers from forged ones. */
  recentMemory: number;
}

export const DEFAULT_LEDGER_LIMITS: LedgerLimits = { recentMemory: 65536 };

interface Settled {
  tag: number;
  epoch: number;
  origin: AnswerOrigin | EndReason;
}

/** A group's key: its source's id (below 2^16) and its cookie (a u32), as one exact number. */
function keyOf(group: FaultGroup): number {
  return group.sourceId * 0x1_0000_0000 + group.cookie;
}

export class Ledger<D = unknown> {
  /** Every group from admission until its answer is written or it ended, by (source, cookie). */
  private readonly byKey = new Map<number, LedgerEntry<D>>();
  /** Groups queued or sent, by tag. */
  private readonly live = new Map<number, LedgerEntry<D>>();
  /**
   * Tags answered by their deadline while the agent held them, when it could
   * not be told (no CANCELS): they count against its window until it answers
   * them, late, or the session ends. Kept apart from the bounded memory of
   * settled tags, so a late answer always gives the credit back.
   */
  private readonly owed = new Map<number, number>();
  /** Groups waiting to be sent: resends of a lost session first, then fresh ones. */
  private readonly resend = new Fifo<LedgerEntry<D>>();
  private readonly fresh = new Fifo<LedgerEntry<D>>();
  private queuedCount = 0;
  /** One FIFO per deadline duration: each is sorted by deadline, so expiry pops heads. */
  private readonly byDuration = new Map<number, Fifo<LedgerEntry<D>>>();
  private readonly recent: (Settled | undefined)[];
  private readonly recentByTag = new Map<number, Settled>();
  private recentNext = 0;
  private nextTag = 1;
  private nextSeq = 1;

  constructor(
    private readonly sink: AnswerSink<D>,
    limits: LedgerLimits = DEFAULT_LEDGER_LIMITS,
  ) {
    this.recent = new Array<Settled | undefined>(limits.recentMemory);
  }

  /** Groups read and not yet written or ended: what the relay holds. */
  get held(): number {
    return this.byKey.size;
  }

  /** Groups queued or sent. */
  get size(): number {
    return this.live.size;
  }

  get queued(): number {
    return this.queuedCount;
  }

  get sent(): number {
    return this.live.size - this.queuedCount;
  }

  get owedCount(): number {
    return this.owed.size;
  }

  /**
   * Takes a group in. When its (source, cookie) is already held, the kernel
   * ended that older group: it is ended here too (returned, so that the agent
   * can be told) and its answer will never be written.
   */
  admit(group: FaultGroup, route: Route, device: D | null): { entry: LedgerEntry<D>; ended: LedgerEntry<D> | null } {
    const key = keyOf(group);
    const old = this.byKey.get(key) ?? null;
    if (old) this.end(old, "kernel-ended");
    const queue = "deadlineMs" in route;
    const entry: LedgerEntry<D> = {
      group,
      device: queue ? device : null,
      tag: queue ? this.allocateTag() : 0,
      deadlineMs: queue ? group.readAtMs + route.deadlineMs : group.readAtMs,
      deadlineCode: queue ? route.deadlineCode : route.answer,
      seq: this.nextSeq++,
      state: "queued",
      epoch: 0,
      code: queue ? route.deadlineCode : route.answer,
      origin: null,
    };
    this.byKey.set(key, entry);
    if (!queue) {
      // Never queued, never sent: straight to its answer.
      entry.state = "answering";
      entry.origin = route.origin;
      this.sink.answer(entry);
      return { entry, ended: old };
    }
    this.live.set(entry.tag, entry);
    this.fresh.push(entry);
    this.queuedCount++;
    let byDeadline = this.byDuration.get(route.deadlineMs);
    if (!byDeadline) {
      byDeadline = new Fifo<LedgerEntry<D>>();
      this.byDuration.set(route.deadlineMs, byDeadline);
    }
    byDeadline.push(entry);
    return { entry, ended: old };
  }

  /** Up to `max` queued groups, oldest first, now marked sent in `epoch`. */
  takeForSending(max: number, epoch: number): LedgerEntry<D>[] {
    const out: LedgerEntry<D>[] = [];
    while (out.length < max) {
      const entry = this.resend.shift() ?? this.fresh.shift();
      if (!entry) break;
      if (entry.state !== "queued") continue;
      entry.state = "sent";
      entry.epoch = epoch;
      this.queuedCount--;
      out.push(entry);
    }
    return out;
  }

  /** A guest answer: settles the group when the tag is live and was sent in this epoch. */
  guestAnswer(epoch: number, tag: number, code: KernelCode): "answered" | DropReason {
    if (this.owed.get(tag) === epoch) {
      this.owed.delete(tag);
      return "late";
    }
    const entry = this.live.get(tag);
    if (entry && entry.state === "sent" && entry.epoch === epoch) {
      this.settle(entry, code, "guest");
      return "answered";
    }
    if (entry) return "foreign-session";
    const past = this.recentByTag.get(tag);
    if (!past) return "unknown-tag";
    if (past.epoch !== epoch) return "foreign-session";
    return past.origin === "guest" ? "duplicate" : "late";
  }

  /** Answers every group whose deadline is at or before nowMs, earliest first; returns them. */
  expire(nowMs: number): LedgerEntry<D>[] {
    const expired: LedgerEntry<D>[] = [];
    for (;;) {
      const fifo = this.earliestFifo();
      const head = fifo?.peek();
      if (!fifo || !head || head.deadlineMs > nowMs) return expired;
      fifo.shift();
      const wasSent = head.state === "sent";
      this.settle(head, head.deadlineCode, "deadline");
      if (wasSent) expired.push(head);
    }
  }

  /** These tags, answered while the agent of `epoch` held them, count against its window until it answers them. */
  owe(entries: readonly LedgerEntry<D>[], epoch: number): void {
    for (const e of entries) if (e.epoch === epoch) this.owed.set(e.tag, epoch);
  }

  /** A session ended: nothing is owed by its agent any more. */
  forgiveOwed(): void {
    this.owed.clear();
  }

  /** The earliest deadline among live groups, or null when none. */
  nextDeadlineMs(): number | null {
    return this.earliestFifo()?.peek()?.deadlineMs ?? null;
  }

  /**
   * The session of `epoch` ended: its sent groups go back to the front of the
   * send queue, in read order, to be sent again to the next session (their
   * deadlines keep running). Returns how many.
   */
  requeueSession(epoch: number): number {
    const back = [...this.live.values()].filter((e) => e.state === "sent" && e.epoch === epoch).sort((a, b) => a.seq - b.seq);
    for (const entry of back) entry.state = "queued";
    this.queuedCount += back.length;
    this.resend.unshiftAll(back);
    return back.length;
  }

  /** Answers every queued or sent group that matches, with `code`, by `origin`; returns them. */
  drain(origin: AnswerOrigin, code: KernelCode, match: (entry: LedgerEntry<D>) => boolean = () => true): LedgerEntry<D>[] {
    const drained: LedgerEntry<D>[] = [];
    for (const entry of [...this.live.values()]) {
      if (!match(entry)) continue;
      this.settle(entry, code, origin);
      drained.push(entry);
    }
    return drained;
  }

  /** Ends, with no answer, every group held from a source (its answers can no longer reach it); returns them. */
  endSource(sourceId: number, reason: EndReason): LedgerEntry<D>[] {
    const ended = [...this.byKey.values()].filter((e) => e.group.sourceId === sourceId);
    for (const e of ended) this.end(e, reason);
    return ended;
  }

  /** The sink wrote (or handed to its source) this answer: the group is no longer held. */
  written(entry: LedgerEntry<D>): void {
    if (entry.state !== "answering") return;
    entry.state = "done";
    const key = keyOf(entry.group);
    if (this.byKey.get(key) === entry) this.byKey.delete(key);
  }

  entries(): IterableIterator<LedgerEntry<D>> {
    return this.live.values();
  }

  /** The deadline FIFO whose head is due first, after dropping settled heads. */
  private earliestFifo(): Fifo<LedgerEntry<D>> | null {
    let best: Fifo<LedgerEntry<D>> | null = null;
    for (const fifo of this.byDuration.values()) {
      let head = fifo.peek();
      while (head && head.state !== "queued" && head.state !== "sent") {
        fifo.shift();
        head = fifo.peek();
      }
      if (head && (best === null || head.deadlineMs < (best.peek() as LedgerEntry<D>).deadlineMs)) best = fifo;
    }
    return best;
  }

  private leaveQueues(entry: LedgerEntry<D>): void {
    if (entry.state === "queued") this.queuedCount--;
    if (entry.tag !== 0 && this.live.get(entry.tag) === entry) this.live.delete(entry.tag);
  }

  private settle(entry: LedgerEntry<D>, code: KernelCode, origin: AnswerOrigin): void {
    if (entry.state === "answering" || entry.state === "done") return;
    this.leaveQueues(entry);
    entry.state = "answering";
    entry.code = code;
    entry.origin = origin;
    if (entry.tag !== 0) this.remember({ tag: entry.tag, epoch: entry.epoch, origin });
    this.sink.answer(entry);
  }

  private end(entry: LedgerEntry<D>, reason: EndReason): void {
    if (entry.state === "done") return;
    this.leaveQueues(entry);
    entry.state = "done";
    const key = keyOf(entry.group);
    if (this.byKey.get(key) === entry) this.byKey.delete(key);
    if (entry.tag !== 0) this.remember({ tag: entry.tag, epoch: entry.epoch, origin: reason });
    this.sink.ended(entry, reason);
  }

  private remember(s: Settled): void {
    const old = this.recent[this.recentNext];
    if (old && this.recentByTag.get(old.tag) === old) this.recentByTag.delete(old.tag);
    this.recent[this.recentNext] = s;
    this.recentByTag.set(s.tag, s);
    this.recentNext = (this.recentNext + 1) % this.recent.length;
  }

  private allocateTag(): number {
    // Tags wrap after 2^32 - 1; skip any still live or owed (and 0, which a guest could send by default).
    for (;;) {
      const tag = this.nextTag;
      this.nextTag = this.nextTag === 0xffffffff ? 1 : this.nextTag + 1;
      if (!this.live.has(tag) && !this.owed.has(tag)) return tag;
    }
  }
}
