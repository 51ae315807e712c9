// The pump's worker thread: blocks in poll() on the fault fds plus an eventfd
// the main thread writes to wake or stop it, and read()s ready fds straight
// into the shared ring (see fault-ring.ts). It never touches records one by
// one, and it is stopped only by returning from its loop: Worker.terminate()
// while an ffi-rs call runs crashes the process.
//
// With a journal, each read() of a journaled fd is appended to it as a RAW
// record before the slot is published (read-journal.ts): the main thread can
// only answer a group the journal already holds, so a replay never sees an
// answer before its group.
import { workerData, parentPort } from "node:worker_threads";
import * as libc from "./libc.js";
import { EINTR, EINVAL } from "./errno.js";
import { ReadJournal } from "./read-journal.js";
import { RecordReader } from "./record-reader.js";
import {
  CTRL_HEAD, CTRL_PAUSE, CTRL_PAUSED, CTRL_STOP, CTRL_TAIL, KIND_FD_ERROR, KIND_RECORDS, PAUSED_FOR_GOOD, SLOT_BYTES_OR_REVENTS, SLOT_ERRNO, SLOT_FD, SLOT_KIND,
  slotDataOffset, slotOffset, type RingLayout,
} from "./fault-ring.js";

export interface PumpWorkerData {
  sab: SharedArrayBuffer;
  layout: RingLayout;
  wakeFd: number;
  fds: number[];
  /** Where reads of these fds are journaled; null: no journal. */
  journal: { path: string; fds: number[] } | null;
  /** Per fd, bytes a previous reader read and never handed out: handed out first. */
  carry: [number, Uint8Array][];
}

// A fd is read at most this many slots in a row before the others get a turn.
const SLOTS_PER_FD_PER_ROUND = 8;
// A fd whose poll says readable but whose reads return nothing this many times
// in a row holds a group too large for a slot (older kernels return 0 then,
// 6.12 returns EINVAL): report it instead of spinning.
const EMPTY_READABLE_LIMIT = 3;

const { sab, layout, wakeFd, fds, journal, carry } = workerData as PumpWorkerData;
const ctrl = new Int32Array(sab, 0, 16);
const slotData = Array.from({ length: layout.slots }, (_, i) => Buffer.from(sab, slotDataOffset(layout, i), layout.dataBytes));
const wakeBuf = Buffer.alloc(8);
const readJournal = journal ? new ReadJournal(journal.path) : null;
const journaledFds = new Set(journal?.fds ?? []);
const seeds = new Map(carry);
// A failed append is thrown once the slot it belongs to is published, so the
// records already read still reach the relay.
let journalFailure: Error | null = null;

interface Watched {
  reader: RecordReader;
  emptyReadable: number;
  onRead: ((bytes: Buffer) => void) | undefined;
}
let watched: Watched[] = fds.map((fd) => ({
  reader: new RecordReader(fd, seeds.get(fd)),
  emptyReadable: 0,
  onRead: readJournal && journaledFds.has(fd) ? (bytes: Buffer) => journalRead(readJournal, fd, bytes) : undefined,
}));
let head = Atomics.load(ctrl, CTRL_HEAD);

function journalRead(j: ReadJournal, fd: number, bytes: Buffer): void {
  try {
    j.append(fd, bytes, Date.now());
  } catch (err) {
    journalFailure ??= err as Error;
  }
}

function stopping(): boolean {
  return Atomics.load(ctrl, CTRL_STOP) !== 0;
}

/**
 * Honours a pause of the journal (see CTRL_PAUSE): closes the file, acks,
 * sleeps until resumed, reopens. Called only between reads, so no read is
 * ever left unjournaled while paused. False when asked to stop instead.
 */
function pausePoint(): boolean {
  let acked = 0;
  for (;;) {
    if (stopping()) return false;
    const asked = Atomics.load(ctrl, CTRL_PAUSE);
    if (asked === 0) break;
    if (asked !== acked) {
      if (acked === 0) readJournal?.close();
      acked = asked;
      Atomics.store(ctrl, CTRL_PAUSED, asked);
      Atomics.notify(ctrl, CTRL_PAUSED);
    }
    Atomics.wait(ctrl, CTRL_PAUSE, asked, 1000);
  }
  if (acked !== 0) readJournal?.open();
  return true;
}

/** Waits until the main thread frees a slot; false when asked to stop instead. */
function waitForSpace(): boolean {
  for (;;) {
    if (!pausePoint()) return false;
    const tail = Atomics.load(ctrl, CTRL_TAIL);
    if (((head - tail) | 0) < layout.slots) return true;
    Atomics.wait(ctrl, CTRL_TAIL, tail, 1000);
  }
}

