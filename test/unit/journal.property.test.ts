// The journal, replayed after any sequence of batches and cut at any byte,
// agrees with a model of what was read and what was being answered.
import test from "ava";
import fc from "fast-check";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeJournal, encodeAnswering, encodeRead, JournaledGroup, RecordType } from "../../src/fault/journal-format.js";
import { Journal } from "../../src/fault/journal.js";

const groupArb = fc.record({
  sourceId: fc.nat({ max: 3 }), cookie: fc.integer({ min: 1, max: 40 }), devId: fc.nat({ max: 0xffffffff }), pasid: fc.nat({ max: 0xfffff }),
  grpid: fc.nat({ max: 511 }), pasidValid: fc.boolean(),
  pages: fc.array(fc.record({ addr: fc.nat({ max: 2 ** 40 }).map((p) => p * 4096), perm: fc.nat({ max: 15 }) }), { minLength: 1, maxLength: 3 }),
});

type Batch = { read: JournaledGroup[] } | { answering: { sourceId: number; cookie: number }[] } | { answered: { sourceId: number; cookie: number }[] };
const batchArb: fc.Arbitrary<Batch> = fc.oneof(
  fc.array(fc.record({ group: groupArb.map((g) => ({ ...g, readAtMs: 0 })), deadlineWallMs: fc.integer({ min: 0, max: 2 ** 45 }) }), { minLength: 1, maxLength: 4 }).map((read) => ({ read })),
  fc.array(fc.record({ sourceId: fc.nat({ max: 3 }), cookie: fc.integer({ min: 1, max: 40 }) }), { minLength: 1, maxLength: 4 }).map((answering) => ({ answering })),
  fc.array(fc.record({ sourceId: fc.nat({ max: 3 }), cookie: fc.integer({ min: 1, max: 40 }) }), { minLength: 1, maxLength: 4 }).map((answered) => ({ answered })),
);

function model(batches: Batch[]) {
  const pending = new Map<string, JournaledGroup>();
  const maybe = new Set<string>();
  for (const b of batches) {
    if ("read" in b) for (const g of b.read) { const k = `${g.group.sourceId}:${g.group.cookie}`; maybe.delete(k); pending.set(k, g); }
    else if ("answering" in b) for (const a of b.answering) { const k = `${a.sourceId}:${a.cookie}`; pending.delete(k); maybe.add(k); }
    else for (const a of b.answered) { const k = `${a.sourceId}:${a.cookie}`; pending.delete(k); maybe.delete(k); }
  }
  return { pending, maybe };
}

test("replay equals the model, after every batch boundary and at every cut", (t) => {
  fc.assert(
    fc.property(fc.array(batchArb, { maxLength: 12 }), (batches) => {
      const encoded = batches.map((b) => ("read" in b ? encodeRead(b.read) : "answering" in b ? encodeAnswering(b.answering) : encodeAnswering(b.answered, RecordType.ANSWERED)));
      const whole = Buffer.concat(encoded);
      let boundary = 0;
      const boundaries = new Map<number, number>([[0, 0]]);
      encoded.forEach((e, i) => boundaries.set((boundary += e.length), i + 1));
      for (let cut = 0; cut <= whole.length; cut++) {
        const got = decodeJournal(whole.subarray(0, cut));
        // A cut inside a record replays exactly the whole records before it.
        let done = 0;
        for (const [at, n] of boundaries) if (at <= cut) done = Math.max(done, n);
        const want = model(batches.slice(0, done));
        if (got.pending.length !== want.pending.size || got.maybeAnswered.length !== want.maybe.size) return false;
        for (const g of got.pending) {
          const w = want.pending.get(`${g.group.sourceId}:${g.group.cookie}`);
          if (!w || w.deadlineWallMs !== g.deadlineWallMs || JSON.stringify(w.group.pages) !== JSON.stringify(g.group.pages) || w.group.devId !== g.group.devId) return false;
        }
        if (got.tornBytes !== cut - [...boundaries.keys()].filter((b) => b <= cut).reduce((a, b) => Math.max(a, b), 0)) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test("the journal file survives reopening and compaction keeps only live groups", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-journal-"));
  const path = join(dir, "journal");
  const g = (cookie: number): JournaledGroup => ({ group: { sourceId: 1, cookie, devId: 7, pasid: 0, pasidValid: false, grpid: 0, pages: [{ addr: 4096, perm: 1 }], readAtMs: 0 }, deadlineWallMs: 1000 });
  const first = Journal.open(path, 64);
  t.deepEqual(first.recovered.pending, []);
  first.journal.recordRead([g(1), g(2), g(3)]);
  first.journal.recordAnswering([{ sourceId: 1, cookie: 2 }]);
  first.journal.recordAnswered([{ sourceId: 1, cookie: 2 }]);
  first.journal.recordAnswering([{ sourceId: 1, cookie: 9 }]);
  t.true(first.journal.needsCompaction);
  t.deepEqual(Journal.open(path).recovered.maybeAnswered, [{ sourceId: 1, cookie: 9 }], "only the answer caught in its write is in doubt");
  first.journal.compact([g(1), g(3)]);
  first.journal.recordRead([g(4)]);
  first.journal.close();
  const second = Journal.open(path);
  t.deepEqual(second.recovered.pending.map((p) => p.group.cookie).sort(), [1, 3, 4]);
  t.deepEqual(second.recovered.maybeAnswered, []);
  second.journal.close();
  writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from([1, 0, 5])]));
  t.is(Journal.open(path).recovered.tornBytes, 3);
});
