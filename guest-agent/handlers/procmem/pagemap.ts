// One entry of /proc/PID/pagemap (Documentation/admin-guide/mm/pagemap.rst):
// a u64 per virtual page telling whether it is mapped and how.

export interface PageState {
  /** Bit 63: a page table entry maps the page (the shared zero page counts). */
  present: boolean;
  /** Bit 61: a file page or shared anonymous (shmem) page. */
  fileOrShared: boolean;
  /** Bit 57: write-protected by userfaultfd; a write would trap to its handler. */
  uffdWriteProtected: boolean;
  /** Bit 56: mapped by this process only; never set for the shared zero page. */
  exclusive: boolean;
}

export function decodePagemapEntry(entry: bigint): PageState {
  const bit = (n: number): boolean => ((entry >> BigInt(n)) & 1n) === 1n;
  return { present: bit(63), fileOrShared: bit(61), uffdWriteProtected: bit(57), exclusive: bit(56) };
}

/** Byte offset of a page's entry in the pagemap file. */
export function pagemapOffset(address: number, pageSize: number): number {
  return Math.floor(address / pageSize) * 8;
}
