// Any interleaving of reads, sends, guest answers (real, forged, repeated,
// stale), deadlines, lost sessions, device removal and shutdown answers every
// group exactly once, and nothing that was not read.
import test from "ava";
import fc from "fast-check";
import { Ledger, LedgerLimits } from "../../src/fault/ledger.js";
import { AnswerOrigin, FaultGroup, KernelCode } from "../../src/fault/fault-group.js";

type Op =
  | { op: "read"; dev: number; deadline: number }
  | { op: "send"; n: number }
  | { op: "answer"; pick: number; code: KernelCode; forge: "live" | "random" | "old-epoch" }
  | { op: "advance"; ms: number }
  | { op: "lose-session" }
  | { op: "remove-device"; dev: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant("read" as const), dev: fc.nat({ max: 3 }), deadline: fc.constantFrom(10, 100, 250) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("send" as const), n: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("answer" as const), pick: fc.nat(), code: fc.constantFrom(0 as const, 1 as const), forge: fc.constantFrom("live" as const, "live" as const, "random" as const, "old-epoch" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 120 }) }) },
  { weight: 1, arbitrary: fc.constant({ op: "lose-session" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove-device" as const), dev: fc.nat({ max: 3 }) }) },
);

const limitsArb: fc.Arbitrary<LedgerLimits> = fc.record({
  maxQueued: fc.integer({ min: 1, max: 20 }),
  overflow: fc.constantFrom("reject-new" as const, "drop-oldest" as const),
  recentMemory: fc.integer({ min: 1, max: 64 }),
});

test("every group read is answered exactly once, whatever happens", (t) => {
  fc.assert(
    fc.property(limitsArb, fc.array(opArb, { maxLength: 300 }), (limits, ops) => {
      const answers = new Map<number, { code: KernelCode; origin: AnswerOrigin }[]>();
      const ledger = new Ledger({ answer: (g, code, origin) => answers.set(g.cookie, [...(answers.get(g.cookie) ?? []), { code, origin }]) }, limits);
      let now = 0;
      let epoch = 1;
      let cookie = 0;
      let guestAnswered = 0;
      const sentTags: { tag: number; epoch: number }[] = [];
      for (const o of ops) {
        switch (o.op) {
          case "read": {
            const group: FaultGroup = { sourceId: 1, cookie: ++cookie, devId: o.dev, pasid: 0, pasidValid: false, grpid: cookie % 512, pages: [{ addr: 4096, perm: 1 }], readAtMs: now };
            const before = ledger.queued;
            ledger.admit(group, o.deadline);
            // A read never grows the queue past its bound; resends of a lost
            // session may, since those groups were admitted already.
            if (ledger.queued > Math.max(limits.maxQueued, before)) return false;
            break;
          }
          case "send":
            for (const e of ledger.takeForSending(o.n, epoch)) sentTags.push({ tag: e.tag, epoch });
            break;
          case "answer": {
            const known = sentTags[o.pick % Math.max(1, sentTags.length)];
            const tag = o.forge === "random" ? (o.pick % 1000) + 1 : (known?.tag ?? 1);
            const ep = o.forge === "old-epoch" ? epoch - 1 : epoch;
            if (ledger.guestAnswer(ep, tag, o.code) === "answered") guestAnswered++;
            break;
          }
          case "advance":
            now += o.ms;
            ledger.expire(now);
            break;
          case "lose-session":
            ledger.requeueSession(epoch);
            epoch++;
            break;
          case "remove-device":
            ledger.drain("device-removed", (e) => e.group.devId === o.dev);
            break;
        }
      }
      ledger.drain("shutdown");
      if (ledger.size !== 0) return false;
      // Every cookie read has exactly one answer, and no answer names another.
      if (answers.size !== cookie) return false;
      for (const list of answers.values()) if (list.length !== 1) return false;
      const byGuest = [...answers.values()].filter((l) => l[0]?.origin === "guest").length;
      return byGuest === guestAnswered;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

function group(cookie: number, readAtMs = 0): FaultGroup {
  return { sourceId: 1, cookie, devId: 1, pasid: 0, pasidValid: false, grpid: 0, pages: [{ addr: 0, perm: 1 }], readAtMs };
}

test("late, duplicate, foreign and forged answers are told apart", (t) => {
  const origins: AnswerOrigin[] = [];
  const ledger = new Ledger({ answer: (_g, _c, o) => origins.push(o) }, { maxQueued: 10, overflow: "reject-new", recentMemory: 10 });
  ledger.admit(group(1), 100);
  ledger.admit(group(2), 100);
  const [a, b] = ledger.takeForSending(2, 7);
  t.is(ledger.guestAnswer(7, a!.tag, 0), "answered");
  t.is(ledger.guestAnswer(7, a!.tag, 0), "duplicate");
  t.is(ledger.guestAnswer(6, b!.tag, 0), "foreign-session");
  ledger.expire(100);
  t.is(ledger.guestAnswer(7, b!.tag, 0), "late");
  t.is(ledger.guestAnswer(7, 4242, 0), "unknown-tag");
  t.deepEqual(origins, ["guest", "deadline"]);
});

test("a lost session's groups are sent again, first and in read order, with their deadlines running", (t) => {
  const ledger = new Ledger({ answer: () => undefined });
  for (let c = 1; c <= 3; c++) ledger.admit(group(c, c), 100);
  ledger.takeForSending(2, 1);
  ledger.admit(group(4, 4), 100);
  t.is(ledger.requeueSession(1), 2);
  const again = ledger.takeForSending(10, 2);
  t.deepEqual(again.map((e) => e.group.cookie), [1, 2, 3, 4]);
  t.is(again[0]?.deadlineMs, 101);
});

test("overflow: reject-new answers the newcomer, drop-oldest the oldest queued", (t) => {
  for (const overflow of ["reject-new", "drop-oldest"] as const) {
    const answered: number[] = [];
    const ledger = new Ledger({ answer: (g) => answered.push(g.cookie) }, { maxQueued: 2, overflow, recentMemory: 4 });
    for (let c = 1; c <= 3; c++) ledger.admit(group(c), 100);
    t.deepEqual(answered, overflow === "reject-new" ? [3] : [1], overflow);
    t.is(ledger.queued, 2);
  }
});

test("deadlines of different durations expire in deadline order", (t) => {
  const expired: number[] = [];
  const ledger = new Ledger({ answer: (g) => expired.push(g.cookie) });
  ledger.admit(group(1, 0), 250);
  ledger.admit(group(2, 0), 10);
  ledger.admit(group(3, 5), 10);
  t.is(ledger.nextDeadlineMs(), 10);
  ledger.expire(10);
  t.deepEqual(expired, [2]);
  t.is(ledger.nextDeadlineMs(), 15);
  ledger.expire(300);
  t.deepEqual(expired, [2, 3, 1]);
  t.is(ledger.nextDeadlineMs(), null);
});
