// The character device transport against a pty standing in for a
// virtio-serial port. The stream holds the pty's master, as the agent holds
// /dev/vportNpM; a helper process opening and closing the slave plays the
// host connecting and leaving. That is the one pty arrangement that behaves
// like the port: the master's fd survives its peer (a slave fd is hung up
// for good once the master closes), reports "no peer" (EIO, the port says
// read() = 0) while no slave is open, and carries bytes again when a slave
// is opened, with bytes written meanwhile delivered late, like the port's.
//
// Node cannot create a pty (grantpt/unlockpt are ioctls), so the test does
// it through libc with ffi-rs; the transport itself uses only fs. The pty is
// put in raw mode once with stty, before any byte flows: the termios
// settings live with the pty, not the slave fd, so every peer gets them.
import test from "ava";
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { DataType, load, open } from "ffi-rs";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { CharDeviceStream, openCharDevice } from "../../src/link/transport/chardev.js";
import { connect } from "../../src/link/transport/connect.js";
import { Collector, pattern, watchClose, writeAll } from "./transport-conformance.js";

const O_RDWR = 0o2;
const O_NOCTTY = 0o400;
/** Linux's O_CLOEXEC, so peers spawned later do not inherit the master. */
const O_CLOEXEC = 0o2000000;

open({ library: "libc", path: "libc.so.6" });
const libc = (funcName: string, retType: DataType, args: number[]) =>
  load({ library: "libc", funcName, retType, paramsType: args.map(() => DataType.I32), paramsValue: args });

/** A new pty: its master fd and its slave's path, in raw mode without echo. */
function createPty(): { master: number; slave: string } {
  const master = libc("posix_openpt", DataType.I32, [O_RDWR | O_NOCTTY | O_CLOEXEC]) as number;
  if (master < 0) throw new Error("posix_openpt failed");
  if (libc("grantpt", DataType.I32, [master]) !== 0 || libc("unlockpt", DataType.I32, [master]) !== 0) {
    throw new Error("grantpt/unlockpt failed");
  }
  const slave = libc("ptsname", DataType.String, [master]) as string;
  execFileSync("stty", ["-F", slave, "raw", "-echo"]);
  return { master, slave };
}

// The peer: opens the slave, copies stdin to it and it to stdout, and
// closes it when stdin ends. A separate process, as the host is.
const PEER = `
import os, select, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
sys.stderr.write("open\\n"); sys.stderr.flush()
def put(out, data):
    while data:
        data = data[os.write(out, data):]
while True:
    ready, _, _ = select.select([0, fd], [], [])
    if fd in ready:
        put(1, os.read(fd, 65536))
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            break
        put(fd, data)
os.close(fd)
`;

// A peer left open by a failing test would keep the stream's read asleep
// and the test process alive: end them all whatever happened.
const livePeers = new Set<ChildProcess>();
test.after.always(() => livePeers.forEach((child) => child.kill()));

class Peer {
  readonly received: Buffer[] = [];
  private constructor(readonly child: ChildProcess) {
    child.stdout?.on("data", (chunk: Buffer) => this.received.push(chunk));
  }

  static async open(slave: string): Promise<Peer> {
    const child = spawn("python3", ["-c", PEER, slave], { stdio: ["pipe", "pipe", "pipe"] });
    livePeers.add(child);
    child.on("exit", () => livePeers.delete(child));
    const [line] = (await once(child.stderr!, "data")) as [Buffer];
    if (line.toString() !== "open\n") throw new Error(`peer failed: ${line.toString()}`);
    return new Peer(child);
  }

  async until(n: number, timeoutMs = 20_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (Buffer.concat(this.received).length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`peer expected ${n} bytes, got ${Buffer.concat(this.received).length}`);
      await Promise.race([once(this.child.stdout!, "data"), new Promise((resolve) => setTimeout(resolve, left))]);
    }
    return Buffer.concat(this.received);
  }

  send(data: Buffer): void {
    this.child.stdin!.write(data);
  }

  /** Closes the slave (the host leaving) and waits for the process to end. */
  async close(): Promise<void> {
    const exited = once(this.child, "exit");
    this.child.stdin!.end();
    await exited;
  }
}

function nextEvent(stream: ByteStream, event: "hangup" | "drain"): Promise<void> {
  return new Promise((resolve) => {
    const listener = () => {
      stream.off(event, listener);
      resolve();
    };
    stream.on(event, listener);
  });
}

function countEvents(stream: ByteStream, event: "hangup" | "close"): () => number {
  let n = 0;
  stream.on(event, () => n++);
  return () => n;
}

