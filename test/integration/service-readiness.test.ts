// Readiness for a systemd Type=notify unit: sd_notify's datagram to
// $NOTIFY_SOCKET (a path, or @name in the abstract namespace), sent by the
// relay once it serves; under --keeper by the relay child, which is why the
// unit says NotifyAccess=all. And the link socket's mode, which lets QEMU's
// user connect through the relay's group.
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { notifySocketAddress, sdNotify } from "../../src/kernel/sd-notify.js";
import { RELAY_CLI, run, tempDir, type Proc } from "./control-harness.js";

// Binds the address, asks the kernel for each sender's credentials, and prints one JSON line per datagram.
const RECEIVER = `
import socket, sys, json, struct
addr = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\\0" + addr[1:] if addr.startswith("@") else addr)
print(json.dumps({"listening": addr}), flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next((struct.unpack("iII", d[:12])[0] for l, ty, d in anc if l == socket.SOL_SOCKET and ty == socket.SCM_CREDENTIALS), None)
    print(json.dumps({"pid": pid, "msg": msg.decode()}), flush=True)
`;

interface Datagram { pid: number | null; msg: string }

/** A receiver on addr; next() resolves with each datagram in order. */
async function receiver(t: ExecutionContext, addr: string): Promise<{ next(): Promise<Datagram> }> {
  const child = spawn("python3", ["-c", RECEIVER, addr], { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => void child.kill("SIGKILL"));
  const queue: Datagram[] = [];
  const waiting: ((d: Datagram) => void)[] = [];
  let listening: () => void = () => undefined;
  const bound = new Promise<void>((resolve) => { listening = resolve; });
  createInterface({ input: child.stdout }).on("line", (line) => {
    const j = JSON.parse(line) as Datagram & { listening?: string };
    if (j.listening !== undefined) return listening();
    const w = waiting.shift();
    if (w) w(j);
    else queue.push(j);
  });
  await Promise.race([bound, new Promise((_, reject) => child.once("exit", (code) => reject(new Error(`the python3 receiver exited ${code}`))))]);
  return { next: () => (queue.length > 0 ? Promise.resolve(queue.shift()!) : new Promise((resolve) => waiting.push(resolve))) };
}

/** The first of p or the process's exit, which fails the wait with what the process said. */
function beforeExit<T>(p: Promise<T>, proc: Proc, what: string): Promise<T> {
  return Promise.race([p, proc.exited.then((code) => Promise.reject(new Error(`expected ${what}, but the relay exited ${code} first:\n${proc.stderr()}`)))]);
}

/** A datagram sent just before the process exited: it is in the receiver's queue, so it comes, or the wait fails. */
function sentBeforeExit(r: { next(): Promise<Datagram> }, what: string, proc: Proc): Promise<Datagram> {
  return Promise.race([r.next(), new Promise<Datagram>((_, reject) => setTimeout(() => reject(new Error(`expected ${what} in the receiver's queue; the process said:\n${proc.stderr()}`)), 10_000).unref())]);
}

const abstractName = (): string => `@iopf-relay-test-${randomBytes(6).toString("hex")}`;

function connects(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}

test("sockaddr_un for a path ends with a NUL; for @name starts with one and has no terminator", (t) => {
  const path = notifySocketAddress("/run/systemd/notify");
  t.is(path.readUInt16LE(0), 1);
  t.is(path.subarray(2).toString(), "/run/systemd/notify\0");
  const abs = notifySocketAddress("@foo");
  t.deepEqual([...abs.subarray(2)], [0, ..."foo"].map((c) => (typeof c === "number" ? c : c.charCodeAt(0))));
  t.throws(() => notifySocketAddress("run/notify"), { message: /expected an absolute path or @name/ });
  t.throws(() => notifySocketAddress(`/${"x".repeat(107)}`), { message: /at most 108 fit/ });
});

test("sd_notify reaches a socket by path and one in the abstract namespace; nothing without NOTIFY_SOCKET", async (t) => {
  const dir = tempDir(t, "iopf-notify-");
  for (const addr of [join(dir, "notify"), abstractName()]) {
    const r = await receiver(t, addr);
    t.true(sdNotify("READY=1\nSTATUS=test", { NOTIFY_SOCKET: addr }));
    t.deepEqual(await r.next(), { pid: process.pid, msg: "READY=1\nSTATUS=test" });
  }
  t.false(sdNotify("READY=1", {}));
  t.throws(() => sdNotify("READY=1", { NOTIFY_SOCKET: join(dir, "nobody") }), { message: /sendto failed with ENOENT/ });
});

test("the relay says READY=1 once its socket listens (mode 0600), and STOPPING=1 on SIGTERM", async (t) => {
  const dir = tempDir(t, "iopf-notify-");
  const addr = abstractName();
  const r = await receiver(t, addr);
  const socketPath = join(dir, "link.sock");
  const relay = run(t, RELAY_CLI, ["--source", "synthetic", "--socket-path", socketPath, "--log-format", "json"], { ...process.env, NOTIFY_SOCKET: addr });
  const ready = await beforeExit(r.next(), relay, "READY=1");
  t.deepEqual(ready, { pid: relay.child.pid, msg: "READY=1" });
  t.true(await connects(socketPath), "the socket accepts connections by the time READY=1 comes");
  t.is(statSync(socketPath).mode & 0o777, 0o600);
  relay.child.kill("SIGTERM");
  t.is(await relay.exited, 0, relay.stderr());
  t.deepEqual(await sentBeforeExit(r, "STOPPING=1", relay), { pid: relay.child.pid, msg: "STOPPING=1" });
});

test("under --keeper the relay child, not the keeper, says READY=1; --socket-mode 0660 reaches the child's socket", async (t) => {
  const dir = tempDir(t, "iopf-notify-");
  const addr = abstractName();
  const r = await receiver(t, addr);
  const socketPath = join(dir, "link.sock");
  const keeper = run(t, RELAY_CLI, ["--keeper", "--source", "synthetic", "--socket-path", socketPath, "--socket-mode", "0660", "--log-format", "json"],
    { ...process.env, NOTIFY_SOCKET: addr });
  const ready = await beforeExit(r.next(), keeper, "READY=1 from the keeper's relay");
  t.is(ready.msg, "READY=1");
  t.not(ready.pid, keeper.child.pid, "the sender is the keeper's child, so the unit needs NotifyAccess=all");
  t.true(await connects(socketPath));
  t.is(statSync(socketPath).mode & 0o777, 0o660);
  keeper.child.kill("SIGTERM");
  t.is(await keeper.exited, 0, keeper.stderr());
  t.is((await sentBeforeExit(r, "STOPPING=1", keeper)).msg, "STOPPING=1");
});

test("--socket-mode: 0600 or 0660, and only for a listening Unix socket", async (t) => {
  for (const [args, message] of [
    [["--socket-mode", "0666", "--socket-path", "/tmp/x.sock"], /--socket-mode: expected 0600 or 0660, got "0666"/],
    [["--socket-mode", "0660", "--connect", "unix:/tmp/x.sock"], /--socket-mode applies to a listening Unix socket/],
  ] as const) {
    const p = run(t, RELAY_CLI, ["--source", "synthetic", ...args]);
    t.is(await p.exited, 2);
    t.regex(p.stderr(), message);
  }
});
