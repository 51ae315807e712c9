// The journal of what was read from the fault fds and what was answered, so
// a relay restarted after a crash (with the same fault fds, held by the
// keeper) can answer every group it had read. The kernel answers nothing when
// a reader dies, so without this a crash between read and answer stalls the
// device.
//
// Two writers append to one file, each record in one write() with O_APPEND:
// the pump's worker a RAW record per read() before the main thread sees the
// records (src/kernel/read-journal.ts), and the main thread an ANSWERING
// record before it writes answers and an ANSWERED record once the write
// returned, so that only a batch caught inside its write is in doubt.
//
// The file lives in a tmpfs (the keeper's runtime directory by default):
// write() copies into the page cache, which belongs to the kernel, not to
// the process, so a process crash (SIGKILL included) loses nothing written;
// only a kernel crash would, and that ends the VM and its groups with it.
// So no fsync, and an append costs a memory copy.
//
// Compaction rewrites the file with what a replay of it yields (see
// journal-replay.ts), renames it over the old one, and meanwhile the worker
// is paused so that none of its appends go to the old file after the copy.
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setImmediate as nextTurn } from "node:timers/promises";
import { encodeAnswers, RecordType } from "./journal-format.js";
import { JournalReplay, Recovered } from "./journal-replay.js";

export const DEFAULT_COMPACT_AT_BYTES = 4 << 20;
/** Compaction catches up with the file in pieces this big, one per event-loop turn. */
const CATCH_UP_CHUNK = 256 << 10;

export interface JournalRecovery extends Recovered {
  /** Bytes at the end that formed no whole record (a torn last append), or from a record of unknown type on. */
  tornBytes: number;
  /** Groups and answers in doubt of sources not journaled in this run: forgotten. */
  unknownSource: number;
}

export interface CompactionReport {
  bytesBefore: number;
  bytesAfter: number;
  /** From asking the appenders to pause until they were resumed: how long reads waited at most. */
  pauseMs: number;
  /** Bytes of an unfinished record found while nothing appended: dropped. */
  tornBytes: number;
}

/** Pauses the other appenders (the pump's worker), synchronously, and returns the function that resumes them. */
export type PauseAppenders = () => () => void;

export class Journal {
  #fd: number;
  /** File bytes already fed to the replay. */
  #fed: number;
  #compactAt: number;
  #compaction: Promise<CompactionReport> | null = null;

  private constructor(
    readonly path: string,
    private readonly sources: ReadonlySet<number>,
    private readonly compactAtBytes: number,
    private readonly replay: JournalReplay,
  ) {
    const { fd, bytes } = this.#rewrite();
    this.#fd = fd;
    this.#fed = bytes;
    this.#compactAt = Math.max(compactAtBytes, 2 * bytes);
  }

  /**
   * Opens the journal at path for the sources (fault fds) journaled in this
   * run, and returns what a previous run left: its state, which the file is
   * rewritten to at once (dropping a torn last record and unknown sources,
   * so this run's appends follow whole records).
   */
  static open(path: string, sources: readonly number[], compactAtBytes = DEFAULT_COMPACT_AT_BYTES): { journal: Journal; recovered: JournalRecovery } {
    const replay = new JournalReplay();
    if (existsSync(path)) replay.feed(readFileSync(path));
    const tornBytes = replay.dropRest();
    const ids = new Set(sources);
    const unknownSource = replay.retain(ids);
    const recovered = { ...replay.recovered(), tornBytes, unknownSource };
    return { journal: new Journal(path, ids, compactAtBytes, replay), recovered };
  }

  /** Whether the answers of this source are journaled: only fds whose reads the pump journals. */
  covers(sourceId: number): boolean {
    return this.sources.has(sourceId);
  }

  recordAnswering(sourceId: number, cookies: readonly number[]): void {
    this.#append(encodeAnswers(RecordType.ANSWERING, sourceId, cookies));
  }

  recordAnswered(sourceId: number, cookies: readonly number[]): void {
    this.#append(encodeAnswers(RecordType.ANSWERED, sourceId, cookies));
  }

  /** The file grew past its bound and no compaction runs: call compact(). */
  get needsCompaction(): boolean {
    return this.#compaction === null && fstatSync(this.#fd).size >= this.#compactAt;
  }

  /**
   * Rewrites the file with only what is live. The replay catches up with the
   * file while the worker still appends; only the last bytes, the write of
   * the snapshot and the rename happen with the worker paused.
   */
  compact(pauseAppenders: PauseAppenders): Promise<CompactionReport> {
    this.#compaction ??= this.#compact(pauseAppenders).finally(() => (this.#compaction = null));
    return this.#compaction;
  }

  /** Once nothing else appends (the pump stopped): waits for a compaction, rewrites the file one last time, closes it. */
  async close(): Promise<void> {
    await this.#compaction?.catch(() => undefined);
    this.#catchUp(Infinity);
    const { fd } = this.#rewrite();
    closeSync(fd);
    closeSync(this.#fd);
  }

  async #compact(pauseAppenders: PauseAppenders): Promise<CompactionReport> {
    const bytesBefore = fstatSync(this.#fd).size;
    try {
      while (this.#catchUp(CATCH_UP_CHUNK) === CATCH_UP_CHUNK) await nextTurn();
      // What came during the last turn, still without pausing: the pause then covers only the bytes of this instant.
      this.#catchUp(Infinity);
      // From here to resume() nothing yields: nobody appends to the old file once the snapshot is taken.
      const asked = performance.now();
      const resume = pauseAppenders();
      let rewritten: { fd: number; bytes: number; tornBytes: number };
      try {
        this.#catchUp(Infinity);
        rewritten = this.#rewrite();
      } finally {
        resume();
      }
      const pauseMs = performance.now() - asked;
      closeSync(this.#fd);
      this.#fd = rewritten.fd;
      this.#fed = rewritten.bytes;
      this.#compactAt = Math.max(this.compactAtBytes, 2 * rewritten.bytes);
      return { bytesBefore, bytesAfter: rewritten.bytes, pauseMs, tornBytes: rewritten.tornBytes };
    } catch (err) {
      // Not again before the file grew by another bound: a full file system would fail every time.
      this.#compactAt = bytesBefore + this.compactAtBytes;
      throw err;
    }
  }

  /** Feeds the replay up to `max` more bytes of the file; returns how many. */
  #catchUp(max: number): number {
    const size = fstatSync(this.#fd).size;
    const n = Math.min(max, size - this.#fed);
    if (n <= 0) return 0;
    const buf = Buffer.allocUnsafe(n);
    const got = readSync(this.#fd, buf, 0, n, this.#fed);
    this.replay.feed(buf.subarray(0, got));
    this.#fed += got;
    return got;
  }

  /**
   * Writes the replay's state to a new file, renames it over the journal and
   * returns it opened for appending. Only while nobody appends: bytes left
   * over now are no record in progress but a torn one, dropped.
   */
  #rewrite(): { fd: number; bytes: number; tornBytes: number } {
    const tornBytes = this.replay.dropRest();
    const snapshot = this.replay.snapshot();
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, snapshot, { mode: 0o600 });
    renameSync(tmp, this.path);
    return { fd: openSync(this.path, "a+", 0o600), bytes: snapshot.length, tornBytes };
  }

  #append(buf: Buffer): void {
    const n = writeSync(this.#fd, buf);
    if (n !== buf.length) {
      throw new Error(`journal ${this.path}: expected to append ${buf.length} bytes, wrote ${n}; give the journal a tmpfs with room (--journal PATH)`);
    }
  }
}
