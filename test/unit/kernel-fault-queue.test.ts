// FaultQueue over a socketpair standing in for a stream fault source: whole
// records out of arbitrary byte counts, EAGAIN as empty, and answers that
// wait for a full socket without blocking or reordering.
import test from "ava";
import * as libc from "../../src/kernel/libc.js";
import { FaultQueue } from "../../src/kernel/fault-queue.js";
import { encodeFaultRecord, type FaultRecord } from "../../src/kernel/uapi-structs.js";

const rec = (cookie: number): FaultRecord => ({ flags: 2, devId: 1, pasid: 0, grpid: cookie, perm: 1, addr: cookie * 4096, length: 0, cookie });

function pair(): { source: number; relay: number; close: () => void } {
  const [source, relay] = libc.socketpair();
  libc.setNonBlocking(relay, true);
  return { source, relay, close: () => { libc.close(source); libc.close(relay); } };
}

test("an empty source reads as no records, EAGAIN and all", (t) => {
  const p = pair();
  try {
    t.deepEqual(new FaultQueue(p.relay, { kind: "stream" }).read(), []);
  } finally {
    p.close();
  }
});

test("a record split across reads comes out whole, once", (t) => {
  const p = pair();
  try {
    const q = new FaultQueue(p.relay, { kind: "stream" });
    const bytes = Buffer.concat([encodeFaultRecord(rec(1)), encodeFaultRecord(rec(2))]);
    libc.write(p.source, bytes.subarray(0, 55), 55);
    t.deepEqual(q.read(), [rec(1)]);
    t.deepEqual(q.read(), []);
    libc.write(p.source, bytes.subarray(55), 25);
    t.deepEqual(q.read(), [rec(2)]);
  } finally {
    p.close();
  }
});

test("read takes at most recordsPerRead records per call", (t) => {
  const p = pair();
  try {
    const q = new FaultQueue(p.relay, { kind: "stream", recordsPerRead: 3 });
    const bytes = Buffer.concat([1, 2, 3, 4, 5].map((c) => encodeFaultRecord(rec(c))));
    libc.write(p.source, bytes, bytes.length);
    t.deepEqual(q.read().map((r) => r.cookie), [1, 2, 3]);
    t.deepEqual(q.read().map((r) => r.cookie), [4, 5]);
  } finally {
    p.close();
  }
});

test("answers beyond what a full socket takes are queued and sent later, in order", async (t) => {
  const p = pair();
  try {
    libc.setNonBlocking(p.source, true); // this test reads the source while the queue's timer must run
    let flushed = 0;
    const q = new FaultQueue(p.relay, { kind: "stream", flushed: (n) => (flushed += n) });
    const answers = Array.from({ length: 200_000 }, (_, i) => ({ cookie: i + 1, code: i % 2 }));
    const first = q.writeAnswers(answers.slice(0, 100_000));
    t.true(first.queued > 0, "the socket buffer should be smaller than 800 KB");
    t.is(first.written + first.queued, 100_000);
    const second = q.writeAnswers(answers.slice(100_000));
    t.is(second.queued, 100_000, "later answers wait behind earlier ones");
    const got = Buffer.alloc(answers.length * 8);
    let have = 0;
    const chunk = Buffer.alloc(64 * 1024);
    while (have < got.length) {
      const n = libc.read(p.source, chunk, chunk.length);
      if (n > 0) {
        chunk.copy(got, have, 0, n);
        have += n;
      } else {
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    t.is(q.pendingBytes, 0);
    t.is(flushed, first.queued + second.queued, "every queued answer is reported once it is written, and only then");
    for (let i = 0; i < answers.length; i += 997) {
      t.is(got.readUInt32LE(i * 8), answers[i]!.cookie);
      t.is(got.readUInt32LE(i * 8 + 4), answers[i]!.code);
    }
    t.is(q.dispose(), 0);
  } finally {
    p.close();
  }
});

test("a source whose other end went away: the answers are reported gone, never thrown", (t) => {
  const p = pair();
  try {
    const q = new FaultQueue(p.relay, { kind: "stream" });
    libc.close(p.source);
    const result = q.writeAnswers([{ cookie: 1, code: 0 }, { cookie: 2, code: 1 }]);
    t.is(result.written, 0);
    t.is(result.gone?.code, "EPIPE");
    t.is(q.writeAnswers([{ cookie: 3, code: 0 }]).gone, result.gone, "and every later batch too, without another write");
  } finally {
    libc.close(p.relay);
  }
});

test("queued answers whose source goes away before they are sent are reported, and counted by dispose", async (t) => {
  const [source, relay] = libc.socketpair();
  libc.setNonBlocking(relay, true);
  let lost = -1;
  const q = new FaultQueue(relay, { kind: "stream", gone: (_err, unsent) => (lost = unsent) });
  try {
    const first = q.writeAnswers(Array.from({ length: 200_000 }, (_, i) => ({ cookie: i + 1, code: 0 })));
    t.true(first.queued > 0);
    libc.close(source);
    await new Promise<void>((resolve) => {
      const check = (): void => (lost >= 0 ? resolve() : void setTimeout(check, 2));
      check();
    });
    t.is(lost, first.queued, "the retry timer found the source gone and said how many never left");
    t.is(q.dispose(), 0, "nothing is left to send");
  } finally {
    libc.close(relay);
  }
});
