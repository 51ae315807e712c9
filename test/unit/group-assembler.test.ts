// Records become the same groups however a source splits them across reads.
import test from "ava";
import fc from "fast-check";
import { GroupAssembler } from "../../src/fault/group-assembler.js";
import { FaultRecord, RecordFlag } from "../../src/fault/fault-source.js";
import { FaultGroup } from "../../src/fault/fault-group.js";

const groupsArb = fc.array(fc.record({ pages: fc.integer({ min: 1, max: 6 }), dev: fc.nat({ max: 9 }), pasid: fc.option(fc.nat({ max: 99 }), { nil: undefined }) }), { minLength: 1, maxLength: 20 });

function records(spec: { pages: number; dev: number; pasid: number | undefined }[]): FaultRecord[] {
  return spec.flatMap((g, i) => Array.from({ length: g.pages }, (_, p) => ({
    flags: (g.pasid !== undefined ? RecordFlag.PASID_VALID : 0) | (p === g.pages - 1 ? RecordFlag.LAST_PAGE : 0),
    devId: g.dev, pasid: g.pasid ?? 0, grpid: i, perm: 1 + (p % 3), addr: (i * 16 + p) * 4096, length: 0, cookie: i + 1,
  })));
}

test("any split of a record stream gives the same groups", (t) => {
  fc.assert(
    fc.property(groupsArb, fc.array(fc.nat(), { maxLength: 10 }), (spec, cutsRaw) => {
      const recs = records(spec);
      const cuts = [...new Set(cutsRaw.map((c) => c % (recs.length + 1)))].sort((a, b) => a - b);
      const got: FaultGroup[] = [];
      const asm = new GroupAssembler(1, 8, { group: (g) => got.push(g), oversized: () => { throw new Error("not oversized"); } });
      let prev = 0;
      for (const c of [...cuts, recs.length]) {
        asm.push(recs.slice(prev, c), 0);
        prev = c;
      }
      return got.length === spec.length && asm.pending === 0 && got.every((g, i) =>
        g.cookie === i + 1 && g.pages.length === spec[i]!.pages && g.devId === spec[i]!.dev && g.pasidValid === (spec[i]!.pasid !== undefined) &&
        g.pages.every((p, k) => p.addr === (i * 16 + k) * 4096));
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test("a group over the page limit is reported once as oversized, without its pages", (t) => {
  const over: number[] = [];
  const asm = new GroupAssembler(1, 2, { group: () => t.fail(), oversized: (g, n) => over.push(n, g.pages.length) });
  asm.push(records([{ pages: 5, dev: 1, pasid: undefined }]), 0);
  t.deepEqual(over, [5, 0]);
});

test("partial groups are handed over when the source goes away", (t) => {
  const asm = new GroupAssembler(1, 8, { group: () => t.fail(), oversized: () => t.fail() });
  asm.push(records([{ pages: 3, dev: 1, pasid: 4 }]).slice(0, 2), 0);
  t.is(asm.pending, 1);
  t.deepEqual(asm.takePartial().map((g) => g.cookie), [1]);
  t.is(asm.pending, 0);
});
