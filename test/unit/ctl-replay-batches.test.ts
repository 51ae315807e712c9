// iopfctl replay groups a recording into inject requests: alike and close
// in time go together, but never more than one request may raise.
import test from "ava";
import { MAX_INJECT } from "../../src/relay/control/inject-limits.js";
import { batches, ReplayGroup } from "../../src/ctl/replay-command.js";

test("a burst larger than one request takes several, each within the bound", (t) => {
  const groups: ReplayGroup[] = Array.from({ length: MAX_INJECT + 5 }, () => ({ t: 1000, dev: 1, pasid: 2, pages: 1 }));
  t.deepEqual(batches(groups).map((b) => b.count), [MAX_INJECT, 5]);
});

test("another device, PASID or size, or a later time, starts a new request", (t) => {
  const g = (t: number, dev: number, pasid: number | undefined, pages: number): ReplayGroup => ({ t, dev, pasid, pages });
  const plan = batches([g(0, 1, 1, 1), g(1, 1, 1, 1), g(2, 2, 1, 1), g(3, 2, undefined, 1), g(4, 2, undefined, 4), g(50, 2, undefined, 4)]);
  t.deepEqual(plan.map((b) => [b.group.dev, b.group.pasid, b.group.pages, b.count]), [[1, 1, 1, 2], [2, 1, 1, 1], [2, undefined, 1, 1], [2, undefined, 4, 1], [2, undefined, 4, 1]]);
});
