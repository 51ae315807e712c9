// A line that fires per group is written once, then summarized per window.
import test from "ava";
import { RateLimitedLog } from "../../src/relay/rate-limited-log.js";
import { tick } from "../support/memory-stream.js";

test("the first occurrence is logged at once, the rest of the window as one line with their count and the last fields", async (t) => {
  const lines: [string, object][] = [];
  const w = new RateLimitedLog((msg, fields) => lines.push([msg, fields]), "unfit group", 30);
  for (let i = 0; i < 1000; i++) w.report("dev 1", { devId: 1, detail: `index ${i}` });
  w.report("dev 2", { devId: 2, detail: "other" });
  t.deepEqual(lines, [["unfit group", { devId: 1, detail: "index 0" }], ["unfit group", { devId: 2, detail: "other" }]], "each key's first at once");
  await tick(80);
  t.deepEqual(lines.slice(2), [["unfit group", { devId: 1, detail: "index 999", repeated: 999, withinMs: 30 }]], "one summary for the 999 others; none for a key that fired once");
  w.report("dev 1", { devId: 1, detail: "again" });
  t.deepEqual(lines.at(-1), ["unfit group", { devId: 1, detail: "again" }], "after its window a key is logged at once again");
});
