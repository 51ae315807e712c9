// Any interleaving of what can happen to groups in flight gives each group
// read exactly one outcome and never answers a cookie for the wrong group.
// The kernel is modelled beside the ledger: cookies given at read, lowest
// free first, freed by an answer or by a detach (which answers the device's
// groups itself, with no event: the relay learns it only when the cookie is
// read again). The ledger's sink plays the answer writer: answers decided in
// one turn are written later, in a batch, and only then reach the kernel.
import test from "ava";
import fc from "fast-check";
import { Ledger, LedgerEntry, Route } from "../../src/fault/ledger.js";
import { AnswerOrigin, EndReason, FaultGroup, KernelCode } from "../../src/fault/fault-group.js";

type Op =
  | { op: "read"; source: number; dev: number; deadline: number; route: "queue" | "unknown" | "oversized" }
  | { op: "send"; n: number }
  | { op: "answer"; pick: number; code: KernelCode; forge: "live" | "random" | "old-epoch" }
  | { op: "advance"; ms: number; cancels: boolean }
  | { op: "flush" }
  | { op: "lose-session" }
  | { op: "remove-device"; dev: number }
  | { op: "detach"; source: number; dev: number }
  | { op: "source-gone"; source: number };

const SOURCES = [1, 2];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ op: fc.constant("read" as const), source: fc.constantFrom(...SOURCES), dev: fc.nat({ max: 3 }), deadline: fc.constantFrom(10, 100, 250), route: fc.constantFrom("queue" as const, "queue" as const, "queue" as const, "unknown" as const, "oversized" as const) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant("send" as const), n: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 5, arbitrary: fc.record({ op: fc.constant("answer" as const), pick: fc.nat(), code: fc.constantFrom(0 as const, 1 as const), forge: fc.constantFrom("live" as const, "live" as const, "random" as const, "old-epoch" as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 120 }), cancels: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ op: "flush" as const }) },
  { weight: 1, arbitrary: fc.constant({ op: "lose-session" as const }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("remove-device" as const), dev: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("detach" as const), source: fc.constantFrom(...SOURCES), dev: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("source-gone" as const), source: fc.constantFrom(...SOURCES) }) },
);

/** One fault queue as the kernel keeps it: which group holds each outstanding cookie. */
class KernelQueue {
  readonly owner = new Map<number, number>();
  gone = false;

  read(gid: number): number {
    let cookie = 1;
    while (this.owner.has(cookie)) cookie++;
    this.owner.set(cookie, gid);
    return cookie;
  }
}

interface Outcome {
  answered: { code: KernelCode; origin: AnswerOrigin }[];
  ended: EndReason[];
  written: number;
}

