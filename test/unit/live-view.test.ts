// The live view of `npm start`: on a terminal, a block that fits its width
// whatever the figures (a wrapped line breaks the redraw); piped, a header
// once, then one line per frame.
import test from "ava";
import { LiveFrame, LiveView } from "../../src/relay/live-view.js";

const ORIGINS = ["guest", "deadline", "overflow", "unknown-device", "oversized", "shutdown", "device-removed", "session-lost", "recovered"];

/** A frame with every origin and drop reason, and figures as large as a long run gets. */
function busyFrame(elapsedS: number): LiveFrame {
  return {
    elapsedS,
    session: "up (epoch 1923059476481)",
    inFlight: 4096,
    queued: 65_536,
    creditWindow: 1024,
    records: 123_456_789_012,
    groups: 123_456_789_012,
    groupsSent: 123_456_789_012,
    answers: ORIGINS.map((o, i) => [o, { success: 98_765_432_109 - i, invalid: 12_345_678_901 + i }]),
    dropped: [["late", 123_456], ["duplicate", 7], ["unknown-tag", 99_999], ["foreign-session", 42]],
    refused: 1_000_000,
    latencyUs: { p50: 1_234_567, p99: 9_999_999 },
    guestLatencyUs: { p50: 512, p99: 25_000 },
    emulator: { delivered: 123_456_789_999, outstanding: 4096, violations: 123_456 },
  };
}

function terminal(columns: number): { isTTY: true; columns: number; written: string[]; write(s: string): boolean } {
  return { isTTY: true, columns, written: [], write(s: string) { this.written.push(s); return true; } };
}

const TEXT = {
  title: "iopf-relay demo: kernel emulator (20000 groups/s, 8 devices) -> relay -> agent",
  notes: ["INVALID answers are on purpose: the demo agent answers demo-dev7 INVALID and demo-dev8 FAILURE (written to the kernel as INVALID), 2 of 8 devices, so about a quarter of the guest's answers."],
};

for (const columns of [80, 60, 40]) {
  test(`at ${columns} columns every line of the block is shorter than the terminal`, (t) => {
    const out = terminal(columns);
    const view = new LiveView(out, TEXT);
    view.render(busyFrame(1));
    view.render(busyFrame(99_999));
    const lines = out.written.join("").replace(/\x1b\[\d*[AJ]/g, "").replace(/\r/g, "").split("\n");
    const wide = lines.filter((l) => l.length >= columns);
    t.deepEqual(wide, []);
    t.true(lines.some((l) => /recovered/.test(l)), "the last origin is shown, on a line of its own if need be");
  });
}

test("the redraw climbs exactly the lines it drew", (t) => {
  const out = terminal(80);
  const view = new LiveView(out, TEXT);
  view.render(busyFrame(1));
  const drawn = out.written[0]!.split("\n").length - 1;
  view.render(busyFrame(2));
  t.true(out.written[1]!.startsWith(`\x1b[${drawn}A\r\x1b[J`), JSON.stringify(out.written[1]!.slice(0, 20)));
});

test("piped: the title, the notes and what the fields are, once; then one line per frame", (t) => {
  const written: string[] = [];
  const view = new LiveView({ isTTY: false, write: (s: string) => (written.push(s), true) }, TEXT);
  view.render(busyFrame(1));
  view.render(busyFrame(2));
  const lines = written.join("").trimEnd().split("\n");
  t.is(lines[0], TEXT.title);
  t.is(lines[1], TEXT.notes[0]);
  t.regex(lines[2]!, /^One line a second: /);
  t.is(lines.length, 5);
  t.regex(lines[3]!, /^1 s \| session up/);
  t.regex(lines[4]!, /^2 s \| session up/);
  t.regex(lines[4]!, /latency p50 1\.23 s p99 10\.00 s/);
});
