// libc through ffi-rs: values, -errno results, and the errors setup calls throw.
import test from "ava";
import * as libc from "../../src/kernel/libc.js";
import { EAGAIN, SyscallError } from "../../src/kernel/errno.js";

test("a socketpair carries bytes; an empty non-blocking end reads -EAGAIN", (t) => {
  const [a, b] = libc.socketpair();
  try {
    libc.setNonBlocking(b, true);
    t.true(libc.isNonBlocking(b));
    t.false(libc.isNonBlocking(a));
    const buf = Buffer.alloc(16);
    t.is(libc.read(b, buf, 16), -EAGAIN);
    t.is(libc.write(a, Buffer.from("hello"), 5), 5);
    t.is(libc.read(b, buf, 16), 5);
    t.is(buf.subarray(0, 5).toString(), "hello");
  } finally {
    libc.close(a);
    libc.close(b);
  }
});

test("a read lands in the Buffer's own memory, also at a view's offset into shared memory", (t) => {
  const [a, b] = libc.socketpair();
  try {
    const sab = new SharedArrayBuffer(64);
    libc.write(a, Buffer.from("abcdef"), 6);
    t.is(libc.read(b, Buffer.from(sab, 10, 20), 20), 6);
    t.is(Buffer.from(sab, 10, 6).toString(), "abcdef");
    t.is(Buffer.from(sab, 0, 10).every((x) => x === 0), true);
  } finally {
    libc.close(a);
    libc.close(b);
  }
});

test("dup gives another fd of the same open file, so O_NONBLOCK is shared", (t) => {
  const [a, b] = libc.socketpair();
  const c = libc.dup(a);
  try {
    t.not(c, a);
    libc.setNonBlocking(a, true);
    t.true(libc.isNonBlocking(c));
  } finally {
    [a, b, c].forEach(libc.close);
  }
});

test("an eventfd counts writes and reads -EAGAIN once drained", (t) => {
  const fd = libc.eventfd();
  try {
    const one = Buffer.alloc(8);
    one.writeBigUInt64LE(1n);
    libc.write(fd, one, 8);
    libc.write(fd, one, 8);
    const got = Buffer.alloc(8);
    t.is(libc.read(fd, got, 8), 8);
    t.is(got.readBigUInt64LE(), 2n);
    t.is(libc.read(fd, got, 8), -EAGAIN);
  } finally {
    libc.close(fd);
  }
});

test("a failed setup call throws a SyscallError naming the syscall, the errno and what to do", (t) => {
  const closed = libc.eventfd();
  libc.close(closed);
  const e = t.throws(() => libc.close(closed), { instanceOf: SyscallError })!;
  t.is(e.syscall, "close");
  t.is(e.code, "EBADF");
  t.is(e.errno, 9);
  t.regex(e.message, /close failed with EBADF \(9\) during close fd \d+: the fd was closed or never opened/);

  const missing = t.throws(() => libc.open("/nonexistent/iommu", libc.O_RDWR, "use the emulator"), { instanceOf: SyscallError })!;
  t.is(missing.code, "ENOENT");
  t.regex(missing.message, /open \/nonexistent\/iommu: use the emulator$/);

  const [a, b] = libc.socketpair();
  try {
    const notty = t.throws(() => libc.ioctl(a, 0x3b81, Buffer.alloc(12), "IOMMU_IOAS_ALLOC on a socket"), { instanceOf: SyscallError })!;
    t.is(notty.code, "ENOTTY");
  } finally {
    libc.close(a);
    libc.close(b);
  }
});

test("addressOf gives the address C sees for a Buffer", (t) => {
  const buf = Buffer.alloc(16);
  t.is(libc.addressOf(buf), libc.addressOf(buf));
  t.is(libc.addressOf(buf.subarray(4)) - libc.addressOf(buf), 4);
});
