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
    t.deepEqual(new FaultQueue(p.relay).read(), []);
  } finally {
    p.close();
  }
});

test("a record split across reads comes out whole, once", (t) => {
  const p = pair();
  try {
    const q = new FaultQueue(p.relay);
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
    const q = new FaultQueue(p.relay, 3);
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
    const q = new FaultQueue(p.relay);
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
    for (let i = 0; i < answers.length; i += 997) {
      t.is(got.readUInt32LE(i * 8), answers[i]!.cookie);
      t.is(got.readUInt32LE(i * 8 + 4), answers[i]!.code);
    }
    t.is(q.dispose(), 0);
  } finally {
    p.close();
  }
});
