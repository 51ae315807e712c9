// The pump's worker journals each read() before the main thread sees it; a
// new pump seeded with the bytes a dead one had read past the last whole
// group resumes a stream at the right byte; a pause stops the worker's
// appends until resume, after which it appends to the file now at the path.
import test from "ava";
import { closeSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FaultPump, type PumpEvent } from "../../src/kernel/fault-pump.js";
import * as libc from "../../src/kernel/libc.js";
import { constants, encodeFaultRecord, type FaultRecord } from "../../src/kernel/uapi-structs.js";
import { JournalReplay } from "../../src/fault/journal-replay.js";
import { parseRecords } from "../../src/fault/journal-format.js";

const LAST = constants.IOMMU_PGFAULT_FLAGS_LAST_PAGE;
const record = (cookie: number, last = true): Buffer =>
  encodeFaultRecord({ flags: last ? LAST : 0, devId: 1, pasid: 0, grpid: cookie, perm: 1, addr: cookie * 4096, length: 0, cookie });

function rawReads(path: string): Buffer[] {
  const out: Buffer[] = [];
  parseRecords(readFileSync(path), { raw: (_fd, _ms, bytes) => out.push(Buffer.from(bytes)), answer: () => undefined });
  return out;
}

async function nextRecords(it: AsyncIterator<PumpEvent>, count: number): Promise<FaultRecord[]> {
  const got: FaultRecord[] = [];
  while (got.length < count) {
    const { value } = await it.next();
    if (value?.type === "records") got.push(...value.records);
  }
  return got;
}

function streamPair(): { ours: number; theirs: number; send(b: Buffer): void } {
  const [ours, theirs] = libc.socketpair();
  libc.setNonBlocking(ours, true);
  return { ours, theirs, send: (b) => void libc.write(theirs, b, b.length) };
}

test("reads are journaled as read, and a new pump seeded from the journal resumes mid-record and mid-group", async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), "iopf-pump-journal-")), "journal");
  writeFileSync(path, "");
  const s = streamPair();
  const first = new FaultPump();
  await first.start([s.ours], { journal: { path, fds: [s.ours] } });
  const it = first[Symbol.asyncIterator]();
  // Group 1 whole; group 2's first record, and 20 bytes of its second.
  const sent = Buffer.concat([record(1), record(2, false), record(2)]).subarray(0, 100);
  s.send(sent);
  t.deepEqual((await nextRecords(it, 2)).map((r) => r.cookie), [1, 2]);
  await first.stop();
  t.deepEqual(Buffer.concat(rawReads(path)), sent, "the journal holds exactly the bytes read");

  const replay = new JournalReplay();
  replay.feed(readFileSync(path));
  const { pending, carry } = replay.recovered();
  t.deepEqual(pending.map((p) => p.group.cookie), [1]);
  t.deepEqual(carry.get(s.ours), sent.subarray(40), "group 2's first record and the partial second");

  const second = new FaultPump();
  await second.start([s.ours], { journal: { path, fds: [s.ours] }, carry });
  const it2 = second[Symbol.asyncIterator]();
  s.send(Buffer.concat([record(2).subarray(20), record(3)]));
  const resumed = await nextRecords(it2, 3);
  t.deepEqual(resumed.map((r) => [r.cookie, r.flags & LAST]), [[2, 0], [2, LAST], [3, LAST]]);
  await second.stop();
  const all = new JournalReplay();
  all.feed(readFileSync(path));
  t.deepEqual(all.recovered().pending.map((p) => p.group.cookie).sort(), [1, 2, 3]);
  closeSync(s.ours);
  closeSync(s.theirs);
});

test("while paused the worker appends nothing; resumed, it appends to the file renamed over the path", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "iopf-pump-journal-"));
  const path = join(dir, "journal");
  writeFileSync(path, "");
  const s = streamPair();
  const pump = new FaultPump();
  await pump.start([s.ours], { journal: { path, fds: [s.ours] } });
  const it = pump[Symbol.asyncIterator]();
  s.send(record(1));
  await nextRecords(it, 1);
  pump.pause();
  s.send(record(2));
  await new Promise((r) => setTimeout(r, 50));
  t.is(rawReads(path).length, 1, "nothing read while paused");
  renameSync(path, join(dir, "old"));
  writeFileSync(path, "");
  pump.resume();
  t.deepEqual((await nextRecords(it, 1)).map((r) => r.cookie), [2]);
  await pump.stop();
  t.is(rawReads(join(dir, "old")).length, 1);
  t.deepEqual(rawReads(path), [record(2)]);
  closeSync(s.ours);
  closeSync(s.theirs);
});