test("bytes both ways, hangup when the peer leaves, bytes from the next peer on the same stream", async (t) => {
  const { master, slave } = createPty();
  const stream = new CharDeviceStream(master, `chardev:${slave} (master)`);
  const hangups = countEvents(stream, "hangup");
  const closes = countEvents(stream, "close");
  const received = new Collector(stream);

  // No slave open yet: the host is not there.
  await nextEvent(stream, "hangup");

  const first = await Peer.open(slave);
  const down = pattern(5000, 1);
  stream.write(down.subarray(0, 2000));
  stream.write(down.subarray(2000));
  t.true((await first.until(down.length)).equals(down), "stream to peer");
  const up = pattern(3000, 2);
  first.send(up);
  t.true((await received.until(up.length)).equals(up), "peer to stream");

  const hungUp = nextEvent(stream, "hangup");
  await first.close();
  await hungUp;
  t.is(closes(), 0, "the peer leaving is a hangup, not a close");

  const second = await Peer.open(slave);
  const again = pattern(4000, 3);
  second.send(again);
  t.true((await received.until(up.length + again.length)).subarray(up.length).equals(again), "the next peer's bytes arrive");
  t.is(hangups(), 2, "one hangup per absence");

  const closed = watchClose(stream);
  stream.destroy();
  t.is(await closed.closed, undefined);
  // The read in flight sleeps until the peer leaves; only then is the fd closed.
  let released = false;
  void stream.released.then(() => (released = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.false(released, "the fd stays open while a read sleeps");
  await second.close();
  await Promise.race([stream.released, new Promise((resolve) => setTimeout(resolve, 2000))]);
  t.true(released, "the fd is closed once the read returns");
  t.is(closes(), 1);
});

test("bytes read while closing post no new read: the fd is released once the last write is done, with the peer silent", async (t) => {
  const { master, slave } = createPty();
  const stream = new CharDeviceStream(master, `chardev:${slave} (master)`);
  const peer = await Peer.open(slave);
  t.teardown(() => peer.close());
  let closedYet = false;
  stream.on("close", () => (closedYet = true));
  // Long enough in the pty that the peer's reply arrives while it is still being written.
  const big = pattern(8 * 1024 * 1024, 5);
  stream.write(big);
  stream.end();
  const readWhileClosing = new Promise<boolean>((resolve) => stream.on("data", () => resolve(!closedYet)));
  peer.send(Buffer.from("last reply"));
  t.true(await readWhileClosing, "the reply was read before the stream closed");
  await peer.until(big.length, 40_000);
  const released = await Promise.race([stream.released.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
  t.true(released, "no read sleeps after the close, so the fd is closed without more bytes from the peer");
});

test("multi-megabyte transfers with backpressure both ways", async (t) => {
  const { master, slave } = createPty();
  const stream = new CharDeviceStream(master, `chardev:${slave} (master)`);
  const received = new Collector(stream);
  const peer = await Peer.open(slave);

  const size = 4 * 1024 * 1024;
  const down = pattern(size, 4);
  let started = performance.now();
  const { refusals } = await writeAll(stream, down);
  t.true((await peer.until(size, 40_000)).equals(down), "stream to peer intact");
  t.true(refusals > 0, "write() returned false and drain followed");
  t.log(`stream to peer: 4 MiB in ${(performance.now() - started).toFixed(0)} ms, ${refusals} waits for drain`);

  const up = pattern(size, 5);
  started = performance.now();
  peer.send(up);
  t.true((await received.until(size, 40_000)).equals(up), "peer to stream intact");
  t.log(`peer to stream: 4 MiB in ${(performance.now() - started).toFixed(0)} ms`);

  const closed = watchClose(stream);
  stream.end();
  t.is(await closed.closed, undefined);
  await peer.close();
});

test("end() writes what is queued, then closes once", async (t) => {
  const { master, slave } = createPty();
  const stream = new CharDeviceStream(master, `chardev:${slave} (master)`);
  const peer = await Peer.open(slave);
  const closes = countEvents(stream, "close");
  // Closing a pty master hangs the slave up and drops what it has not read
  // yet, so the peer must keep the master open until it has read: it does
  // once the stream has heard it, since a read then sleeps on the master
  // until the peer leaves (see CharDeviceStream on the deferred fd close).
  const heard = new Collector(stream);
  peer.send(Buffer.from("host here"));
  await heard.until(9);
  const data = pattern(100_000, 6);
  stream.write(data);
  stream.end();
  t.false(stream.write(Buffer.from("late")), "no writes after end()");
  t.true((await peer.until(data.length)).equals(data));
  await peer.close();
  stream.end();
  stream.destroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.is(closes(), 1);
});

test("destroy(err) closes once with that error", async (t) => {
  const { master, slave } = createPty();
  const stream = new CharDeviceStream(master, `chardev:${slave} (master)`);
  const closed = watchClose(stream);
  const cause = new Error("test destroys the stream");
  stream.destroy(cause);
  stream.destroy();
  t.is(await closed.closed, cause);
  // No read was sleeping (no peer), so the fd is released at once. (Checking
  // /proc/self/fd would race with another test reusing the fd number.)
  const released = await Promise.race([stream.released.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
  t.true(released, "the fd was closed");
  t.is(closed.count(), 1);
  void slave;
});

test("opening a path that does not exist names it", async (t) => {
  await t.throwsAsync(openCharDevice("/dev/vport9p9-missing"), {
    message: /chardev:\/dev\/vport9p9-missing: cannot open: no such file \(ENOENT\).*\/sys\/class\/virtio-ports/,
  });
  await t.throwsAsync(connect("chardev:/nonexistent/port"), { message: /chardev:\/nonexistent\/port/ });
});

test("a path that is not a character device is refused", async (t) => {
  await t.throwsAsync(openCharDevice("/etc/hostname"), { message: /chardev:\/etc\/hostname: it is not a character device/ });
});

test("read() = 0, the port's answer while no host is connected, is one hangup and a backoff, not an end", async (t) => {
  // /dev/null answers every read with 0, as a port without a host does.
  const stream = await openCharDevice("/dev/null");
  t.is(stream.description, "chardev:/dev/null");
  const hangups = countEvents(stream, "hangup");
  const closes = countEvents(stream, "close");
  await new Promise((resolve) => setTimeout(resolve, 700)); // 20+40+80+160+250 ms of retries
  t.is(hangups(), 1, "one hangup for the whole absence");
  t.is(closes(), 0);
  t.true(stream.write(Buffer.from("still writable")));
  stream.destroy();
  t.is(closes(), 1);
});
