// An in-process fault source that keeps the kernel's answer contract: whole
// groups closed by LAST_PAGE, lowest-free cookies reused once answered, and
// refusal (the kernel's EINVAL) of an unknown or repeated cookie or a code
// other than 0/1. Used by `--source synthetic`, `iopfctl inject`, and tests
// that need no file descriptor.
import { CookieAllocator } from "../cookie-allocator.js";
import { FaultRecord, FaultSource, RecordFlag, ResponseEntry, WriteOutcome } from "../fault-source.js";

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
  delivered: number;
  answered: number;
  refused: number;
  outstanding: number;
}

export class SyntheticSource implements FaultSource {
  readonly description: string;
  private readonly cookies = new CookieAllocator();
  private onRecords: ((records: FaultRecord[]) => void) | null = null;
  private batch: FaultRecord[] = [];
  private flushScheduled = false;
  private readonly stats: SyntheticStats = { delivered: 0, answered: 0, refused: 0, outstanding: 0 };

  constructor(readonly id: number) {
    this.description = `synthetic:${id}`;
  }

  start(onRecords: (records: FaultRecord[]) => void): void {
    this.onRecords = onRecords;
    this.scheduleFlush();
  }

  /** Queues one group for delivery on the next turn; returns its cookie. */
  raise(g: SyntheticGroup): number {
    const cookie = this.cookies.allocate();
    const pages = Math.max(1, g.pages ?? 1);
    for (let i = 0; i < pages; i++) {
      const last = i === pages - 1;
      this.batch.push({
        flags: (g.pasid !== undefined ? RecordFlag.PASID_VALID : 0) | (last ? RecordFlag.LAST_PAGE : 0),
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
    this.scheduleFlush();
    return cookie;
  }

  writeAnswers(answers: ResponseEntry[]): WriteOutcome {
    const refused: WriteOutcome["refused"] = [];
    for (const a of answers) {
      if ((a.code !== 0 && a.code !== 1) || !this.cookies.release(a.cookie)) {
        refused.push({ cookie: a.cookie, reason: a.code !== 0 && a.code !== 1 ? `EINVAL: code ${a.code} is not 0 or 1` : `EINVAL: cookie ${a.cookie} is not waiting for an answer` });
        this.stats.refused++;
        continue;
      }
      this.stats.answered++;
    }
    return { refused };
  }

  snapshot(): SyntheticStats {
    return { ...this.stats, outstanding: this.cookies.outstanding };
  }

  isOutstanding(cookie: number): boolean {
    return this.cookies.isLive(cookie);
  }

  async close(): Promise<void> {
    this.onRecords = null;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.onRecords || this.batch.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const records = this.batch;
      this.batch = [];
      this.onRecords?.(records);
    });
  }
}
