// What a guest IOMMU's page request and page response say, independent of
// any model's byte layout, and the bit-level helpers every layout shares.
// Records are little-endian 64-bit words: every model here (VT-d
// descriptors, SMMUv3 queue entries, virtio-iommu structures) defines them
// so. 64-bit words are BigInts because JS bit operators stop at 32 bits.

/** Permission bits; the same values in iommufd (IOMMU_PGFAULT_PERM_*), the guest link (Page.perm) and every model's record. */
export const Perm = { READ: 1, WRITE: 2, EXEC: 4, PRIV: 8 } as const;
export const PERM_MASK = 0xf;

/** One group as the guest sees it: guest identifiers only. */
export interface GuestGroup {
  /** virtio-iommu endpoint id, VT-d requester id, or SMMUv3 StreamID. */
  endpoint: number;
  /** Guest PASID; a record carries it even when pasidValid is false (hardware does too). */
  pasid: number;
  pasidValid: boolean;
  /** PRI page request group index. */
  groupIndex: number;
}

/** One page of a group. */
export interface GuestPage {
  /** Page address: bits [63:12] of the faulting address. A JS number is exact for every 4 KiB-aligned u64. */
  address: number;
  /** Bit set of Perm. */
  perm: number;
}

/** A decoded page request record. */
export interface PageRequestRecord extends GuestGroup, GuestPage {
  /** Last page of its group: the group is answered once, after this one. */
  last: boolean;
}

/** A decoded page response, with the model's own answer code. */
export interface PageResponseRecord extends GuestGroup {
  nativeCode: number;
}

/** The largest value each group field of a model's records can hold. */
export interface FieldLimits {
  endpoint: number;
  pasid: number;
  groupIndex: number;
}

const PAGE_MASK = 0xffff_ffff_ffff_f000n;
const U64_LIMIT = 2 ** 64;

export function isU64(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value < U64_LIMIT;
}

/** Bits [63:12] of an address. Throws on anything that is not a u64 integer. */
export function pageBits(model: string, address: number): bigint {
  if (!isU64(address)) {
    throw new RangeError(`${model} page request: address must be an integer 0..2^64-1, got ${address}`);
  }
  return BigInt(address) & PAGE_MASK;
}

/**
 * Bits [63:12] of a u64 address as a number, without BigInt (the hot path
 * builds one per page): the remainder and the difference of doubles are
 * exact, so this equals Number(pageBits(...)) for every u64 a number holds.
 */
export function pageAddress(address: number): number {
  return address - (address % 4096);
}

/** Throws unless value is an integer 0..max; names the model and field so a caller can tell which input was wrong. */
export function checkField(model: string, field: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${model} ${field} must be an integer 0..${max} (0x${max.toString(16)}), got ${value}`);
  }
}

export function checkGroup(model: string, group: GuestGroup, limits: FieldLimits): void {
  checkField(model, "endpoint", group.endpoint, limits.endpoint);
  checkField(model, "pasid", group.pasid, limits.pasid);
  checkField(model, "group index", group.groupIndex, limits.groupIndex);
}

/** A view of a record after checking its size; the message names the model, the record and both sizes. */
export function checkRecordSize(model: string, what: string, bytes: Uint8Array, size: number): DataView {
  if (bytes.length !== size) {
    throw new RangeError(`${model} ${what}: expected ${size} bytes, got ${bytes.length}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** value shifted to start at bit lo of a 64-bit word; the caller has checked that it fits its field. */
export function bits(value: number | boolean, lo: number): bigint {
  return BigInt(Number(value)) << BigInt(lo);
}

/** Bits [lo, lo+width) of a 64-bit word. */
export function getBits(word: bigint, lo: number, width: number): number {
  return Number((word >> BigInt(lo)) & ((1n << BigInt(width)) - 1n));
}

export function getBit(word: bigint, bit: number): boolean {
  return ((word >> BigInt(bit)) & 1n) === 1n;
}

/** The page address held in bits [63:12] of a word, as an exact JS number. */
export function getPage(word: bigint): number {
  return Number(word & PAGE_MASK);
}

/** Little-endian 64-bit words laid out one after another, as a record. */
export function wordsToBytes(words: readonly bigint[]): Uint8Array {
  const bytes = new Uint8Array(words.length * 8);
  const view = new DataView(bytes.buffer);
  words.forEach((word, i) => view.setBigUint64(i * 8, word, true));
  return bytes;
}

export function wordAt(view: DataView, index: number): bigint {
  return view.getBigUint64(index * 8, true);
}
