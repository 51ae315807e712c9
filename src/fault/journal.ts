// The journal of groups read but not answered, so a relay restarted after a
// crash (with the same fault fds, held by the keeper) can answer every one.
// The kernel answers nothing when a reader dies, so without this a crash
// between read and answer stalls the device.
//
// Order of writes: a READ record for a batch of groups before any of them is
// forwarded; an ANSWERING record for a batch of answers before they are
// written to the source, and an ANSWERED record once the write returned, so
// that only a batch caught inside its write is in doubt after a crash. Writes are synchronous appends to a file in a tmpfs
// (/run by default): a page-cache copy of a few hundred bytes per batch, and
// the only way to be sure the record exists before the answer does. A
// process crash keeps page-cache data; a machine crash takes the VM with it.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { decodeJournal, encodeAnswering, encodeRead, JournalContents, JournaledAnswer, JournaledGroup, RecordType } from "./journal-format.js";

export class Journal {
  private fd: number;
  private bytes: number;

  private constructor(
    readonly path: string,
    private readonly compactAtBytes: number,
  ) {
    this.fd = openSync(path, "a", 0o600);
    this.bytes = fstatSync(this.fd).size;
  }

  /** Opens the journal at path, returning what a previous run left unanswered. */
  static open(path: string, compactAtBytes = 8 << 20): { journal: Journal; recovered: JournalContents } {
    const recovered = existsSync(path) ? decodeJournal(readFileSync(path)) : { pending: [], maybeAnswered: [], tornBytes: 0 };
    const journal = new Journal(path, compactAtBytes);
    return { journal, recovered };
  }

  recordRead(groups: JournaledGroup[]): void {
    if (groups.length === 0) return;
    for (let i = 0; i < groups.length; i += 0xffff) this.append(encodeRead(groups.slice(i, i + 0xffff)));
  }

  recordAnswering(answers: JournaledAnswer[]): void {
    for (let i = 0; i < answers.length; i += 0xffff) this.append(encodeAnswering(answers.slice(i, i + 0xffff), RecordType.ANSWERING));
  }

  recordAnswered(answers: JournaledAnswer[]): void {
    for (let i = 0; i < answers.length; i += 0xffff) this.append(encodeAnswering(answers.slice(i, i + 0xffff), RecordType.ANSWERED));
  }

  /** True when the file has grown past its bound: call compact() with the live groups. */
  get needsCompaction(): boolean {
    return this.bytes >= this.compactAtBytes;
  }

  /** Rewrites the journal with only the given live groups, atomically (write, then rename). */
  compact(live: JournaledGroup[]): void {
    const tmp = `${this.path}.tmp`;
    const fd = openSync(tmp, "w", 0o600);
    const buf = live.length > 0 ? Buffer.concat(chunk(live, 0xffff).map(encodeRead)) : Buffer.alloc(0);
    writeSync(fd, buf);
    closeSync(fd);
    renameSync(tmp, this.path);
    closeSync(this.fd);
    this.fd = openSync(this.path, "a", 0o600);
    this.bytes = buf.length;
  }

  close(): void {
    closeSync(this.fd);
  }

  private append(buf: Buffer): void {
    writeSync(this.fd, buf);
    this.bytes += buf.length;
  }
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
