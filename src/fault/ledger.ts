// The ledger: every group read and not yet answered, with its relay tag,
// deadline and session. It guarantees exactly one answer per group: the only
// way out of the ledger is settle(), which answers once and forgets the
// group. Guest answers are matched by (session epoch, tag) and anything that
// does not match a live group is dropped and counted, never answered.
import { Fifo } from "./fifo.js";
import { AnswerOrigin, FaultGroup, KernelCode } from "./fault-group.js";

export interface AnswerSink {
  answer(group: FaultGroup, code: KernelCode, origin: AnswerOrigin): void;
}

export interface LedgerEntry {
  readonly group: FaultGroup;
  readonly tag: number;
  /** Monotonic milliseconds after which the relay answers by itself. */
  readonly deadlineMs: number;
  /** The code answered on expiry (per device; INVALID unless configured). */
  readonly deadlineCode: KernelCode;
  /** Admission order, to keep resends in the order groups were read. */
  readonly seq: number;
  state: "queued" | "sent" | "settled";
  /** Epoch of the session the group was last sent in; 0 while never sent. */
  epoch: number;
}

/** Why a guest answer was dropped. */
export type DropReason = "unknown-tag" | "foreign-session" | "late" | "duplicate";

export type OverflowPolicy = "reject-new" | "drop-oldest";

export interface LedgerLimits {
  /** Groups waiting for credit; beyond it the overflow policy answers one group. */
  maxQueued: number;
  overflow: OverflowPolicy;
  /** How many settled tags are remembered to tell late and duplicate answers from forged ones. */
  recentMemory: number;
}

export const DEFAULT_LEDGER_LIMITS: LedgerLimits = { maxQueued: 65536, overflow: "reject-new", recentMemory: 65536 };

interface Settled {
  tag: number;
  epoch: number;
  origin: AnswerOrigin;
}

export class Ledger {
  private readonly live = new Map<number, LedgerEntry>();
  /** Groups waiting to be sent: resends of a lost session first, then fresh ones. */
  private readonly resend = new Fifo<LedgerEntry>();
  private readonly fresh = new Fifo<LedgerEntry>();
  private queuedCount = 0;
  /** One FIFO per deadline duration: each is sorted by deadline, so expiry pops heads. */
  private readonly byDuration = new Map<number, Fifo<LedgerEntry>>();
  private readonly recent: (Settled | undefined)[];
  private readonly recentByTag = new Map<number, Settled>();
  private recentNext = 0;
  private nextTag = 1;
  private nextSeq = 1;

  constructor(
    private readonly sink: AnswerSink,
    private readonly limits: LedgerLimits = DEFAULT_LEDGER_LIMITS,
  ) {
    this.recent = new Array<Settled | undefined>(limits.recentMemory);
  }

  get size(): number {
    return this.live.size;
  }

  get queued(): number {
    return this.queuedCount;
  }

  get sent(): number {
    return this.live.size - this.queuedCount;
  }

  /** Takes a group in; it waits in the send queue until sent or settled. */
  admit(group: FaultGroup, deadlineMs: number, deadlineCode: KernelCode = KernelCode.INVALID): LedgerEntry | null {
    if (this.queuedCount >= this.limits.maxQueued) {
      if (this.limits.overflow === "reject-new") {
        this.sink.answer(group, KernelCode.INVALID, "overflow");
        return null;
      }
      const oldest = this.oldestQueued();
      if (oldest) this.settle(oldest, KernelCode.INVALID, "overflow");
    }
    const entry: LedgerEntry = { group, tag: this.allocateTag(), deadlineMs: group.readAtMs + deadlineMs, deadlineCode, seq: this.nextSeq++, state: "queued", epoch: 0 };
    this.live.set(entry.tag, entry);
    this.fresh.push(entry);
    this.queuedCount++;
    let byDeadline = this.byDuration.get(deadlineMs);
    if (!byDeadline) {
      byDeadline = new Fifo<LedgerEntry>();
      this.byDuration.set(deadlineMs, byDeadline);
    }
    byDeadline.push(entry);
    return entry;
  }

  /** Up to `max` queued groups, oldest first, now marked sent in `epoch`. */
  takeForSending(max: number, epoch: number): LedgerEntry[] {
    const out: LedgerEntry[] = [];
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
  expire(nowMs: number): LedgerEntry[] {
    const expired: LedgerEntry[] = [];
    for (;;) {
      const fifo = this.earliestFifo();
      const head = fifo?.peek();
      if (!fifo || !head || head.deadlineMs > nowMs) return expired;
      fifo.shift();
      this.settle(head, head.deadlineCode, "deadline");
      expired.push(head);
    }
  }

  /** The earliest deadline among live groups, or null when none. */
  nextDeadlineMs(): number | null {
    return this.earliestFifo()?.peek()?.deadlineMs ?? null;
  }

  /** The deadline FIFO whose head is due first, after dropping settled heads. */
  private earliestFifo(): Fifo<LedgerEntry> | null {
    let best: Fifo<LedgerEntry> | null = null;
    for (const fifo of this.byDuration.values()) {
      let head = fifo.peek();
      while (head && head.state === "settled") {
        fifo.shift();
        head = fifo.peek();
      }
      if (head && (best === null || head.deadlineMs < (best.peek() as LedgerEntry).deadlineMs)) best = fifo;
    }
    return best;
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

  /** Answers every live group that matches, with INVALID, by the given origin. */
  drain(origin: AnswerOrigin, match: (entry: LedgerEntry) => boolean = () => true): number {
    let n = 0;
    for (const entry of [...this.live.values()]) {
      if (!match(entry)) continue;
      this.settle(entry, KernelCode.INVALID, origin);
      n++;
    }
    return n;
  }

  entries(): IterableIterator<LedgerEntry> {
    return this.live.values();
  }

  private settle(entry: LedgerEntry, code: KernelCode, origin: AnswerOrigin): void {
    if (entry.state === "settled") return;
    if (entry.state === "queued") this.queuedCount--;
    entry.state = "settled";
    this.live.delete(entry.tag);
    this.remember({ tag: entry.tag, epoch: entry.epoch, origin });
    this.sink.answer(entry.group, code, origin);
  }

  private remember(s: Settled): void {
    const old = this.recent[this.recentNext];
    if (old && this.recentByTag.get(old.tag) === old) this.recentByTag.delete(old.tag);
    this.recent[this.recentNext] = s;
    this.recentByTag.set(s.tag, s);
    this.recentNext = (this.recentNext + 1) % this.recent.length;
  }

  private oldestQueued(): LedgerEntry | undefined {
    for (const fifo of [this.resend, this.fresh]) {
      for (let e = fifo.peek(); e; e = fifo.peek()) {
        if (e.state === "queued") return e;
        fifo.shift();
      }
    }
    return undefined;
  }

  private allocateTag(): number {
    // Tags wrap after 2^32 - 1; skip any still live (and 0, which a guest could send by default).
    for (;;) {
      const tag = this.nextTag;
      this.nextTag = this.nextTag === 0xffffffff ? 1 : this.nextTag + 1;
      if (!this.live.has(tag)) return tag;
    }
  }
}
