// The handoff protocol's messages (src/relay/handoff/handoff-message.ts):
// every id is a whole number in its range or the request is refused naming
// the key; a refusal repeats the request's op when it had a string one; and
// every reply, however long its error, fits MAX_REPLY_BYTES.
import test from "ava";
import fc from "fast-check";
import {
  checkRequest, decodeRequest, encodeReply, HANDOFF_VERSION, HandoffError, MAX_QUEUES_PER_ATTACH, MAX_REPLY_BYTES, refusal, type HandoffRequest,
} from "../../src/relay/handoff/handoff-message.js";

const U32_MAX = 0xffff_ffff;
const PID_MAX = 0x7fff_ffff;

function parse(body: object, fds = 0): HandoffRequest {
  return checkRequest(decodeRequest(JSON.stringify(body)), fds);
}

/** The error parse gives, or null when it accepts. */
function error(body: object, fds = 0): string | null {
  try {
    parse(body, fds);
    return null;
  } catch (err) {
    if (!(err instanceof HandoffError)) throw err;
    return err.message;
  }
}

/** Anything JSON can carry where an id goes, but a whole number in 0..max. */
const notAnId = (max: number): fc.Arbitrary<unknown> => fc.oneof(
  fc.integer({ min: -0x7fff_ffff, max: -1 }),
  fc.integer({ min: max + 1, max: Number.MAX_SAFE_INTEGER }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.nat(), { maxLength: 2 }), fc.object({ maxDepth: 1 }),
);

const queue = (q: object = {}): object => ({ v: 1, op: "attach", queues: [{ fd: 0, faultId: 5, devices: [], ...q }] });

test("faultId, devIds and the fd index are whole numbers 0..4294967295; anything else is refused naming the key", (t) => {
  fc.assert(fc.property(fc.integer({ min: 0, max: U32_MAX }), (id) => {
    t.like(parse(queue({ faultId: id }), 1), { op: "attach", queues: [{ faultId: id }] });
    t.like(parse({ v: 1, op: "detach", faultId: id, devIds: [id] }), { op: "detach", faultId: id, devIds: [id] });
  }));
  fc.assert(fc.property(notAnId(U32_MAX), (bad) => {
    t.regex(error(queue({ faultId: bad }), 1) ?? "", /^attach\.queues\[0\]\.faultId: expected an integer 0\.\.4294967295, got /);
    t.regex(error({ v: 1, op: "detach", faultId: bad }) ?? "", /^detach\.faultId: expected an integer 0\.\.4294967295, got /);
    t.regex(error({ v: 1, op: "detach", faultId: 1, devIds: [1, bad] }) ?? "", /^detach\.devIds\[1\]: expected an integer 0\.\.4294967295, got /);
    t.regex(error(queue({ fd: bad }), 1) ?? "", /^attach\.queues\[0\]\.fd: expected an integer 0\.\.4294967295, got /);
  }));
});

test("vmmPid is a process id 1..2147483647", (t) => {
  fc.assert(fc.property(fc.integer({ min: 1, max: PID_MAX }), (pid) => {
    t.like(parse({ ...queue(), vmmPid: pid }, 1), { vmmPid: pid });
  }));
  fc.assert(fc.property(fc.oneof(notAnId(PID_MAX), fc.constant(0)), (bad) => {
    t.regex(error({ ...queue(), vmmPid: bad }, 1) ?? "", /^attach\.vmmPid: expected a process id, an integer 1\.\.2147483647, got /);
  }));
});

test("an attach names 1 to 16 queues; one without an fd brings at least one device", (t) => {
  const many = (n: number): object => ({ v: 1, op: "attach", queues: Array.from({ length: n }, (_, i) => ({ faultId: i, devices: [{ devId: i }] })) });
  t.is(MAX_QUEUES_PER_ATTACH, 16);
  t.like(parse(many(16)), { op: "attach" });
  t.regex(error(many(17)) ?? "", /^attach\.queues: expected at most 16 queues in one attach, got 17; send several attach requests$/);
  t.regex(error(many(0)) ?? "", /^attach\.queues: expected a non-empty array of queues, got \[\]$/);
  t.like(parse(queue(), 1), { queues: [{ fd: 0, devices: [] }] });
  t.regex(error({ v: 1, op: "attach", queues: [{ faultId: 5, devices: [] }] }) ?? "", /^attach\.queues\[0\]\.devices: expected at least one device to add to fault 5/);
});

test("a detach of a whole queue leaves devIds out; devIds: [] is refused", (t) => {
  t.deepEqual(parse({ v: 1, op: "detach", faultId: 5 }), { op: "detach", faultId: 5, devIds: null });
  t.regex(error({ v: 1, op: "detach", faultId: 5, devIds: [] }) ?? "", /^detach\.devIds: expected a non-empty array of device ids \(leave it out to detach the whole queue\)/);
});

test("the op a refusal repeats: the request's, when it is an object with a string op; null otherwise", (t) => {
  fc.assert(fc.property(fc.string(), (op) => {
    t.is(decodeRequest(JSON.stringify({ v: 1, op })).op, op);
  }));
  for (const body of [{ v: 1 }, { v: 1, op: 7 }, { v: 1, op: null }, { v: 1, op: ["attach"] }]) t.is(decodeRequest(JSON.stringify(body)).op, null);
  t.throws(() => decodeRequest("[1]"), { instanceOf: HandoffError, message: /^\(message\): expected a JSON object/ });
  t.throws(() => decodeRequest("{"), { instanceOf: HandoffError, message: /^expected one JSON object per message/ });
});

test("every refusal fits MAX_REPLY_BYTES, its op and error intact or the error cut on a character with '...'", (t) => {
  fc.assert(fc.property(fc.option(fc.string({ unit: "grapheme" }), { nil: null }), fc.string({ unit: fc.constantFrom("x", "\"", "\\", "é", "\u2028", "😀", "\ud800", "\u0001"), maxLength: 6000 }), (op, text) => {
    const reply = refusal(op, text);
    const bytes = encodeReply(reply);
    t.true(bytes.length <= MAX_REPLY_BYTES, `${bytes.length} bytes`);
    const back = JSON.parse(bytes.toString("utf8")) as { v: number; op: string | null; ok: boolean; error: string };
    t.like(back, { v: HANDOFF_VERSION, ok: false });
    t.is(back.op === null, op === null);
    if (!reply.ok && reply.error !== text) {
      t.true(reply.error.endsWith("..."));
      t.true(text.startsWith(reply.error.slice(0, -3)));
      // Cut as short as it had to be: one more character would not fit.
      t.true(bytes.length > MAX_REPLY_BYTES - 16, `${bytes.length} bytes after the cut`);
    }
  }), { numRuns: 300 });
});

test("the largest attach reply fits MAX_REPLY_BYTES", (t) => {
  const queues = Array.from({ length: MAX_QUEUES_PER_ATTACH }, () => ({ faultId: U32_MAX, devices: U32_MAX }));
  t.true(encodeReply({ v: HANDOFF_VERSION, op: "attach", ok: true, queues }).length <= MAX_REPLY_BYTES);
});
