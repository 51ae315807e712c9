// The agent's pure parts: the handler guard, the answer batcher, policy
// rules, config validation, the app protocol's line reader, maps parsing.
import test from "ava";
import { LineReader, MAX_LINE_BYTES } from "../../guest-agent/app/protocol.js";
import { ConfigError, parseConfig } from "../../guest-agent/config.js";
import { agentCapabilities } from "../../guest-agent/capabilities.js";
import { Feature } from "../../src/link/negotiation.js";
import { FaultHandler, FAILURE, INVALID, SUCCESS } from "../../guest-agent/handlers/handler.js";
import { answerColumns, GuardedResult, runGuarded } from "../../guest-agent/handlers/guard.js";
import { decodePageRequests } from "../../src/link/hot-codec.js";
import { pb } from "../../src/link/messages.js";
import { findMapping, parseMaps } from "../../guest-agent/handlers/procmem/maps.js";
import { policyHandler } from "../../guest-agent/handlers/policy.js";
import { AnswerBatcher, Pending } from "../../guest-agent/session/answer-batcher.js";
import { tick } from "../support/memory-stream.js";

const req = (address: number, perm = 1) => ({ tag: 1, endpoint: 8, pasid: 5, pasidValid: true, groupIndex: 0, pages: [{ address, perm, raw: new Uint8Array() }], budgetUs: 0 });

function guarded(handler: FaultHandler, budgetMs = 20, cancel = new Pending(1)): Promise<GuardedResult> {
  return new Promise((resolve) => runGuarded(handler, req(0), budgetMs, cancel, resolve));
}

test("guard: answers, throws, rejections, bad answers and overruns", async (t) => {
  t.deepEqual(await guarded({ handle: () => FAILURE }), { code: FAILURE, outcome: "answered" });
  t.like(await guarded({ handle: () => { throw new Error("boom"); } }), { code: INVALID, outcome: "threw", detail: "boom" });
  t.like(await guarded({ handle: () => Promise.reject(new Error("later")) }), { code: INVALID, outcome: "threw" });
  t.like(await guarded({ handle: () => 7 as never }), { code: INVALID, outcome: "bad-answer" });
  let aborted = false;
  const hung = await guarded({ handle: (_r, ctx) => new Promise(() => ctx.signal.addEventListener("abort", () => (aborted = true))) }, 15);
  t.like(hung, { code: INVALID, outcome: "overran" });
  t.true(aborted, "the handler is told to stop");
});

test("guard: a cancel first reports aborted, and a late answer is ignored", async (t) => {
  const cancel = new Pending(1);
  let answer!: (code: number) => void;
  const results: GuardedResult[] = [];
  runGuarded({ handle: () => new Promise((r) => (answer = r as (c: number) => void)) }, req(0), 1000, cancel, (r) => results.push(r));
  cancel.abort("cancelled by the relay");
  answer(SUCCESS);
  await tick(5);
  t.is(results.length, 1);
  t.like(results[0], { outcome: "aborted", detail: "cancelled by the relay" });
});

test("guard: a request cancelled before it runs is reported aborted without calling the handler", async (t) => {
  const cancel = new Pending(1);
  cancel.abort("the session ended");
  let called = false;
  t.like(await guarded({ handle: () => ((called = true), SUCCESS) }, 20, cancel), { code: INVALID, outcome: "aborted", detail: "the session ended" });
  t.false(called);
});

test("pending: the signal made after a cancel is already aborted, with the reason; a second abort changes nothing", (t) => {
  const p = new Pending(1);
  p.abort("first");
  p.abort("second");
  t.is(p.cancelReason, "first");
  t.true(p.signal.aborted);
  t.is((p.signal.reason as Error).message, "first");
  const q = new Pending(2);
  const s = q.signal;
  q.abort("later");
  t.true(s.aborted, "a signal taken before the cancel aborts with it");
});

test("batcher: one frame per turn, exactly once, nothing after a cancel or a session end", async (t) => {
  const frames: { tag: number; code: number }[][] = [];
  const batcher = new AnswerBatcher({ sendResponses: (tags, codes) => (frames.push(tags.map((tag, i) => ({ tag, code: codes[i]! }))), tags.length) });
  const [a, b, c, d] = [1, 2, 3, 4].map((tag) => batcher.hold(tag)) as [ReturnType<AnswerBatcher["hold"]>, ReturnType<AnswerBatcher["hold"]>, ReturnType<AnswerBatcher["hold"]>, ReturnType<AnswerBatcher["hold"]>];
  t.true(batcher.answer(a, SUCCESS));
  t.false(batcher.answer(a, INVALID), "a second answer is refused");
  t.true(batcher.answer(b, INVALID));
  t.true(batcher.answer(c, SUCCESS));
  t.is(batcher.cancel([3], "cancelled"), 0, "answered but not sent yet: the queued answer is withdrawn");
  await tick(1);
  t.deepEqual(frames, [[{ tag: 1, code: SUCCESS }, { tag: 2, code: INVALID }]]);
  const d2 = batcher.hold(5);
  batcher.dropAll("session ended");
  t.true(d.signal.aborted && d2.signal.aborted);
  t.false(batcher.answer(d, SUCCESS));
  // A new session reusing tag 4: the old entry's answer cannot take its place.
  const fresh = batcher.hold(4);
  t.false(batcher.answer(d, FAILURE));
  t.true(batcher.answer(fresh, SUCCESS));
  await tick(1);
  t.deepEqual(frames[1], [{ tag: 4, code: SUCCESS }]);
});

