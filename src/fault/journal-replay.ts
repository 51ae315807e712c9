// Replays a journal, fed in pieces as it grows, into what recovery needs: per
// fault fd, the groups read and not answered, the answers in doubt, and the
// bytes read but not yet part of a whole group (a stream may split groups and
// records across reads). The same state, written back out by snapshot(),
// replays to itself: that is how the journal is compacted, so compaction
// needs nothing from the relay's ledger and cannot disagree with recovery.
//
// Per (fd, cookie): ANSWERING ends the group (its answer is on its way) and
// puts the cookie in doubt; ANSWERED takes it out of doubt; a record read
// with the cookie also takes it out of doubt, because the kernel hands out a
// cookie again only once its answer arrived. ANSWERED never ends a group: the
// worker may read a new group with the same cookie between the main thread's
// write of the answer and its ANSWERED record.
import { decodeFaultRecords, FAULT_RECORD_SIZE } from "../kernel/uapi-structs.js";
import { FaultGroup } from "./fault-group.js";
import { RecordFlag } from "./fault-source.js";
import { GroupAssembler } from "./group-assembler.js";
import { AnswerRecordType, encodeAnswers, encodeRaw, JournaledAnswer, parseRecords, RecordType } from "./journal-format.js";

export interface RecoveredGroup {
  group: FaultGroup;
  /** Wall-clock ms (Date.now()) of the read that completed the group: its deadline counts from here. */
  readWallMs: number;
}

export interface Recovered {
  /** Read, and no answer begun: certainly unanswered. */
  pending: RecoveredGroup[];
  /** An answer was being written when the process died: maybe answered. */
  inDoubt: JournaledAnswer[];
  /** Per fd, bytes read but not handed out as whole groups: a new reader hands them out first. */
  carry: Map<number, Buffer>;
}

interface Stream {
  /** The bytes of a record not yet whole (fewer than 40). */
  partialRecord: Buffer;
  /** Records of groups whose LAST_PAGE record has not been read, by cookie, in the order they began. */
  open: Map<number, Buffer[]>;
  /** Whole groups read and not answered, by cookie. */
  pending: Map<number, { records: Buffer[]; readWallMs: number }>;
  inDoubt: Set<number>;
  lastReadWallMs: number;
}

export class JournalReplay {
  readonly #streams = new Map<number, Stream>();
  /** Bytes fed that do not yet form a whole journal record. */
  #rest: Buffer = Buffer.alloc(0);
  #corrupt = false;

  /** Replays the whole records in bytes (with what was left over from earlier calls); keeps the rest for the next call. */
  feed(bytes: Buffer): void {
    if (this.#corrupt) {
      this.#rest = Buffer.concat([this.#rest, bytes]);
      return;
    }
    const buf = this.#rest.length > 0 ? Buffer.concat([this.#rest, bytes]) : bytes;
    const { consumed, corrupt } = parseRecords(buf, {
      raw: (fd, wallMs, data) => this.#raw(fd, wallMs, data),
      answer: (type, sourceId, cookie) => this.#answer(type, sourceId, cookie),
    });
    this.#corrupt = corrupt;
    this.#rest = Buffer.from(buf.subarray(consumed));
  }

  /**
   * Forgets the bytes fed that formed no whole record (a torn last append, or
   * everything from an unknown record type on); returns how many there were.
   * Only for a file nobody is appending to: otherwise they are a record in progress.
   */
  dropRest(): number {
    const n = this.#rest.length;
    this.#rest = Buffer.alloc(0);
    this.#corrupt = false;
    return n;
  }

  /** Forgets every source not in ids; returns the groups and answers in doubt forgotten. */
  retain(ids: ReadonlySet<number>): number {
    let dropped = 0;
    for (const [id, s] of this.#streams) {
      if (ids.has(id)) continue;
      dropped += s.pending.size + s.open.size + s.inDoubt.size;
      this.#streams.delete(id);
    }
    return dropped;
  }

  recovered(): Recovered {
    const pending: RecoveredGroup[] = [];
    const inDoubt: JournaledAnswer[] = [];
    const carry = new Map<number, Buffer>();
    for (const [id, s] of this.#streams) {
      for (const g of s.pending.values()) pending.push({ group: toGroup(id, g.records), readWallMs: g.readWallMs });
      for (const cookie of s.inDoubt) inDoubt.push({ sourceId: id, cookie });
      const tail = tailBytes(s);
      if (tail.length > 0) carry.set(id, tail);
    }
    return { pending, inDoubt, carry };
  }

  /** The journal that replays to this state: answers in doubt, then per fd its pending groups and its tail. */
  snapshot(): Buffer {
    const parts: Buffer[] = [];
    for (const [id, s] of this.#streams) {
      if (s.inDoubt.size > 0) parts.push(encodeAnswers(RecordType.ANSWERING, id, [...s.inDoubt]));
      for (const g of s.pending.values()) parts.push(encodeRaw(id, g.readWallMs, Buffer.concat(g.records)));
      const tail = tailBytes(s);
      if (tail.length > 0) parts.push(encodeRaw(id, s.lastReadWallMs, tail));
    }
    return Buffer.concat(parts);
  }

  #stream(id: number): Stream {
    let s = this.#streams.get(id);
    if (!s) {
      s = { partialRecord: Buffer.alloc(0), open: new Map(), pending: new Map(), inDoubt: new Set(), lastReadWallMs: 0 };
      this.#streams.set(id, s);
    }
    return s;
  }

  #raw(fd: number, wallMs: number, bytes: Buffer): void {
    const s = this.#stream(fd);
    s.lastReadWallMs = wallMs;
    const data = s.partialRecord.length > 0 ? Buffer.concat([s.partialRecord, bytes]) : bytes;
    const whole = data.length - (data.length % FAULT_RECORD_SIZE);
    // Copies: the bytes fed belong to the caller's read buffer.
    for (let o = 0; o < whole; o += FAULT_RECORD_SIZE) this.#record(s, Buffer.from(data.subarray(o, o + FAULT_RECORD_SIZE)), wallMs);
    s.partialRecord = Buffer.from(data.subarray(whole));
  }

  #record(s: Stream, record: Buffer, wallMs: number): void {
    const cookie = record.readUInt32LE(36);
    s.inDoubt.delete(cookie);
    const open = s.open.get(cookie);
    if (!(record.readUInt32LE(0) & RecordFlag.LAST_PAGE)) {
      if (open) open.push(record);
      else s.open.set(cookie, [record]);
      return;
    }
    s.open.delete(cookie);
    s.pending.set(cookie, { records: open ? [...open, record] : [record], readWallMs: wallMs });
  }

  #answer(type: AnswerRecordType, sourceId: number, cookie: number): void {
    const s = this.#stream(sourceId);
    if (type === RecordType.ANSWERED) {
      s.inDoubt.delete(cookie);
      return;
    }
    s.pending.delete(cookie);
    s.open.delete(cookie);
    s.inDoubt.add(cookie);
  }
}

function tailBytes(s: Stream): Buffer {
  return Buffer.concat([...[...s.open.values()].flat(), s.partialRecord]);
}

/** Builds the group the relay's assembler would have built from the same records. */
function toGroup(sourceId: number, records: Buffer[]): FaultGroup {
  const bytes = Buffer.concat(records);
  let group: FaultGroup | undefined;
  const assembler = new GroupAssembler(sourceId, Infinity, {
    group: (g) => (group = g),
    oversized: () => undefined,
  });
  assembler.push(decodeFaultRecords(new DataView(bytes.buffer, bytes.byteOffset, bytes.length), 0, records.length), 0);
  return group!;
}
