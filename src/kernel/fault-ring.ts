// The memory the pump's worker and the main thread share: a SharedArrayBuffer
// allocated once, holding control words and a ring of fixed-size slots.
//
// The worker read()s fault records straight into a free slot: the kernel's
// 40-byte layout is already compact, so it is kept as is and decoded on the
// main thread, which must build the JavaScript objects there anyway (objects
// cannot cross threads without a copy). So a record is copied once, by the
// kernel, and the worker only counts LAST_PAGE flags (the groups it read).
//
// Publication: the worker fills a slot, then Atomics.store(HEAD, head + 1)
// and notify; the main thread waits with Atomics.waitAsync on HEAD, reads
// the slots between its TAIL and HEAD, then Atomics.store(TAIL) and notify,
// which wakes a worker waiting for space (Atomics.wait on TAIL). HEAD and
// TAIL count slots forever and wrap as int32: `(head - tail) | 0` is the fill.
// The seq_cst Atomics.store orders the slot's bytes before the new HEAD.
//
// Groups held: the worker counts the groups it read (READ), the main thread
// those it no longer holds (RELEASED: answered and written, or ended by the
// kernel). `(READ - RELEASED) | 0` is what the relay holds, ring included.
// The worker reads only while that is below LIMIT (the relay's flow control)
// and a read cannot take it past the crash bound (fault-pump.ts).

/** Int32 indices of the control words. */
export const CTRL_HEAD = 0;
export const CTRL_TAIL = 1;
/** Set to 1 by the main thread; the worker returns from its loop when it sees it. */
export const CTRL_STOP = 2;
/** Groups the worker read (records with LAST_PAGE), counted forever, wrapping as int32. */
export const CTRL_READ = 3;
/** Groups the main thread released, counted forever, wrapping as int32. */
export const CTRL_RELEASED = 4;
/** The most groups the relay wants to hold now; the worker does not read at or above it. */
export const CTRL_LIMIT = 5;
/** Bumped by the main thread whenever RELEASED, LIMIT, STOP or the command queue changes. */
export const CTRL_CHANGE = 6;
/** 1 while the worker waits on CHANGE (held at its limit); the main thread then notifies. */
export const CTRL_WAITING = 7;
const CTRL_BYTES = 64; // a cache line, so slot data never shares one with the counters

/** A slot's header, in int32 words: what the slot holds and for which fd. */
export const SLOT_KIND = 0;
export const SLOT_FD = 1;
/** RECORDS: bytes of whole records. FD_ERROR: poll revents. SWEPT: answers accepted (-1: unknown, a stream). */
export const SLOT_A = 2;
/** FD_ERROR: the errno of a failed read, or 0. SWEPT: the highest cookie answered. */
export const SLOT_B = 3;
const SLOT_HEADER_BYTES = 16;

export const KIND_RECORDS = 1;
/** The fd failed (poll or read); the worker no longer watches it. */
export const KIND_FD_ERROR = 2;
/** The fd's cookies 1..B were answered SUCCESS before its first read. */
export const KIND_SWEPT = 3;
/** The worker no longer watches the fd: nothing more comes from it. */
export const KIND_REMOVED = 4;
/** In SLOT_B of an FD_ERROR: the fd's first waiting group is larger than any read the bound allows. */
export const ERRNO_GROUP_TOO_LARGE = -1;

export interface RingLayout {
  readonly slots: number;
  readonly recordsPerSlot: number;
  /** Bytes from one slot's start to the next (header + data, a multiple of 8). */
  readonly slotStride: number;
  readonly dataBytes: number;
  readonly totalBytes: number;
}

export function ringLayout(slots: number, recordsPerSlot: number, recordSize: number): RingLayout {
  // A power of two, so slot = seq mod slots stays continuous when the int32 counters wrap.
  if (!Number.isInteger(slots) || slots < 2 || (slots & (slots - 1)) !== 0) {
    throw new RangeError(`fault ring: expected a power of two of at least 2 slots, got ${slots}`);
  }
  if (!Number.isInteger(recordsPerSlot) || recordsPerSlot < 1) {
    throw new RangeError(`fault ring: expected at least 1 record per slot, got ${recordsPerSlot}`);
  }
  const dataBytes = recordsPerSlot * recordSize;
  const slotStride = SLOT_HEADER_BYTES + Math.ceil(dataBytes / 8) * 8;
  return { slots, recordsPerSlot, slotStride, dataBytes, totalBytes: CTRL_BYTES + slots * slotStride };
}

/** Byte offset of the slot for sequence number seq (HEAD or TAIL value). */
export function slotOffset(layout: RingLayout, seq: number): number {
  return CTRL_BYTES + ((seq >>> 0) % layout.slots) * layout.slotStride;
}

/** Byte offset of that slot's record data. */
export function slotDataOffset(layout: RingLayout, seq: number): number {
  return slotOffset(layout, seq) + SLOT_HEADER_BYTES;
}
