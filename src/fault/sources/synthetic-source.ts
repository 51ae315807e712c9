// An in-process fault source that keeps the kernel's contract: groups wait
// in a list until the relay has room for them (its read limit), get their
// cookie when delivered (the kernel's read), lowest free first and reused
// once answered, whole groups closed by LAST_PAGE, and an unknown or
// repeated cookie or a code other than 0/1 is refused (the kernel's EINVAL).
// Used by `--source synthetic`, `iopfctl inject`, and tests that need no
// file descriptor.
import { CookieAllocator } from "../cookie-allocator.js";
import { Fifo } from "../fifo.js";
import { FaultAnswer, FaultRecord, FaultSource, RecordFlag, SourceListener, WriteOutcome } from "../fault-source.js";

export interface SyntheticGroup {
  devId: number;
  /** Absent: no PASID. */
  pasid?: number;
  grpid: number;
  perm: number;
  addr: number;
  /** Records in the group, one page each (default 1). */
  pages?: number;
}

export interface SyntheticStats {
  /** Raised and not yet delivered: the kernel's list. */
  waiting: number;
  delivered: number;
  answered: number;
  refused: number;
  outstanding: number;
}

export class SyntheticSource implements FaultSource {
  readonly description: string;
  private readonly cookies = new CookieAllocator();
  private listener: SourceListener | null = null;
  private readonly waiting = new Fifo<SyntheticGroup>();
  private limit = 0;
  private flushScheduled = false;
  private readonly stats = { delivered: 0, answered: 0, refused: 0 };

  constructor(readonly id: number) {
    this.description = `synthetic:${id}`;
  }

  start(listener: SourceListener): void {
    this.listener = listener;
    this.scheduleFlush();
  }

  /** Queues one group; it is delivered once the relay has room. */
  raise(g: SyntheticGroup): void {
    this.waiting.push(g);
    this.scheduleFlush();
  }

  writeAnswers(answers: FaultAnswer[]): WriteOutcome {
    const refused: WriteOutcome["refused"] = [];
    for (const a of answers) {
      if ((a.code !== 0 && a.code !== 1) || !this.cookies.release(a.cookie)) {
        refused.push({ cookie: a.cookie, reason: a.code !== 0 && a.code !== 1 ? `EINVAL: code ${a.code} is not 0 or 1` : `EINVAL: cookie ${a.cookie} is not waiting for an answer` });
        this.stats.refused++;
        continue;
      }
      this.stats.answered++;
    }
    this.scheduleFlush();
    return { written: answers.length - refused.length, refused, queued: 0, gone: null };
  }

  setReadLimit(groups: number): void {
    this.limit = groups;
    this.scheduleFlush();
  }

  /** Nothing ends a synthetic group but its answer. */
  forget(): void {}

  snapshot(): SyntheticStats {
    return { ...this.stats, waiting: this.waiting.length, outstanding: this.cookies.outstanding };
  }

  isOutstanding(cookie: number): boolean {
    return this.cookies.isLive(cookie);
  }

  async close(): Promise<void> {
    this.listener = null;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.listener || this.waiting.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const records: FaultRecord[] = [];
      while (this.waiting.length > 0 && this.cookies.outstanding < this.limit) this.deliver(this.waiting.shift()!, records);
      if (records.length > 0) this.listener?.records(records);
    });
  }

  private deliver(g: SyntheticGroup, out: FaultRecord[]): void {
    const cookie = this.cookies.allocate();
    const pages = Math.max(1, g.pages ?? 1);
    for (let i = 0; i < pages; i++) {
      out.push({
        flags: (g.pasid !== undefined ? RecordFlag.PASID_VALID : 0) | (i === pages - 1 ? RecordFlag.LAST_PAGE : 0),
        devId: g.devId,
        pasid: g.pasid ?? 0,
        grpid: g.grpid,
        perm: g.perm,
        addr: g.addr + i * 4096,
        length: 0,
        cookie,
      });
    }
    this.stats.delivered++;
  }
}
