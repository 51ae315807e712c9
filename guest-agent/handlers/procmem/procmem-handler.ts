// procmem: a PASID bound to a guest process. Each page of a group is checked
// against the process's mappings the way the kernel's own SVA handler checks
// a VMA, then faulted in through /proc/PID/mem, so the device's retry finds
// a page table entry. The process's memory contents are never changed.
//
// Reads: reading one byte of the page faults it in for reading. That never
// changes anything (an untouched anonymous page maps the shared zero page).
//
// Writes need a write fault, and without ptrace or process_madvise the only
// way to get one from outside is to write. So a write request:
//  1. needs "w" in the mapping's own flags, read from maps just before the
//     write: /proc/PID/mem writes with FOLL_FORCE, which would otherwise
//     write into a read-only private mapping (through a private copy).
//  2. is skipped when pagemap shows the page present, mapped by this
//     process only, not file-backed or shmem, and not userfaultfd
//     write-protected: such a page is normally writable already (anonymous
//     and exclusive). Where that guess is wrong (write-protected after a
//     fork whose child has exited, KSM, NUMA hinting), the device faults
//     again on the same page: a write request for a page skipped within the
//     last SKIP_MEMORY_MS is then rewritten, so the guess costs at most one
//     extra round trip, never a livelock.
//  3. otherwise reads the last byte of the 4 KiB page and writes the same
//     value back, in one synchronous pread/pwrite pair with no JavaScript
//     between them. The last byte is the least likely to be written at that
//     moment: headers, counters and the start of a buffer being filled sit
//     at the start of a page.
// What remains: if the process stores a different value to that byte
// between our pread and the store inside our pwrite, our pwrite puts the
// old value back and the process's store is lost. The window is the pwrite's
// write fault (allocate and zero or copy a page, or a 2 MiB huge page under
// THP) plus two syscalls, a few microseconds; only a byte the process
// changes in that window is at risk. A write to a MAP_SHARED file page
// dirties it (the file is written back unchanged, and its mtime may move),
// as the device's own write would. A process that cannot accept any of this
// routes its write requests to itself with "writes": "app".
import { WirePage, WirePageRequest } from "../../../src/link/messages.js";
import { Logger } from "../../log.js";
import { Counters } from "../../stats.js";
import { FaultContext, FaultHandler, INVALID, Perm, permString, ResponseCode, SUCCESS } from "../handler.js";
import { findMapping, Mapping } from "./maps.js";
import { hex, ProcessMemory } from "./process-memory.js";
import { ProcessTable } from "./process-table.js";

/** PRI pages are 4 KiB whatever the CPU page size. */
const PRI_PAGE = 4096;
/** How long a skipped write is remembered, so that a repeat fault gets a real write fault. */
export const SKIP_MEMORY_MS = 2000;
const SKIP_MEMORY_ENTRIES = 4096;

function pageBase(address: number): number {
  return address - (address % PRI_PAGE);
}

/** Why the mapping does not allow the access, or null when it does. */
function denial(maps: Mapping[], page: WirePage): string | null {
  // Addresses above 2^53 are not exact as numbers, and no user mapping is
  // there: x86-64 user space ends at 2^47 (2^56 with 5-level paging, only on
  // an explicit mmap hint), arm64's at 2^52.
  if (page.address > Number.MAX_SAFE_INTEGER) return "above-2^53";
  const m = findMapping(maps, page.address);
  if (!m) return "unmapped";
  if (page.perm & Perm.READ && !m.read) return "no-read";
  if (page.perm & Perm.WRITE && !m.write) return "no-write";
  if (page.perm & Perm.EXEC && !m.exec) return "no-exec";
  return null;
}

export class ProcmemFaults {
  /** `${pid}:${page}` of writes skipped as already writable, oldest first. */
  private readonly skipped = new Map<string, number>();

  constructor(
    private readonly table: ProcessTable,
    private readonly counters: Counters,
    private readonly log: Logger,
  ) {}

  /** A handler for groups of process pid; write groups go to writesTo when given. */
  handlerFor(pid: number, writesTo: FaultHandler | null): FaultHandler {
    return {
      handle: (req, ctx) => {
        if (writesTo && req.pages.some((p) => p.perm & Perm.WRITE)) return writesTo.handle(req, ctx);
        return this.handle(pid, req, ctx, writesTo === null);
      },
    };
  }

  private async handle(pid: number, req: WirePageRequest, ctx: FaultContext, writes: boolean): Promise<ResponseCode> {
    const proc = this.table.get(pid);
    const first = this.check(proc, req, false);
    if (first !== null) return first;
    for (const page of req.pages) {
      await proc.touchForRead(pageBase(page.address));
      if (ctx.signal.aborted) return INVALID;
    }
    const writePages = req.pages.filter((p) => p.perm & Perm.WRITE);
    if (writePages.length === 0 || !writes) return SUCCESS;
    // The reads awaited: look again, so a mapping made read-only meanwhile is not written with FOLL_FORCE.
    const second = this.check(proc, { ...req, pages: writePages }, true);
    if (second !== null) return second;
    for (const page of writePages) this.faultForWrite(proc, pageBase(page.address));
    return SUCCESS;
  }

  /** INVALID (counted and logged) when any page is not allowed; null when all are. */
  private check(proc: ProcessMemory, req: WirePageRequest, again: boolean): ResponseCode | null {
    const maps = proc.readMappings();
    if (maps.length === 0) {
      this.table.forget(proc.pid, "the process has exited", true);
      this.counters.add("procmem.invalid.exited");
      return INVALID;
    }
    for (const page of req.pages) {
      const why = denial(maps, page);
      if (why === null) continue;
      this.counters.add(`procmem.invalid.${why}`);
      this.log.debug("procmem: access not allowed by the process's mappings", { pid: proc.pid, tag: req.tag, address: hex(page.address), perm: permString(page.perm), why, recheck: again });
      return INVALID;
    }
    return null;
  }

  private faultForWrite(proc: ProcessMemory, base: number): void {
    const key = `${proc.pid}:${base}`;
    const now = performance.now();
    const skippedAt = this.skipped.get(key);
    this.skipped.delete(key);
    if (skippedAt === undefined || now - skippedAt > SKIP_MEMORY_MS) {
      const s = proc.pageState(base);
      if (s.present && s.exclusive && !s.fileOrShared && !s.uffdWriteProtected) {
        this.remember(key, now);
        this.counters.add("procmem.write.skipped");
        return;
      }
    }
    proc.rewriteByte(base + PRI_PAGE - 1);
    this.counters.add("procmem.write.rewritten");
  }

  private remember(key: string, now: number): void {
    this.skipped.set(key, now);
    if (this.skipped.size > SKIP_MEMORY_ENTRIES) {
      const oldest = this.skipped.keys().next().value as string;
      this.skipped.delete(oldest);
    }
  }
}