test("each group read gets exactly one outcome, and no answer reaches another group's cookie", (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 64 }), fc.array(opArb, { maxLength: 300 }), (recentMemory, ops) => {
      const kernels = new Map(SOURCES.map((s) => [s, new KernelQueue()]));
      const outcomes = new Map<number, Outcome>();
      const gidOf = new Map<FaultGroup, number>();
      const pending: LedgerEntry<string>[] = [];
      const problems: string[] = [];
      const outcome = (g: FaultGroup): Outcome => outcomes.get(gidOf.get(g)!)!;
      const ledger: Ledger<string> = new Ledger<string>({
        answer: (e) => {
          outcome(e.group).answered.push({ code: e.code, origin: e.origin! });
          pending.push(e);
        },
        ended: (e, reason) => outcome(e.group).ended.push(reason),
      }, { recentMemory });
      /** The answer writer's turn: what is still to be answered reaches the kernel, then the ledger hears it was written. */
      const flush = (): void => {
        for (const e of pending.splice(0)) {
          if (e.state !== "answering") continue;
          const k = kernels.get(e.group.sourceId)!;
          const gid = gidOf.get(e.group)!;
          if (!k.gone) {
            const owner = k.owner.get(e.group.cookie);
            if (owner !== undefined && owner !== gid) problems.push(`group ${gid}'s answer written to cookie ${e.group.cookie}, which group ${owner} holds`);
            if (owner === gid) k.owner.delete(e.group.cookie);
          }
          outcomes.get(gid)!.written++;
          ledger.written(e);
        }
      };
      let now = 0;
      let epoch = 1;
      let gid = 0;
      let guestAnswered = 0;
      const sent: { tag: number; epoch: number }[] = [];
      for (const o of ops) {
        switch (o.op) {
          case "read": {
            const k = kernels.get(o.source)!;
            if (k.gone) break;
            const id = ++gid;
            const group: FaultGroup = { sourceId: o.source, cookie: k.read(id), devId: o.dev, pasid: 0, pasidValid: false, grpid: id % 512, pages: [{ addr: 4096, perm: 1 }], readAtMs: now };
            gidOf.set(group, id);
            outcomes.set(id, { answered: [], ended: [], written: 0 });
            const route: Route = o.route === "queue" ? { deadlineMs: o.deadline, deadlineCode: KernelCode.INVALID }
              : { answer: KernelCode.INVALID, origin: o.route === "unknown" ? "unknown-device" : "oversized" };
            ledger.admit(group, route, o.route === "queue" ? `dev ${o.dev}` : null);
            break;
          }
          case "send":
            for (const e of ledger.takeForSending(o.n, epoch)) sent.push({ tag: e.tag, epoch });
            break;
          case "answer": {
            const known = sent[o.pick % Math.max(1, sent.length)];
            const tag = o.forge === "random" ? (o.pick % 1000) + 1 : (known?.tag ?? 1);
            const ep = o.forge === "old-epoch" ? epoch - 1 : epoch;
            if (ledger.guestAnswer(ep, tag, o.code) === "answered") guestAnswered++;
            break;
          }
          case "advance": {
            now += o.ms;
            const expired = ledger.expire(now);
            if (!o.cancels) ledger.owe(expired, epoch);
            break;
          }
          case "flush":
            flush();
            break;
          case "lose-session":
            ledger.forgiveOwed();
            ledger.requeueSession(epoch);
            epoch++;
            break;
          case "remove-device":
            ledger.drain("device-removed", KernelCode.INVALID, (e) => e.group.devId === o.dev);
            break;
          case "detach": {
            // The kernel answers the device's groups itself and frees their cookies; the ledger is not told.
            const k = kernels.get(o.source)!;
            for (const [cookie, owner] of [...k.owner]) {
              const g = [...gidOf].find(([, id]) => id === owner)?.[0];
              if (g?.devId === o.dev) k.owner.delete(cookie);
            }
            break;
          }
          case "source-gone":
            kernels.get(o.source)!.gone = true;
            ledger.endSource(o.source, "source-gone");
            break;
        }
        if (ledger.queued < 0 || ledger.queued > ledger.size || ledger.sent < 0) problems.push(`queued ${ledger.queued}, sent ${ledger.sent} of ${ledger.size}`);
        // The ledger holds exactly the groups neither written nor ended.
        const held = [...outcomes.values()].filter((x) => x.written === 0 && x.ended.length === 0).length;
        if (ledger.held !== held) problems.push(`ledger holds ${ledger.held}, the model ${held}`);
      }
      ledger.drain("shutdown", KernelCode.SUCCESS);
      flush();
      if (ledger.size !== 0 || ledger.held !== 0) problems.push(`after shutdown the ledger still holds ${ledger.held}`);
      for (const [id, x] of outcomes) {
        // Exactly one outcome: a written answer, or an end; an answer decided and then ended (its cookie read again) is never written.
        const ends = x.ended.length;
        if (x.written + ends !== 1) problems.push(`group ${id}: ${x.written} answers written and ${ends} ends`);
        if (x.answered.length > 1) problems.push(`group ${id} answered ${x.answered.length} times`);
      }
      // Nothing stalls: every cookie of a live queue was answered by the relay or by the kernel.
      for (const [source, k] of kernels) if (!k.gone && k.owner.size > 0) problems.push(`source ${source}: cookies ${[...k.owner.keys()]} never answered`);
      const byGuest = [...outcomes.values()].filter((x) => x.answered[0]?.origin === "guest").length;
      if (byGuest !== guestAnswered) problems.push(`${guestAnswered} guest answers accepted, ${byGuest} groups answered by the guest`);
      if (problems.length > 0) {
        t.log(problems.slice(0, 5).join("\n"));
        return false;
      }
      return true;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test("a cookie read again ends the group that held it: its answer is never written, its tag is dropped as late", (t) => {
  const written: number[] = [];
  const ended: string[] = [];
  const ledger = new Ledger<string>({ answer: (e) => written.push(e.group.cookie), ended: (e, reason) => ended.push(`${e.tag}:${reason}`) });
  const group = (devId: number): FaultGroup => ({ sourceId: 1, cookie: 7, devId, pasid: 0, pasidValid: false, grpid: 0, pages: [], readAtMs: 0 });
  const route: Route = { deadlineMs: 100, deadlineCode: KernelCode.INVALID };
  const first = ledger.admit(group(1), route, "a").entry;
  ledger.takeForSending(1, 5);
  const { entry: second, ended: old } = ledger.admit(group(2), route, "b");
  t.is(old, first, "the older group is handed back, to cancel its tag at the agent");
  t.deepEqual(ended, [`${first.tag}:kernel-ended`]);
  t.is(ledger.guestAnswer(5, first.tag, KernelCode.SUCCESS), "late", "the agent's answer for the ended group is dropped");
  t.deepEqual(written, []);
  ledger.takeForSending(1, 5);
  t.is(ledger.guestAnswer(5, second.tag, KernelCode.SUCCESS), "answered");
  t.deepEqual(written, [7], "only the new group's answer");
});

test("a tag owed after its deadline gives its credit back on a late answer, however much the ledger forgot", (t) => {
  const ledger = new Ledger<string>({ answer: () => undefined, ended: () => undefined }, { recentMemory: 1 });
  const route: Route = { deadlineMs: 10, deadlineCode: KernelCode.INVALID };
  const g = (cookie: number): FaultGroup => ({ sourceId: 1, cookie, devId: 1, pasid: 0, pasidValid: false, grpid: 0, pages: [], readAtMs: 0 });
  ledger.admit(g(1), route, "a");
  const [held] = ledger.takeForSending(1, 3);
  ledger.owe(ledger.expire(20), 3);
  t.is(ledger.owedCount, 1, "the agent still holds it: it counts against the window");
  // Many groups settle after it, so the bounded memory of settled tags forgets it.
  for (let c = 2; c < 50; c++) ledger.admit(g(c), { answer: KernelCode.INVALID, origin: "unknown-device" }, null);
  for (let c = 50; c < 60; c++) ledger.admit(g(c), route, "a");
  ledger.expire(40);
  t.is(ledger.guestAnswer(3, held!.tag, KernelCode.SUCCESS), "late");
  t.is(ledger.owedCount, 0, "the late answer gave the credit back");
});
