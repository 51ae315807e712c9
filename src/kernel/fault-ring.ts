// The memory the pump's worker and the main thread share: a SharedArrayBuffer
// allocated once, holding control words and a ring of fixed-size slots.
//
// The worker read()s fault records straight into a free slot: the kernel's
// 40-byte layout is already compact, so it is kept as is and decoded on the
// main thread, which must build the JavaScript objects there anyway (objects
// cannot cross threads without a copy). So a record is copied once, by the
// kernel, and the worker does nothing per record.
//
// Publication: the worker fills a slot, then Atomics.store(HEAD, head + 1)
// and notify; the main thread waits with Atomics.waitAsync on HEAD, reads
// the slots between its TAIL and HEAD, then Atomics.store(TAIL) and notify,
// which wakes a worker waiting for space (Atomics.wait on TAIL). HEAD and
// TAIL count slots forever and wrap as int32: `(head - tail) | 0` is the fill.
// The seq_cst Atomics.store orders the slot's bytes before the new HEAD.

/** Int32 indices of the control words. */
export const CTRL_HEAD = 0;
export const CTRL_TAIL = 1;
/** Set to 1 by the main thread; the worker returns from its loop when it sees it. */
export const CTRL_STOP = 2;
/**
 * Pausing the worker's journal appends while the main thread rewrites the
 * journal: the main thread stores a fresh non-zero generation in PAUSE; the
 * worker, between reads, closes its journal fd and stores that generation in
 * PAUSED (the ack), then waits until PAUSE is 0 again and reopens the file.
 * A generation, not a flag, so that a pause asked right after a resume is
 * never taken for the previous pause's ack.
 */
export const CTRL_PAUSE = 3;
export const CTRL_PAUSED = 4;
/** In PAUSED: the worker is leaving or left, and appends nothing any more. */
export const PAUSED_FOR_GOOD = -1;
const CTRL_BYTES = 64; // a cache line, so slot data never shares one with the counters

/** A slot's header, in int32 words: what the slot holds and for which fd. */
export const SLOT_KIND = 0;
export const SLOT_FD = 1;
/** SLOT_RECORDS: bytes of whole records. SLOT_FD_ERROR: poll revents. */
export const SLOT_BYTES_OR_REVENTS = 2;
/** SLOT_FD_ERROR: the errno of a failed read, or 0. */
export const SLOT_ERRNO = 3;
const SLOT_HEADER_BYTES = 16;

export const KIND_RECORDS = 1;
/** The fd reported POLLERR/POLLHUP/POLLNVAL or a read failed; the worker no longer watches it. */
export const KIND_FD_ERROR = 2;

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
