// /proc/PID/maps as a sorted list of mappings, for the same check the
// kernel's own SVA fault handler makes (iommu_sva_handle_iopf): the address
// must lie in a mapping whose flags include every access requested.

export interface Mapping {
  start: number;
  /** Exclusive. */
  end: number;
  read: boolean;
  write: boolean;
  exec: boolean;
  /** MAP_SHARED: a write reaches the file or the shared memory object. */
  shared: boolean;
  /** The file, [heap], [stack], or "" for anonymous memory. */
  name: string;
}

const LINE = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([ps]) [0-9a-f]+ \S+ \d+\s*(.*)$/;

/**
 * Parses the text of /proc/PID/maps. Mappings that end above 2^53 are left
 * out: no page request address is looked up there (see procmem-handler.ts),
 * and only [vsyscall] lives that high on x86-64.
 */
export function parseMaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const end = parseInt(m[2] as string, 16);
    if (end > Number.MAX_SAFE_INTEGER) continue;
    out.push({
      start: parseInt(m[1] as string, 16),
      end,
      read: m[3] === "r",
      write: m[4] === "w",
      exec: m[5] === "x",
      shared: m[6] === "s",
      name: m[7] ?? "",
    });
  }
  return out;
}

/** The mapping containing address, by binary search (the kernel lists them in address order). */
export function findMapping(maps: Mapping[], address: number): Mapping | undefined {
  let lo = 0;
  let hi = maps.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = maps[mid] as Mapping;
    if (address < m.start) hi = mid - 1;
    else if (address >= m.end) lo = mid + 1;
    else return m;
  }
  return undefined;
}