function publish(kind: number, fd: number, bytesOrRevents: number, errno: number): void {
  const words = new Int32Array(sab, slotOffset(layout, head), 4);
  words[SLOT_KIND] = kind;
  words[SLOT_FD] = fd;
  words[SLOT_BYTES_OR_REVENTS] = bytesOrRevents;
  words[SLOT_ERRNO] = errno;
  head = (head + 1) | 0;
  Atomics.store(ctrl, CTRL_HEAD, head);
  Atomics.notify(ctrl, CTRL_HEAD);
  if (journalFailure) throw journalFailure;
}

function freeSlot(): Buffer {
  return slotData[((head >>> 0) % layout.slots)]!;
}

/** Reads fd until it is empty or its turn ends; returns false when the fd failed and was reported. */
function drain(w: Watched): boolean {
  for (let i = 0; i < SLOTS_PER_FD_PER_ROUND; i++) {
    if (!waitForSpace()) return true;
    const n = w.reader.readInto(freeSlot(), layout.dataBytes, w.onRead);
    if (n < 0) {
      publish(KIND_FD_ERROR, w.reader.fd, 0, -n);
      return false;
    }
    if (n === 0) {
      if (i === 0 && ++w.emptyReadable >= EMPTY_READABLE_LIMIT) {
        publish(KIND_FD_ERROR, w.reader.fd, 0, EINVAL);
        return false;
      }
      return true;
    }
    w.emptyReadable = 0;
    publish(KIND_RECORDS, w.reader.fd, n, 0);
    // A short read left the fd empty or holding a group too large for the room left: poll says which.
    if (!w.reader.lastReadFull) return true;
  }
  return true;
}

/** Seeded records go out before the first poll: their fd may stay quiet for a long time. */
function handOutSeeds(): void {
  for (const w of watched) {
    while (w.reader.seeded && waitForSpace()) publish(KIND_RECORDS, w.reader.fd, w.reader.readInto(freeSlot(), layout.dataBytes), 0);
  }
}

/** struct pollfd[]: the eventfd first, then every watched fd, all for POLLIN. */
function pollFds(): Buffer {
  const pfds = Buffer.alloc(libc.POLLFD_SIZE * (watched.length + 1));
  [wakeFd, ...watched.map((w) => w.reader.fd)].forEach((fd, i) => {
    pfds.writeInt32LE(fd, i * libc.POLLFD_SIZE);
    pfds.writeInt16LE(libc.POLLIN, i * libc.POLLFD_SIZE + 4);
  });
  return pfds;
}

function run(): void {
  handOutSeeds();
  let pfds = pollFds();
  while (!stopping()) {
    const ready = libc.poll(pfds, watched.length + 1, -1);
    if (ready === -EINTR) continue;
    if (ready < 0) throw new Error(`fault pump: poll failed with errno ${-ready}; the pump stops`);
    if (pfds.readInt16LE(6) !== 0) libc.read(wakeFd, wakeBuf, 8); // reset the eventfd counter
    if (!pausePoint()) return;
    const failed = new Set<Watched>();
    watched.forEach((w, i) => {
      const revents = pfds.readInt16LE((i + 1) * libc.POLLFD_SIZE + 6);
      if (revents === 0) return;
      // Read what is there first: a socket whose peer left may still hold records (POLLIN|POLLHUP).
      if (revents & libc.POLLIN && !drain(w)) {
        failed.add(w);
        return;
      }
      const bad = revents & (libc.POLLERR | libc.POLLHUP | libc.POLLNVAL);
      if (bad && (!(revents & libc.POLLIN) || w.reader.lastReadEmpty)) {
        if (waitForSpace()) publish(KIND_FD_ERROR, w.reader.fd, revents, 0);
        failed.add(w);
      }
    });
    if (failed.size > 0) {
      watched = watched.filter((w) => !failed.has(w));
      pfds = pollFds();
    }
  }
}

readJournal?.open();
parentPort!.postMessage("ready");
try {
  run();
} finally {
  // fds belong to the process, not the thread: the journal's would outlive the worker.
  readJournal?.close();
  // Gone: appends nothing any more, which is what any pause, now or later, waits for.
  Atomics.store(ctrl, CTRL_PAUSED, PAUSED_FOR_GOOD);
  Atomics.notify(ctrl, CTRL_PAUSED);
}
