// The journal, written as the relay writes it (RAW reads split at any byte,
// answers completed, in doubt, or with their ANSWERED after the next read),
// compacted at random points and cut at every byte after the last
// compaction, replays to what a model of the fault queues says: the groups
// read and not answered, the answers in doubt, and the bytes read past the
// last whole group.
import test from "ava";
import fc from "fast-check";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeAnswers, encodeRaw, RecordType } from "../../src/fault/journal-format.js";
import { JournalReplay, Recovered } from "../../src/fault/journal-replay.js";
import { Journal } from "../../src/fault/journal.js";
import { constants, encodeFaultRecord } from "../../src/kernel/uapi-structs.js";

const FDS = [3, 4];
const LAST = constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE;

interface Group {
  cookie: number;
  start: number;
  end: number;
  /** The RAW record that completed it was applied: its wall-clock ms. */
  readWallMs: number | null;
  answering: boolean;
}

/** One fault queue as the kernel emulator feeds it: whole groups in a byte stream, cookies lowest-free, reused once answered. */
class Queue {
  stream = Buffer.alloc(0);
  groups: Group[] = [];
  /** Bytes read (and journaled). */
  pos = 0;
  readonly taken = new Set<number>();
  readonly inDoubt = new Set<number>();

  constructor(readonly fd: number) {}

  ensure(bytes: number, pages: () => number): void {
    while (this.stream.length < bytes) {
      let cookie = 1;
      while (this.taken.has(cookie)) cookie++;
      this.taken.add(cookie);
      const n = pages();
      const records = Array.from({ length: n }, (_, i) => encodeFaultRecord({
        flags: i === n - 1 ? LAST : 0, devId: this.fd * 10 + (cookie % 7), pasid: cookie, grpid: i, perm: 1 + (i % 3), addr: (cookie * 16 + i) * 4096, length: 0, cookie,
      }));
      const start = this.stream.length;
      this.stream = Buffer.concat([this.stream, ...records]);
      this.groups.push({ cookie, start, end: this.stream.length, readWallMs: null, answering: false });
    }
  }

  /** What the journal's replay must say after the records applied so far. */
  expected(): { pending: Map<number, { bytes: Buffer; readWallMs: number }>; inDoubt: Set<number>; carry: Buffer } {
    const pending = new Map<number, { bytes: Buffer; readWallMs: number }>();
    let lastEnd = 0;
    for (const g of this.groups) {
      if (g.end > this.pos) continue;
      lastEnd = Math.max(lastEnd, g.end);
      if (!g.answering) pending.set(g.cookie, { bytes: this.stream.subarray(g.start, g.end), readWallMs: g.readWallMs! });
    }
    return { pending, inDoubt: new Set(this.inDoubt), carry: this.stream.subarray(lastEnd, this.pos) };
  }
}

type Op =
  | { kind: "read"; fd: number; bytes: number; pages: number[] }
  | { kind: "answer"; fd: number; pick: number[]; mode: "done" | "doubt" | "late" }
  | { kind: "compact" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("read" as const), fd: fc.constantFrom(...FDS), bytes: fc.integer({ min: 1, max: 200 }), pages: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 6 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("answer" as const), fd: fc.constantFrom(...FDS), pick: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), mode: fc.constantFrom("done" as const, "doubt" as const, "late" as const) }) },
  { weight: 1, arbitrary: fc.constant({ kind: "compact" as const }) },
);

