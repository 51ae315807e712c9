// RecordReader over a stream socket: whole records out, a partial record
// carried to the next read, lastReadFull telling the pump's worker whether
// to read again or go back to poll(), and the stream's end told from EAGAIN.
import test from "ava";
import * as libc from "../../src/kernel/libc.js";
import { RecordReader } from "../../src/kernel/record-reader.js";
import { FAULT_RECORD_SIZE } from "../../src/kernel/uapi-structs.js";

const R = FAULT_RECORD_SIZE;

function withPair(body: (writer: number, reader: RecordReader) => void): void {
  const [a, b] = libc.socketpair();
  libc.setNonBlocking(b, true);
  try {
    body(a, new RecordReader(b, "stream"));
  } finally {
    libc.close(a);
    libc.close(b);
  }
}

const bytes = (n: number, fill = 1): Buffer => Buffer.alloc(n, fill);

test("a read that fills the room says more may wait; a short one says poll first", (t) => {
  withPair((w, reader) => {
    const buf = Buffer.alloc(2 * R);
    libc.write(w, bytes(3 * R), 3 * R);
    t.is(reader.readInto(buf, 2 * R), 2 * R);
    t.true(reader.lastReadFull, "two records filled the room of two");
    t.is(reader.readInto(buf, 2 * R), R);
    t.false(reader.lastReadFull, "one record in the room of two: the fd was drained");
    t.false(reader.lastReadEmpty);
    t.is(reader.readInto(buf, 2 * R), 0);
    t.true(reader.lastReadEmpty);
    t.false(reader.lastReadFull);
  });
});

test("a partial record is carried: the room after the carry is what counts as full", (t) => {
  withPair((w, reader) => {
    const buf = Buffer.alloc(2 * R);
    libc.write(w, bytes(R + 10, 2), R + 10);
    t.is(reader.readInto(buf, 2 * R), R, "the 10 bytes past the record wait for the rest");
    t.false(reader.lastReadFull);
    libc.write(w, bytes(2 * R - 10, 3), 2 * R - 10);
    t.is(reader.readInto(buf, 2 * R), 2 * R);
    t.true(reader.lastReadFull, "the carried 10 bytes plus 70 read filled the 80 of room");
    t.deepEqual([...buf.subarray(0, 10)], Array(10).fill(2), "the carried bytes come first");
  });
});

test("a stream whose other end closed has ended; an empty one that would block has not", (t) => {
  const [a, b] = libc.socketpair();
  libc.setNonBlocking(b, true);
  try {
    const reader = new RecordReader(b, "stream");
    const buf = Buffer.alloc(2 * R);
    t.is(reader.readInto(buf, 2 * R), 0);
    t.true(reader.lastReadEmpty);
    t.false(reader.ended, "EAGAIN: nothing yet, the emulator is still there");
    libc.write(a, bytes(R), R);
    libc.close(a);
    t.is(reader.readInto(buf, 2 * R), R, "what it wrote before leaving is read first");
    t.false(reader.ended);
    t.is(reader.readInto(buf, 2 * R), 0);
    t.true(reader.ended, "then read() returns 0: the end");
  } finally {
    libc.close(b);
  }
});
