// The memory of one bound guest process, reached through three /proc files
// opened once. Each open file holds a reference to the process's mm, so a
// pid that is reused after the process exits can never redirect faults into
// another process: reads through the old files see an empty address space.
import { closeSync, openSync, read, readSync, writeSync } from "node:fs";
import { decodePagemapEntry, PageState, pagemapOffset } from "./pagemap.js";
import { Mapping, parseMaps } from "./maps.js";

const MAPS_CHUNK = 64 * 1024;

export class ProcessMemory {
  private closed = false;
  /** Reads on the thread pool; the fds are closed only when none is left, so a number never names a reused fd. */
  private reading = 0;

  private constructor(
    readonly pid: number,
    private readonly mem: number,
    private readonly maps: number,
    private readonly pagemap: number,
    private readonly pageSize: number,
  ) {}

  /**
   * Opens /proc/PID/{mem,maps,pagemap}. Opening mem needs ptrace access to
   * the process (root, or the same user with Yama ptrace_scope 0).
   */
  static open(pid: number, pageSize: number): ProcessMemory {
    const fds: number[] = [];
    try {
      fds.push(openSync(`/proc/${pid}/mem`, "r+"));
      fds.push(openSync(`/proc/${pid}/maps`, "r"));
      fds.push(openSync(`/proc/${pid}/pagemap`, "r"));
    } catch (err) {
      for (const fd of fds) closeSync(fd);
      const e = err as NodeJS.ErrnoException;
      const hint = e.code === "ENOENT" ? "the process does not exist (any more)" : e.code === "EACCES" || e.code === "EPERM" ? "run the agent as root or as the process's user with ptrace allowed" : "check /proc";
      throw new Error(`cannot open the memory of pid ${pid}: ${e.message}; ${hint}`, { cause: err });
    }
    return new ProcessMemory(pid, fds[0] as number, fds[1] as number, fds[2] as number, pageSize);
  }

  /** The current mappings; empty once the process has exited. */
  readMappings(): Mapping[] {
    const chunks: Buffer[] = [];
    let pos = 0;
    for (;;) {
      const buf = Buffer.allocUnsafe(MAPS_CHUNK);
      let n: number;
      try {
        n = readSync(this.maps, buf, 0, buf.length, pos);
      } catch (err) {
        // The mm is gone: recent kernels say ESRCH, older ones give an empty file.
        if ((err as NodeJS.ErrnoException).code === "ESRCH") return [];
        throw err;
      }
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      pos += n;
    }
    return parseMaps(Buffer.concat(chunks).toString("latin1"));
  }

  pageState(address: number): PageState {
    const entry = Buffer.alloc(8);
    const n = readSync(this.pagemap, entry, 0, 8, pagemapOffset(address, this.pageSize));
    if (n !== 8) throw new Error(`pagemap of pid ${this.pid} gave ${n} of 8 bytes at ${hex(address)}; the process may have exited`);
    return decodePagemapEntry(entry.readBigUInt64LE(0));
  }

  /**
   * Reads one byte at address, which makes the kernel fault the page in for
   * reading (an untouched anonymous page maps the shared zero page). Runs on
   * the thread pool: a file page may need disk I/O.
   */
  touchForRead(address: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`the memory of pid ${this.pid} is closed`));
    this.reading++;
    return new Promise((resolve, reject) => {
      read(this.mem, Buffer.alloc(1), 0, 1, address, (err, n) => {
        if (--this.reading === 0 && this.closed) this.closeFds();
        if (err) reject(new Error(`reading pid ${this.pid} at ${hex(address)}: ${err.message}`, { cause: err }));
        else if (n !== 1) reject(new Error(`reading pid ${this.pid} at ${hex(address)} gave ${n} bytes; the process has exited`));
        else resolve();
      });
    });
  }

  /**
   * Writes back the byte just read at address, back to back in one
   * synchronous pread/pwrite pair, which makes the kernel take a write
   * fault on the page. See procmem-handler.ts for what this may race with.
   */
  rewriteByte(address: number): void {
    const b = Buffer.alloc(1);
    const r = readSync(this.mem, b, 0, 1, address);
    const w = r === 1 ? writeSync(this.mem, b, 0, 1, address) : 0;
    if (w !== 1) throw new Error(`rewriting the byte of pid ${this.pid} at ${hex(address)}: read ${r}, wrote ${w} of 1; the process has exited or unmapped it`);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.reading === 0) this.closeFds();
  }

  private closeFds(): void {
    for (const fd of [this.mem, this.maps, this.pagemap]) closeSync(fd);
  }
}

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}