/** Runs the ops; returns the journal file after the last compaction, and the model's state after each of its records. */
function run(ops: Op[]): { file: Buffer; checkpoints: { at: number; state: Map<number, ReturnType<Queue["expected"]>> }[] } {
  const queues = new Map(FDS.map((fd) => [fd, new Queue(fd)]));
  let file: Buffer = Buffer.alloc(0);
  let wallMs = 1_000;
  const snapshotState = () => new Map([...queues].map(([fd, q]) => [fd, q.expected()]));
  let checkpoints = [{ at: 0, state: snapshotState() }];
  const append = (record: Buffer, apply: () => void): void => {
    file = Buffer.concat([file, record]);
    apply();
    checkpoints.push({ at: file.length, state: snapshotState() });
  };
  let late: (() => void) | null = null;
  for (const op of ops) {
    if (op.kind === "compact") {
      const replay = new JournalReplay();
      replay.feed(file);
      file = replay.snapshot();
      checkpoints = [{ at: file.length, state: snapshotState() }];
      continue;
    }
    const q = queues.get(op.fd)!;
    if (op.kind === "read") {
      let page = 0;
      q.ensure(q.pos + op.bytes, () => op.pages[page++ % op.pages.length]!);
      const from = q.pos;
      const stamp = ++wallMs;
      append(encodeRaw(q.fd, stamp, q.stream.subarray(from, from + op.bytes)), () => {
        q.pos += op.bytes;
        for (const g of q.groups) if (g.end > from && g.end <= q.pos) g.readWallMs = stamp;
        // Every record completed by this read proves its cookie's earlier answer arrived.
        for (let end = (Math.floor(from / 40) + 1) * 40; end <= q.pos; end += 40) q.inDoubt.delete(q.stream.readUInt32LE(end - 4));
      });
      late?.();
      late = null;
      continue;
    }
    const readable = q.groups.filter((g) => g.end <= q.pos && !g.answering);
    const chosen = [...new Set(op.pick.map((i) => readable[i % Math.max(1, readable.length)]).filter((g): g is Group => g !== undefined))];
    if (chosen.length === 0) continue;
    const cookies = chosen.map((g) => g.cookie);
    append(encodeAnswers(RecordType.ANSWERING, q.fd, cookies), () => {
      for (const g of chosen) {
        g.answering = true;
        q.inDoubt.add(g.cookie);
      }
    });
    // The answers reach the queue: their cookies may be handed out again.
    for (const c of cookies) q.taken.delete(c);
    const answered = (): void => append(encodeAnswers(RecordType.ANSWERED, q.fd, cookies), () => cookies.forEach((c) => q.inDoubt.delete(c)));
    if (op.mode === "done") answered();
    else if (op.mode === "late") {
      late?.();
      late = answered;
    }
  }
  return { file, checkpoints };
}

function agrees(got: Recovered, want: Map<number, ReturnType<Queue["expected"]>>): string | null {
  for (const [fd, w] of want) {
    const pending = got.pending.filter((p) => p.group.sourceId === fd);
    if (pending.length !== w.pending.size) return `fd ${fd}: ${pending.length} pending, want ${w.pending.size}`;
    for (const p of pending) {
      const e = w.pending.get(p.group.cookie);
      if (!e) return `fd ${fd}: cookie ${p.group.cookie} pending, want not`;
      if (p.readWallMs !== e.readWallMs) return `fd ${fd}: cookie ${p.group.cookie} read at ${p.readWallMs}, want ${e.readWallMs}`;
      if (p.group.pages.length !== e.bytes.length / 40 || p.group.pages[0]!.addr !== e.bytes.readUInt32LE(24) + e.bytes.readUInt32LE(28) * 2 ** 32) return `fd ${fd}: cookie ${p.group.cookie} pages differ`;
    }
    const doubt = got.inDoubt.filter((a) => a.sourceId === fd).map((a) => a.cookie).sort();
    if (JSON.stringify(doubt) !== JSON.stringify([...w.inDoubt].sort())) return `fd ${fd}: in doubt ${doubt}, want ${[...w.inDoubt]}`;
    if (!(got.carry.get(fd) ?? Buffer.alloc(0)).equals(w.carry)) return `fd ${fd}: carry ${got.carry.get(fd)?.length ?? 0} bytes, want ${w.carry.length}`;
  }
  return null;
}