test("policy: first covering rule per page, the worst page answers the group", (t) => {
  const h = policyHandler(
    [
      { start: 0x1000, end: 0x3000, perm: 1, answer: "success" },
      { start: 0x1000, end: 0x3000, perm: 3, answer: "failure" },
    ],
    "invalid",
  );
  t.is(h.handle(req(0x1000, 1), { signal: new AbortController().signal }), SUCCESS);
  t.is(h.handle(req(0x2000, 3), { signal: new AbortController().signal }), FAILURE);
  t.is(h.handle(req(0x3000, 1), { signal: new AbortController().signal }), INVALID);
  t.is(h.handle(req(0x1000, 1 | 8), { signal: new AbortController().signal }), SUCCESS, "the privileged bit is not a permission");
});

test("policy: the answer from a decoded batch's columns is the answer from the request object", (t) => {
  const h = policyHandler([{ start: 0x1000, end: 0x3000, perm: 1, answer: "success" }, { start: 0x2000, end: 0x4000, perm: 3, answer: "failure" }], "invalid");
  const pages = (ps: [number, number][]) => ps.map(([address, perm]) => ({ address, perm, raw: new Uint8Array() }));
  const requests = [[[0x1000, 1]], [[0x2000, 3]], [[0x1000, 1], [0x5000, 1]], [[0x2000, 1], [0x3000, 2]], []] as [number, number][][];
  const objects = requests.map((ps, i) => ({ ...req(0), tag: i + 1, pages: pages(ps) }));
  const columns = decodePageRequests(pb.PageRequestBatch.encode({ requests: objects }).finish());
  const signal = new AbortController().signal;
  t.deepEqual(objects.map((_, i) => h.handleColumns!(columns, i)), objects.map((o) => h.handle(o, { signal })));
  t.deepEqual(objects.map((o) => h.handle(o, { signal })), [SUCCESS, FAILURE, INVALID, FAILURE, SUCCESS]);
});

test("a synchronous answer from the columns: a throw or a value that is no code becomes INVALID with its outcome", (t) => {
  const columns = decodePageRequests(pb.PageRequestBatch.encode({ requests: [req(0x1000)] }).finish());
  t.is(answerColumns({ handleColumns: () => FAILURE }, columns, 0), FAILURE);
  t.like(answerColumns({ handleColumns: () => { throw new Error("boom"); } }, columns, 0), { code: INVALID, outcome: "threw", detail: "boom" });
  t.like(answerColumns({ handleColumns: () => 7 as never }, columns, 0), { code: INVALID, outcome: "bad-answer" });
});

test("config: defaults, hex addresses, and errors that say what was expected", (t) => {
  const c = parseConfig({ credits: 8, handlers: [{ pasid: 3, handler: "policy", rules: [{ start: "0x1000", end: 8192, perm: "r", answer: "success" }] }] });
  t.is(c.credits, 8);
  t.is(c.port.name, "org.iopf-relay.0");
  t.like(c.handlers[0], { handler: "policy", pasid: 3, otherwise: "invalid" });
  t.throws(() => parseConfig({ credits: 0 }), { instanceOf: ConfigError, message: "config.credits: expected an integer in 1..9007199254740991, found 0" });
  t.throws(() => parseConfig({ handlers: [{ handler: "magic" }] }), { message: /handlers\[0\]\.handler: expected "procmem", "app", "policy" or "invalid", found "magic"/ });
  t.throws(() => parseConfig({ port: { connect: "udp:x" } }), { message: /config\.port\.connect: invalid transport address/ });
  t.throws(() => parseConfig({ crdits: 1 }), { message: /unknown field "crdits"/ });
});

test("line reader: lines across chunks, and an over-long line ends it", (t) => {
  const lines: string[] = [];
  const long: number[] = [];
  const r = new LineReader((l) => lines.push(l), (n) => long.push(n));
  r.push(Buffer.from('{"a":1}\n{"b"'));
  r.push(Buffer.from(':2}\n'));
  t.deepEqual(lines, ['{"a":1}', '{"b":2}']);
  r.push(Buffer.alloc(MAX_LINE_BYTES + 1, 0x61));
  t.is(long.length, 1);
  r.push(Buffer.from("x\n"));
  t.is(lines.length, 2, "nothing more after the failure");
});

test("maps: parse and look up, skipping what lies above 2^53", (t) => {
  const maps = parseMaps(
    [
      "00400000-00452000 r-xp 00000000 08:02 173521      /usr/bin/dbus-daemon",
      "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ",
      "7f0000021000-7f0000022000 ---p 00000000 00:00 0",
      "7f0000030000-7f0000031000 rw-s 00000000 00:05 1234   /dev/shm/x",
      "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]",
    ].join("\n"),
  );
  t.is(maps.length, 4);
  t.like(findMapping(maps, 0x400000), { read: true, write: false, exec: true, name: "/usr/bin/dbus-daemon" });
  t.like(findMapping(maps, 0x7f0000020fff), { write: true, shared: false });
  t.like(findMapping(maps, 0x7f0000021000), { read: false });
  t.like(findMapping(maps, 0x7f0000030000), { shared: true });
  t.is(findMapping(maps, 0x7f0000022000), undefined);
  t.is(findMapping(maps, 0x10), undefined);
});

test("the agent declines raw records unless configured, and offers its configured max_in_flight", (t) => {
  const plain = agentCapabilities(parseConfig({ maxInFlight: 100000 }));
  t.is(plain.features & Feature.RAW_RECORDS, 0);
  t.is(plain.limits.maxInFlight, 100000);
  t.not(agentCapabilities(parseConfig({ rawRecords: true })).features & Feature.RAW_RECORDS, 0);
  t.throws(() => parseConfig({ rawRecords: "yes" }), { message: /rawRecords/ });
});
