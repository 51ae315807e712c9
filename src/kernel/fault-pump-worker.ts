// The pump's worker thread: blocks in poll() on the fault fds plus an eventfd
// the main thread writes to wake it, and read()s ready fds straight into the
// shared ring (see fault-ring.ts). It touches a record only to count the
// groups it read, and it is stopped only by returning from its loop:
// Worker.terminate() while an ffi-rs call runs crashes the process.
//
// Fds come and go at runtime (commands on a MessagePort, taken after each
// wake-up). An fd added with `sweep` first has its cookies answered SUCCESS
// (sweep.ts): a previous reader may have died holding groups.
//
// Reads are bounded twice, from the control words: while the relay holds
// LIMIT groups or more it wants no more (flow control), and no read may
// take what it holds past `heldBound`, the bound a restarted relay's sweep
// covers. A kernel fd whose first waiting group does not fit a slot is read
// again with a larger buffer, doubling up to `heldBound` records; the bytes
// are then handed out over several slots (the relay joins a group's records
// by cookie).
import { workerData, parentPort, receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import * as libc from "./libc.js";
import { EINTR, EINVAL } from "./errno.js";
import { RecordReader, type FdKind } from "./record-reader.js";
import { sweepCookies } from "./sweep.js";
import { SyscallError } from "./errno.js";
import { countLastPages, FAULT_RECORD_SIZE } from "./uapi-structs.js";
import {
  CTRL_CHANGE, CTRL_HEAD, CTRL_LIMIT, CTRL_READ, CTRL_RELEASED, CTRL_STOP, CTRL_TAIL, CTRL_WAITING,
  ERRNO_GROUP_TOO_LARGE, KIND_FD_ERROR, KIND_RECORDS, KIND_REMOVED, KIND_SWEPT, SLOT_A, SLOT_B, SLOT_FD, SLOT_KIND,
  slotDataOffset, slotOffset, type RingLayout,
} from "./fault-ring.js";

export type PumpCommand =
  | { op: "add"; fd: number; kind: FdKind; sweep: boolean }
  | { op: "remove"; fd: number };

export interface PumpWorkerData {
  sab: SharedArrayBuffer;
  layout: RingLayout;
  wakeFd: number;
  commands: MessagePort;
  /** The most groups held (read and not released) a read may leave: maxHeld plus one read. */
  heldBound: number;
}

// A fd is read at most this many slots in a row before the others get a turn.
const SLOTS_PER_FD_PER_ROUND = 8;

const { sab, layout, wakeFd, commands, heldBound } = workerData as PumpWorkerData;
const ctrl = new Int32Array(sab, 0, 16);
const view = new DataView(sab);
const slotData = Array.from({ length: layout.slots }, (_, i) => Buffer.from(sab, slotDataOffset(layout, i), layout.dataBytes));
const wakeBuf = Buffer.alloc(8);
/** For a read larger than a slot; grown on demand. */
let bigBuf = Buffer.alloc(0);

interface Watched {
  reader: RecordReader;
  /** Records the next read asks for: a slot's worth, or more while the first waiting group does not fit. */
  want: number;
}
let watched: Watched[] = [];
let head = Atomics.load(ctrl, CTRL_HEAD);

function stopping(): boolean {
  return Atomics.load(ctrl, CTRL_STOP) !== 0;
}

function held(): number {
  return (Atomics.load(ctrl, CTRL_READ) - Atomics.load(ctrl, CTRL_RELEASED)) | 0;
}

/** Whether a read of `records` records may happen now. */
function mayRead(records: number): boolean {
  const h = held();
  return h < Atomics.load(ctrl, CTRL_LIMIT) && h + records <= heldBound;
}

/** Waits until the main thread frees a slot. Data already read is always handed out, even when stopping. */
function waitForSpace(): void {
  for (;;) {
    const tail = Atomics.load(ctrl, CTRL_TAIL);
    if (((head - tail) | 0) < layout.slots) return;
    Atomics.wait(ctrl, CTRL_TAIL, tail, 1000);
  }
}

function publish(kind: number, fd: number, a: number, b: number): void {
  const words = new Int32Array(sab, slotOffset(layout, head), 4);
  words[SLOT_KIND] = kind;
  words[SLOT_FD] = fd;
  words[SLOT_A] = a;
  words[SLOT_B] = b;
  head = (head + 1) | 0;
  Atomics.store(ctrl, CTRL_HEAD, head);
  Atomics.notify(ctrl, CTRL_HEAD);
}

function freeSlot(): Buffer {
  return slotData[((head >>> 0) % layout.slots)]!;
}

/** Counts the groups of `bytes` of records at `offset` of the ring as read. */
function countRead(offset: number, bytes: number): void {
  Atomics.add(ctrl, CTRL_READ, countLastPages(view, offset, bytes / FAULT_RECORD_SIZE));
}

/** Hands out a read larger than a slot over as many slots as it needs. */
function publishBig(fd: number, bytes: number): void {
  for (let off = 0; off < bytes; off += layout.dataBytes) {
    const chunk = Math.min(layout.dataBytes, bytes - off);
    waitForSpace();
    bigBuf.copy(freeSlot(), 0, off, off + chunk);
    countRead(slotDataOffset(layout, head), chunk);
    publish(KIND_RECORDS, fd, chunk, 0);
  }
}

type Drained = "done" | "blocked" | "failed";

/** The first waiting group did not fit `w.want` records: ask for more next time, or give up at the bound. */
function grow(w: Watched): boolean {
  if (w.want >= heldBound) {
    waitForSpace();
    publish(KIND_FD_ERROR, w.reader.fd, 0, ERRNO_GROUP_TOO_LARGE);
    return false;
  }
  w.want = Math.min(w.want * 2, heldBound);
  return true;
}

/** Reads fd until it is empty, its turn ends, or the limits stop it. */
function drain(w: Watched): Drained {
  const slotRecords = layout.recordsPerSlot;
  for (let i = 0; i < SLOTS_PER_FD_PER_ROUND; i++) {
    if (stopping()) return "done";
    if (!mayRead(w.want)) return "blocked";
    waitForSpace();
    const big = w.want > slotRecords;
    if (big && bigBuf.length < w.want * FAULT_RECORD_SIZE) bigBuf = Buffer.alloc(w.want * FAULT_RECORD_SIZE);
    const n = w.reader.readInto(big ? bigBuf : freeSlot(), w.want * FAULT_RECORD_SIZE);
    if (n === -EINVAL && w.reader.kind === "kernel") {
      if (!grow(w)) return "failed";
      continue;
    }
    if (n < 0) {
      waitForSpace();
      publish(KIND_FD_ERROR, w.reader.fd, 0, -n);
      return "failed";
    }
    if (n === 0) {
      // A kernel fd that poll called readable and that gave nothing holds a group too large for the read.
      if (i === 0 && w.reader.kind === "kernel" && w.reader.lastReadEmpty) return grow(w) ? drain(w) : "failed";
      return "done";
    }
    if (big) {
      publishBig(w.reader.fd, n);
      w.want = slotRecords;
    } else {
      countRead(slotDataOffset(layout, head), n);
      publish(KIND_RECORDS, w.reader.fd, n, 0);
    }
    // A short read left the fd empty or holding a group too large for the room left: poll says which.
    if (!w.reader.lastReadFull) return "done";
  }
  return "done";
}

function add(fd: number, kind: FdKind, sweep: boolean): void {
  if (sweep) {
    try {
      const { accepted } = sweepCookies(fd, kind, heldBound);
      waitForSpace();
      publish(KIND_SWEPT, fd, accepted ?? -1, heldBound);
    } catch (err) {
      waitForSpace();
      publish(KIND_FD_ERROR, fd, 0, err instanceof SyscallError ? err.errno : EINVAL);
      return;
    }
  }
  watched.push({ reader: new RecordReader(fd, kind), want: layout.recordsPerSlot });
}

/** Applies the commands the main thread posted; true when the watched set changed. */
function takeCommands(): boolean {
  let changed = false;
  for (let m = receiveMessageOnPort(commands); m; m = receiveMessageOnPort(commands)) {
    const cmd = m.message as PumpCommand;
    if (cmd.op === "add") add(cmd.fd, cmd.kind, cmd.sweep);
    else {
      watched = watched.filter((w) => w.reader.fd !== cmd.fd);
      waitForSpace();
      publish(KIND_REMOVED, cmd.fd, 0, 0);
    }
    changed = true;
  }
  return changed;
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

/** Sleeps until the main thread releases groups, moves the limit, posts a command or stops us. */
function waitForChange(): void {
  const seen = Atomics.load(ctrl, CTRL_CHANGE);
  Atomics.store(ctrl, CTRL_WAITING, 1);
  Atomics.wait(ctrl, CTRL_CHANGE, seen, 1000);
  Atomics.store(ctrl, CTRL_WAITING, 0);
}

function run(): void {
  let pfds = pollFds();
  let blocked = false;
  while (!stopping()) {
    if (takeCommands()) pfds = pollFds();
    if (blocked) {
      // Polling now would return at once (the fds are still readable): wait for room instead.
      blocked = false;
      if (watched.some((w) => !mayRead(w.want))) waitForChange();
    }
    const ready = libc.poll(pfds, watched.length + 1, -1);
    if (ready === -EINTR) continue;
    if (ready < 0) throw new Error(`fault pump: poll failed with errno ${-ready}; the pump stops`);
    if (pfds.readInt16LE(6) !== 0) libc.read(wakeFd, wakeBuf, 8); // reset the eventfd counter
    const failed = new Set<Watched>();
    watched.forEach((w, i) => {
      const revents = pfds.readInt16LE((i + 1) * libc.POLLFD_SIZE + 6);
      if (revents === 0) return;
      // Read what is there first: a socket whose peer left may still hold records (POLLIN|POLLHUP).
      if (revents & libc.POLLIN) {
        const result = drain(w);
        if (result === "failed") {
          failed.add(w);
          return;
        }
        if (result === "blocked") blocked = true;
      }
      const bad = revents & (libc.POLLERR | libc.POLLHUP | libc.POLLNVAL);
      if ((bad && (!(revents & libc.POLLIN) || w.reader.lastReadEmpty)) || w.reader.ended) {
        waitForSpace();
        publish(KIND_FD_ERROR, w.reader.fd, revents, 0);
        failed.add(w);
      }
    });
    if (failed.size > 0) {
      watched = watched.filter((w) => !failed.has(w));
      pfds = pollFds();
    }
  }
}

parentPort!.postMessage("ready");
run();