test("replay equals the model after every record, through compactions, and at every cut", (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 30 }), (ops) => {
      const { file, checkpoints } = run(ops);
      for (let cut = checkpoints[0]!.at; cut <= file.length; cut++) {
        const replay = new JournalReplay();
        replay.feed(file.subarray(0, cut));
        let state = checkpoints[0]!.state;
        let whole = checkpoints[0]!.at;
        for (const c of checkpoints) if (c.at <= cut) ({ state, at: whole } = c);
        const problem = agrees(replay.recovered(), state);
        if (problem) throw new Error(`cut at ${cut} of ${file.length}: ${problem}`);
        if (replay.dropRest() !== cut - whole) throw new Error(`cut at ${cut}: torn bytes wrong`);
      }
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("fed in pieces of any size, the replay is the same as fed at once", (t) => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1 }), (ops, pieces) => {
      const { file } = run(ops);
      const whole = new JournalReplay();
      whole.feed(file);
      const pieced = new JournalReplay();
      for (let o = 0, i = 0; o < file.length; i++) {
        const n = pieces[i % pieces.length]!;
        pieced.feed(file.subarray(o, o + n));
        o += n;
      }
      return pieced.snapshot().equals(whole.snapshot());
    }),
    { numRuns: 200 },
  );
  t.pass();
});

test("a journal file: torn tail and unknown fds dropped at open, and a compaction racing an appender loses none of its records", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-journal-"));
  const path = join(dir, "journal");
  const group = (cookie: number): Buffer => encodeFaultRecord({ flags: LAST, devId: 1, pasid: 0, grpid: 0, perm: 1, addr: cookie * 4096, length: 0, cookie });
  writeFileSync(path, Buffer.concat([
    encodeRaw(3, 10, Buffer.concat([group(1), group(2), group(3)])),
    encodeRaw(9, 10, group(1)),
    encodeAnswers(RecordType.ANSWERING, 3, [2]),
    encodeRaw(3, 11, group(4).subarray(0, 30)),
    encodeRaw(3, 12, group(5)).subarray(0, 20), // the last append, torn by a crash
  ]));
  const { journal, recovered } = Journal.open(path, [3], 512);
  t.deepEqual(recovered.pending.map((p) => p.group.cookie), [1, 3]);
  t.deepEqual(recovered.inDoubt, [{ sourceId: 3, cookie: 2 }]);
  t.deepEqual(recovered.carry.get(3), group(4).subarray(0, 30));
  t.is(recovered.tornBytes, 20);
  t.is(recovered.unknownSource, 1);
  t.false(journal.covers(9));
  journal.recordAnswered(3, [2]);
  journal.recordAnswering(3, [1]);
  journal.recordAnswered(3, [1]);

  // The worker's part: the rest of cookie 4's record, then a group on every turn unless paused.
  let paused = false;
  let next = 100;
  const read = (bytes: Buffer): void => {
    if (paused) throw new Error("appended while paused");
    writeFileSync(path, encodeRaw(3, 20, bytes), { flag: "a" });
  };
  read(group(4).subarray(30));
  for (let i = 0; i < 20; i++) read(group(next++));
  const appender = setInterval(() => read(group(next++)), 0);
  t.true(journal.needsCompaction);
  const report = await journal.compact(() => {
    paused = true;
    return () => (paused = false);
  });
  t.false(paused);
  read(group(next++));
  clearInterval(appender);
  t.true(report.bytesAfter < report.bytesBefore, JSON.stringify(report));
  t.is(report.tornBytes, 0);
  await journal.close();

  const again = Journal.open(path, [3]);
  t.deepEqual(again.recovered.pending.map((p) => p.group.cookie).sort((a, b) => a - b), [3, 4, ...Array.from({ length: next - 100 }, (_, i) => 100 + i)]);
  t.deepEqual(again.recovered.inDoubt, []);
  t.is(again.recovered.carry.size, 0);
  await again.journal.close();
});
