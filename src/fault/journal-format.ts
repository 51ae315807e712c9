// The journal's on-disk records, little-endian, appended in batches:
//   READ      u8 1 | u8 0 | u16 count | count x group
//     group:  u16 sourceId | u16 pages | u32 cookie | u32 devId | u32 pasid |
//             u32 grpid | u8 pasidValid | u8[3] 0 | f64 deadline (wall-clock ms) |
//             pages x (u32 addrLo | u32 addrHi | u32 perm)
//   ANSWERING u8 2 | u8 0 | u16 count | count x (u16 sourceId | u16 0 | u32 cookie)
//   ANSWERED  u8 3 | the same as ANSWERING: the write of those answers returned
// An ANSWERING without its ANSWERED means the process died in the write: those
// answers may or may not have reached the kernel. A torn last record (the
// process died mid-append) is ignored: its groups were not forwarded and its
// answers not written yet.
import { FaultGroup } from "./fault-group.js";

export const RecordType = { READ: 1, ANSWERING: 2, ANSWERED: 3 } as const;
const HEADER = 4;
const GROUP_FIXED = 32;
const PAGE = 12;
const ANSWER = 8;

export interface JournaledGroup {
  group: FaultGroup;
  /** Wall-clock ms (Date.now()) after which the group must be answered by the relay. */
  deadlineWallMs: number;
}

export interface JournaledAnswer {
  sourceId: number;
  cookie: number;
}

export function encodeRead(groups: JournaledGroup[]): Buffer {
  let size = HEADER;
  for (const g of groups) size += GROUP_FIXED + PAGE * g.group.pages.length;
  const buf = Buffer.alloc(size);
  buf.writeUInt8(RecordType.READ, 0);
  buf.writeUInt16LE(groups.length, 2);
  let o = HEADER;
  for (const { group: g, deadlineWallMs } of groups) {
    buf.writeUInt16LE(g.sourceId, o);
    buf.writeUInt16LE(g.pages.length, o + 2);
    buf.writeUInt32LE(g.cookie, o + 4);
    buf.writeUInt32LE(g.devId, o + 8);
    buf.writeUInt32LE(g.pasid, o + 12);
    buf.writeUInt32LE(g.grpid, o + 16);
    buf.writeUInt8(g.pasidValid ? 1 : 0, o + 20);
    buf.writeDoubleLE(deadlineWallMs, o + 24);
    o += GROUP_FIXED;
    for (const p of g.pages) {
      buf.writeUInt32LE(p.addr % 2 ** 32, o);
      buf.writeUInt32LE(Math.floor(p.addr / 2 ** 32), o + 4);
      buf.writeUInt32LE(p.perm, o + 8);
      o += PAGE;
    }
  }
  return buf;
}

export function encodeAnswering(answers: JournaledAnswer[], type: typeof RecordType.ANSWERING | typeof RecordType.ANSWERED = RecordType.ANSWERING): Buffer {
  const buf = Buffer.alloc(HEADER + ANSWER * answers.length);
  buf.writeUInt8(type, 0);
  buf.writeUInt16LE(answers.length, 2);
  answers.forEach((a, i) => {
    buf.writeUInt16LE(a.sourceId, HEADER + i * ANSWER);
    buf.writeUInt32LE(a.cookie, HEADER + i * ANSWER + 4);
  });
  return buf;
}

export interface JournalContents {
  /** Read, and no answer begun: certainly unanswered. */
  pending: JournaledGroup[];
  /** An answer was being written when the process died: maybe answered. */
  maybeAnswered: JournaledAnswer[];
  /** Bytes at the end that did not form a whole record. */
  tornBytes: number;
}

/** Replays a journal; the key of a group is (sourceId, cookie), as cookies are per source. */
export function decodeJournal(buf: Buffer): JournalContents {
  const pending = new Map<string, JournaledGroup>();
  const maybe = new Map<string, JournaledAnswer>();
  let o = 0;
  while (o + HEADER <= buf.length) {
    const type = buf.readUInt8(o);
    const count = buf.readUInt16LE(o + 2);
    if (type === RecordType.ANSWERING || type === RecordType.ANSWERED) {
      if (o + HEADER + count * ANSWER > buf.length) break;
      for (let i = 0; i < count; i++) {
        const a = { sourceId: buf.readUInt16LE(o + HEADER + i * ANSWER), cookie: buf.readUInt32LE(o + HEADER + i * ANSWER + 4) };
        const key = `${a.sourceId}:${a.cookie}`;
        pending.delete(key);
        if (type === RecordType.ANSWERING) maybe.set(key, a);
        else maybe.delete(key);
      }
      o += HEADER + count * ANSWER;
      continue;
    }
    if (type !== RecordType.READ) break;
    const groups: [string, JournaledGroup][] = [];
    let p = o + HEADER;
    let whole = true;
    for (let i = 0; i < count; i++) {
      if (p + GROUP_FIXED > buf.length) { whole = false; break; }
      const pages = buf.readUInt16LE(p + 2);
      if (p + GROUP_FIXED + pages * PAGE > buf.length) { whole = false; break; }
      const group: FaultGroup = {
        sourceId: buf.readUInt16LE(p), cookie: buf.readUInt32LE(p + 4), devId: buf.readUInt32LE(p + 8), pasid: buf.readUInt32LE(p + 12),
        grpid: buf.readUInt32LE(p + 16), pasidValid: buf.readUInt8(p + 20) === 1, pages: [], readAtMs: 0,
      };
      const deadlineWallMs = buf.readDoubleLE(p + 24);
      p += GROUP_FIXED;
      for (let k = 0; k < pages; k++, p += PAGE) {
        group.pages.push({ addr: buf.readUInt32LE(p) + buf.readUInt32LE(p + 4) * 2 ** 32, perm: buf.readUInt32LE(p + 8) });
      }
      groups.push([`${group.sourceId}:${group.cookie}`, { group, deadlineWallMs }]);
    }
    if (!whole) break;
    // A cookie read again was answered before (cookies are reused only then).
    for (const [key, g] of groups) {
      maybe.delete(key);
      pending.set(key, g);
    }
    o = p;
  }
  return { pending: [...pending.values()], maybeAnswered: [...maybe.values()], tornBytes: buf.length - o };
}
