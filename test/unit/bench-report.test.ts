// The benchmark's writers: the SVG charts (well-formed, escaped, one bar per
// value, log axes by decade), the .cpuprofile summary and the flame graph.
import test from "ava";
import { summarizeProfile } from "../../scripts/bench/cpuprofile.js";
import { flameBoxes, flameGraph } from "../../scripts/bench/flame-graph.js";
import { barChart, lineChart, yScale } from "../../scripts/bench/svg-chart.js";

const count = (text: string, re: RegExp): number => (text.match(re) ?? []).length;

test("a bar chart has one bar per finite value and escapes its text", (t) => {
  const svg = barChart({
    title: "a < b & c",
    yLabel: "groups/s",
    categories: ["1", "4", "32"],
    series: [{ name: "relay", values: [10, 20, NaN] }, { name: "C \"base\"", values: [100, 200, 300] }],
  });
  t.true(svg.startsWith("<svg "));
  t.true(svg.trimEnd().endsWith("</svg>"));
  t.is(count(svg, /<rect x=/g), 5 + 2, "5 finite bars and 2 legend swatches");
  t.true(svg.includes("a &lt; b &amp; c"));
  t.true(svg.includes("C &quot;base&quot;"));
  t.false(svg.includes("NaN"));
});

test("a chart refuses a series that does not match its categories", (t) => {
  t.throws(() => lineChart({ title: "x", yLabel: "y", categories: ["a", "b"], series: [{ name: "s", values: [1] }] }), {
    message: /series "s" has 1 values, expected one per category \(2\)/,
  });
});

test("a log scale ticks every decade and puts larger values higher", (t) => {
  const s = yScale([3, 40_000], true);
  t.deepEqual(s.ticks, [1, 10, 100, 1000, 10_000, 100_000]);
  t.true(s.y(40_000) < s.y(3));
  const lin = yScale([0, 17], false);
  t.is(lin.ticks[0], 0);
  t.true(lin.ticks[lin.ticks.length - 1]! >= 17);
});

test("a line chart draws one polyline per series, skipping what a log axis cannot show", (t) => {
  const svg = lineChart({ title: "lat", yLabel: "us", categories: ["p50", "p99"], series: [{ name: "a", values: [5, 50] }, { name: "b", values: [0, 7] }], log: true });
  t.is(count(svg, /<polyline/g), 2);
  t.is(count(svg, /<circle/g), 3);
});

test("a profile summary sums self time per function over the tree, idle apart", (t) => {
  const frame = (functionName: string, url = "file:///opt/iopf-relay/build/src/relay/relay-core.js", lineNumber = 9) => ({ functionName, url, lineNumber });
  const summary = summarizeProfile({
    startTime: 0,
    endTime: 2_000_000,
    nodes: [
      { id: 1, callFrame: frame("(root)", ""), hitCount: 0 },
      { id: 2, callFrame: frame("(idle)", ""), hitCount: 50 },
      { id: 3, callFrame: frame("pump"), hitCount: 30 },
      { id: 4, callFrame: frame("pump"), hitCount: 10 },
      { id: 5, callFrame: frame("", "node:internal/timers", 99), hitCount: 10 },
    ],
  });
  t.is(summary.idleShare, 0.5);
  t.is(summary.busySeconds, 1);
  t.deepEqual(summary.top, [
    { function: "pump (build/src/relay/relay-core.js:10)", share: 0.8 },
    { function: "(anonymous) (node:internal/timers:100)", share: 0.2 },
  ]);
  t.throws(() => summarizeProfile({} as never), { message: /not a \.cpuprofile/ });
});

test("a flame graph gives each call its busy share as width, callees above callers, heaviest first, idle left out", (t) => {
  const frame = (functionName: string, url = "file:///opt/iopf-relay/build/src/relay/relay-core.js") => ({ functionName, url, lineNumber: 0 });
  const profile = {
    startTime: 0,
    endTime: 1,
    nodes: [
      { id: 1, callFrame: frame("(root)", ""), hitCount: 0, children: [2, 3, 5] },
      { id: 2, callFrame: frame("(idle)", ""), hitCount: 1000 },
      { id: 3, callFrame: frame("onData"), hitCount: 10, children: [4] },
      { id: 4, callFrame: frame("encode<&>"), hitCount: 60 },
      { id: 5, callFrame: frame("(garbage collector)", ""), hitCount: 30 },
      { id: 6, callFrame: frame("never called"), hitCount: 0 },
    ],
  };
  const boxes = flameBoxes(profile, 1000);
  t.deepEqual(boxes.map((b) => [b.name.split(" ")[0], b.depth, Math.round(b.x), Math.round(b.width)]), [
    ["(root)", 0, 0, 1000],
    ["onData", 1, 0, 700],
    ["encode<&>", 2, 0, 600],
    ["(garbage", 1, 700, 300],
  ]);
  const svg = flameGraph(profile, "relay <busy>");
  t.is(count(svg, /<rect /g), 5, "a background and four boxes");
  t.true(svg.includes("relay &lt;busy&gt;") && svg.includes("encode&lt;&amp;&gt;"), "names and title escaped");
  t.true(svg.includes("<title>encode&lt;&amp;&gt; (build/src/relay/relay-core.js:1): 60.0%</title>"));
  t.throws(() => flameBoxes({ nodes: [] } as never), { message: /not a \.cpuprofile/ });
});
