// The pump worker's half of the journal: each read() of a journaled fault fd
// is appended, before its slot is handed to the main thread, as one RAW
// record holding the bytes exactly as read (a stream read may end mid-record).
// The kernel assigns cookies at read, so a group read but not yet journaled
// is one a crash would lose; this narrows that window to one write().
//
// Both the worker and the main thread append to the same file with O_APPEND,
// one write() per record, so their records never interleave byte-wise. The
// header and the bytes go out in one write(): a separate header write could
// let the main thread's record land between them.
import { closeSync, openSync, writeSync } from "node:fs";

/** RAW record: u8 4 | u8 0 | u16 fd | u32 length | f64 wall-clock ms of the read | length bytes as read. */
export const RAW_RECORD_TYPE = 4;
export const RAW_HEADER_BYTES = 16;

export function writeRawHeader(buf: Buffer, offset: number, fd: number, length: number, wallMs: number): void {
  buf.writeUInt8(RAW_RECORD_TYPE, offset);
  buf.writeUInt8(0, offset + 1);
  buf.writeUInt16LE(fd, offset + 2);
  buf.writeUInt32LE(length, offset + 4);
  buf.writeDoubleLE(wallMs, offset + 8);
}

export class ReadJournal {
  #fd = -1;
  #scratch = Buffer.alloc(RAW_HEADER_BYTES + 4096);

  constructor(readonly path: string) {}

  /** Opens (or reopens, after the main thread renamed a rewritten journal over it) the file for appending. */
  open(): void {
    if (this.#fd < 0) this.#fd = openSync(this.path, "a", 0o600);
  }

  close(): void {
    if (this.#fd < 0) return;
    closeSync(this.#fd);
    this.#fd = -1;
  }

  /** Appends one RAW record for bytes just read from fd; throws when the file system refuses it. */
  append(fd: number, bytes: Uint8Array, wallMs: number): void {
    const total = RAW_HEADER_BYTES + bytes.length;
    if (this.#scratch.length < total) this.#scratch = Buffer.alloc(total);
    writeRawHeader(this.#scratch, 0, fd, bytes.length, wallMs);
    this.#scratch.set(bytes, RAW_HEADER_BYTES);
    let written: number;
    try {
      written = writeSync(this.#fd, this.#scratch, 0, total);
    } catch (err) {
      throw journalError(this.path, fd, total, (err as NodeJS.ErrnoException).code ?? String(err));
    }
    if (written !== total) throw journalError(this.path, fd, total, `a short write of ${written} bytes`);
  }
}

function journalError(path: string, fd: number, bytes: number, what: string): Error {
  return new Error(
    `journal ${path}: expected to append the ${bytes}-byte record of a read of fault fd ${fd}, got ${what}; ` +
    "the pump stops, and a restarted relay replays the journal up to here: give the journal a tmpfs with room (--journal PATH)",
  );
}
