// Assembles records into groups by cookie. The kernel delivers whole groups,
// but a stream-based source may split one across reads, so a partial group
// waits here until its LAST_PAGE record. A group with more pages than the
// limit is still answered once, as "oversized", without keeping its pages.
import { FaultGroup } from "./fault-group.js";
import { FaultRecord, RecordFlag } from "./fault-source.js";

export interface AssemblerEvents {
  group(group: FaultGroup): void;
  /** A group over the page limit: answer it INVALID. Its pages were not kept. */
  oversized(group: FaultGroup, pageCount: number): void;
}

interface Partial {
  group: FaultGroup;
  count: number;
}

export class GroupAssembler {
  private readonly partial = new Map<number, Partial>();

  constructor(
    private readonly sourceId: number,
    private readonly maxPages: number,
    private readonly events: AssemblerEvents,
  ) {}

  /** Groups still waiting for their last record. */
  get pending(): number {
    return this.partial.size;
  }

  push(records: FaultRecord[], nowMs: number): void {
    for (const r of records) {
      let p = this.partial.get(r.cookie);
      if (!p) {
        if (r.flags & RecordFlag.LAST_PAGE) {
          // The common case: a whole group in one record, no map traffic.
          this.events.group(this.newGroup(r, nowMs));
          continue;
        }
        p = { group: this.newGroup(r, nowMs), count: 1 };
        this.partial.set(r.cookie, p);
      } else {
        p.count++;
        if (p.count <= this.maxPages) p.group.pages.push({ addr: r.addr, perm: r.perm });
        else p.group.pages.length = 0;
      }
      if (r.flags & RecordFlag.LAST_PAGE) {
        this.partial.delete(r.cookie);
        p.group.readAtMs = nowMs;
        if (p.count > this.maxPages) this.events.oversized(p.group, p.count);
        else this.events.group(p.group);
      }
    }
  }

  /** Partial groups of a source that is going away: the caller answers them. */
  takePartial(): FaultGroup[] {
    const groups = [...this.partial.values()].map((p) => p.group);
    this.partial.clear();
    return groups;
  }

  private newGroup(r: FaultRecord, nowMs: number): FaultGroup {
    return {
      sourceId: this.sourceId,
      cookie: r.cookie,
      devId: r.devId,
      pasid: r.pasid,
      pasidValid: (r.flags & RecordFlag.PASID_VALID) !== 0,
      grpid: r.grpid,
      pages: [{ addr: r.addr, perm: r.perm }],
      readAtMs: nowMs,
    };
  }
}
