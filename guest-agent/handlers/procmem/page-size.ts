// The CPU page size, which pagemap indexes by. Node has no sysconf; the
// kernel states it per mapping in smaps. (PRI pages are always 4 KiB, but an
// arm64 guest may run 16 or 64 KiB pages.)
import { readFileSync } from "node:fs";

let cached: number | null = null;

export function cpuPageSize(): number {
  if (cached === null) {
    const m = /KernelPageSize:\s+(\d+) kB/.exec(readFileSync("/proc/self/smaps", "utf8"));
    if (!m) throw new Error("/proc/self/smaps has no KernelPageSize line; is /proc mounted? procmem needs it");
    cached = Number(m[1]) * 1024;
  }
  return cached;
}
