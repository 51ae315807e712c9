// The kernel emulator keeps the fault fd's contract: whole groups of 40-byte
// records, cookies from 1 reused lowest-first, every violation recorded,
// detach answering a device's waiting groups.
import test from "ava";
import * as libc from "../../src/kernel/libc.js";
import { FaultQueue } from "../../src/kernel/fault-queue.js";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import type { FaultRecord } from "../../src/kernel/uapi-structs.js";

/** Reads until `count` records came (the emulator's socket may split them), or fails after 5 s. */
async function readRecords(q: FaultQueue, count: number): Promise<FaultRecord[]> {
  const out: FaultRecord[] = [];
  const deadline = Date.now() + 5000;
  while (out.length < count) {
    out.push(...q.read());
    if (out.length >= count) break;
    if (Date.now() > deadline) throw new Error(`expected ${count} records, got ${out.length} in 5 s`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return out;
}

async function withEmulator(fn: (emu: KernelEmulator, q: FaultQueue) => Promise<void>): Promise<void> {
  const emu = await KernelEmulator.start();
  try {
    await fn(emu, new FaultQueue(emu.faultFd));
  } finally {
    await emu.close();
  }
}

test("cookies start at 1 and the lowest answered one is reused first", async (t) => {
  await withEmulator(async (emu, q) => {
    await emu.raise({ dev: 1, grpid: 0, count: 5 });
    t.deepEqual((await readRecords(q, 5)).map((r) => r.cookie), [1, 2, 3, 4, 5]);
    q.writeAnswers([{ cookie: 4, code: 0 }, { cookie: 2, code: 1 }]);
    await emu.stats(); // answers written before a command are read before it
    await emu.raise({ dev: 1, grpid: 10, count: 3 });
    t.deepEqual((await readRecords(q, 3)).map((r) => r.cookie), [2, 4, 6]);
  });
});

test("a group is its records in order, one cookie, LAST_PAGE on the last, PASID_VALID when pasid is not 0", async (t) => {
  await withEmulator(async (emu, q) => {
    await emu.raise({ dev: 7, pasid: 3, grpid: 9, perm: 3, addr: 0x4000_0000, records: 3 });
    await emu.raise({ dev: 8, pasid: 0, grpid: 1, perm: 1, addr: 0x1000, records: 1 });
    const recs = await readRecords(q, 4);
    t.deepEqual(recs, [
      { flags: 1, devId: 7, pasid: 3, grpid: 9, perm: 3, addr: 0x4000_0000, length: 0, cookie: 1 },
      { flags: 1, devId: 7, pasid: 3, grpid: 9, perm: 3, addr: 0x4000_1000, length: 0, cookie: 1 },
      { flags: 3, devId: 7, pasid: 3, grpid: 9, perm: 3, addr: 0x4000_2000, length: 0, cookie: 1 },
      { flags: 2, devId: 8, pasid: 0, grpid: 1, perm: 1, addr: 0x1000, length: 0, cookie: 2 },
    ]);
    const stats = await emu.stats();
    t.like(stats, { deliveredGroups: 2, deliveredRecords: 4, outstanding: 2, violationCount: 0 });
  });
});

test("every violation class is recorded: unknown, repeated, bad code, partial answer, unanswered at the end", async (t) => {
  const emu = await KernelEmulator.start();
  try {
    const q = new FaultQueue(emu.faultFd);
    await emu.raise({ dev: 1, count: 3 });
    await readRecords(q, 3);
    q.writeAnswers([
      { cookie: 1, code: 0 },
      { cookie: 1, code: 0 }, // repeated
      { cookie: 99, code: 1 }, // never assigned
      { cookie: 2, code: 2 }, // neither SUCCESS nor INVALID: the group stays waiting
      { cookie: 2, code: 1 }, // which this then answers
    ]);
    const mid = await emu.stats();
    t.deepEqual(mid.violations, [
      { kind: "repeated-cookie", cookie: 1, code: 0 },
      { kind: "unknown-cookie", cookie: 99, code: 1 },
      { kind: "bad-code", cookie: 2, code: 2 },
    ]);
    t.like(mid, { answeredSuccess: 1, answeredInvalid: 1, outstanding: 1 });
    t.is(mid.latencyNs.count, 2);
    t.true(mid.latencyNs.p50 > 0 && mid.latencyNs.p50 <= mid.latencyNs.max);

    // 12 bytes: one answer and half of another, which never completes.
    const partial = Buffer.alloc(12);
    partial.writeUInt32LE(3, 0);
    libc.write(emu.faultFd, partial, 12);
    await new Promise((r) => setTimeout(r, 120)); // past the emulator's 50 ms grace
    const after = await emu.stats();
    t.deepEqual(after.violations.slice(3), [{ kind: "partial-answer", bytes: 4 }]);
    t.is(after.outstanding, 0);

    await emu.raise({ dev: 5, grpid: 4 });
    await readRecords(q, 1);
    const final = await emu.quit();
    t.deepEqual(final.violations.slice(4), [{ kind: "unanswered-group", cookie: 1, dev: 5 }]);
    t.is(final.violationCount, 5);
    t.deepEqual(final.violationKinds, { "unknown-cookie": 1, "repeated-cookie": 1, "unread-cookie": 0, "bad-code": 1, "partial-answer": 1, "unanswered-group": 1 });
  } finally {
    await emu.close();
  }
});

test("detach answers the device's waiting groups itself; later answers for them are unknown cookies", async (t) => {
  await withEmulator(async (emu, q) => {
    await emu.raise({ dev: 1, grpid: 0, count: 2 });
    await emu.raise({ dev: 2, grpid: 0, count: 1 });
    const recs = await readRecords(q, 3);
    t.deepEqual(await emu.detach(1), { answered: 2, dropped: 0 });
    q.writeAnswers(recs.map((r) => ({ cookie: r.cookie, code: 0 })));
    const stats = await emu.stats();
    t.like(stats, { autoAnswered: 2, answeredSuccess: 1, outstanding: 0, violationCount: 2 });
    t.deepEqual(stats.violations, [
      { kind: "unknown-cookie", cookie: 1, code: 0, detail: "answered by detach" },
      { kind: "unknown-cookie", cookie: 2, code: 0, detail: "answered by detach" },
    ]);
    // The cookies the detach freed are reused, lowest first.
    await emu.raise({ dev: 2, grpid: 5, count: 2 });
    t.deepEqual((await readRecords(q, 2)).map((r) => r.cookie), [1, 2]);
  });
});

test("a command it cannot carry out is refused with what it expected", async (t) => {
  await withEmulator(async (emu) => {
    await t.throwsAsync(emu.raise({ dev: 1, records: 0 }), { message: /kernel emulator refused a command: records must be 1\.\.1638/ });
  });
});

test("slowest reports each answered group's delivery time and latency, the slowest kept", async (t) => {
  await withEmulator(async (emu, q) => {
    const before = Number(process.hrtime.bigint());
    await emu.raise({ dev: 1, grpid: 0, count: 3 });
    const recs = await readRecords(q, 3);
    q.writeAnswers([{ cookie: recs[0]!.cookie, code: 0 }]);
    await emu.stats();
    // Answered at least 20 ms after the first: the two slowest.
    await new Promise((r) => setTimeout(r, 20));
    q.writeAnswers(recs.slice(1).map((r) => ({ cookie: r.cookie, code: 0 })));
    await emu.stats();
    const after = Number(process.hrtime.bigint());
    const slow = (await emu.slowest()).sort((a, b) => a.latencyNs - b.latencyNs);
    t.is(slow.length, 3);
    for (const s of slow) {
      t.true(s.deliveredNs >= before && s.deliveredNs + s.latencyNs <= after, `on this process's CLOCK_MONOTONIC, within the test: ${JSON.stringify({ before, after, s })}`);
    }
    // One delivery (one write into the socket), two answer times at least 20 ms apart (a timer may fire a little early).
    t.is(new Set(slow.map((s) => s.deliveredNs)).size, 1);
    t.is(slow[1]!.latencyNs, slow[2]!.latencyNs);
    t.true(slow[1]!.latencyNs - slow[0]!.latencyNs >= 19e6, JSON.stringify(slow));
  });
});
