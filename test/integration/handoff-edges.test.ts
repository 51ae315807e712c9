// The corners of the handoff protocol a VMM's author must know
// (docs/handoff.md, section 4), against a real relay on the kernel-exact
// emulator: how large a reply may be, what "op" a refusal carries, the
// range and form of every id, an attach with no devices, a detach of a
// whole queue, fds no queue names, a relay started without --config, and
// how long a request waits under the keeper while its relay restarts.
import test from "ava";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { handoffRequest } from "../../src/ctl/handoff-client.js";
import * as libc from "../../src/kernel/libc.js";
import { connectSeqpacket, receive, send } from "../../src/kernel/unix-rights.js";
import { KeeperChannel } from "../../src/relay/handoff/keeper-link.js";
import { RELAY_CLI, tempDir, until } from "./control-harness.js";
import { attach, ok, refused, startRelay } from "./handoff-harness.js";

/** Sends `text` with `fds` and returns the reply's raw bytes, however long. */
function rawRequest(path: string, text: string, fds: number[] = []): Buffer {
  const fd = connectSeqpacket(path);
  try {
    send(fd, Buffer.from(text), fds);
    const pfd = Buffer.alloc(libc.POLLFD_SIZE);
    pfd.writeInt32LE(fd, 0);
    pfd.writeInt16LE(libc.POLLIN, 4);
    libc.poll(pfd, 1, 30_000);
    const r = receive(fd, 1 << 20);
    if (r === null || r.closed) throw new Error("no reply");
    return r.data;
  } finally {
    libc.close(fd);
  }
}

test.serial("a reply is at most 4096 bytes: a refusal naming a thousand bad devices is cut to fit and stays one JSON object", async (t) => {
  const relay = await startRelay(t);
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const devices = Array.from({ length: 1000 }, (_, i) => ({ devId: -1 - i, endpointId: i }));
  const raw = rawRequest(relay.handoff, JSON.stringify(attach(5, devices)), [emu.faultFd]);
  t.true(raw.length <= 4096, `the reply is ${raw.length} bytes`);
  const reply = JSON.parse(raw.toString("utf8")) as { op: string; ok: boolean; error: string };
  t.like(reply, { op: "attach", ok: false });
  t.regex(reply.error, /^attach\.queues\[0\]\.devices\[0\]\.devId: expected an iommufd device id.*\.\.\.$/);
});

test.serial("a refusal's op is the request's op when the request is an object with a string op, and null when it has none", async (t) => {
  const relay = await startRelay(t);
  const cases: [string, string | null, RegExp][] = [
    ["\u0000garbage", null, /^expected one JSON object per message, got text that is not JSON/],
    ["[1,2]", null, /^\(message\): expected a JSON object, got \[1,2\]/],
    ['{"v":1}', null, /^op: expected "attach" or "detach", got nothing/],
    ['{"v":1,"op":7}', null, /^op: expected "attach" or "detach", got 7/],
    ['{"v":2,"op":"attach"}', "attach", /^v: expected 1 \(the protocol version this relay speaks\), got 2/],
    ['{"v":1,"op":"plug"}', "plug", /^op: expected "attach" or "detach", got "plug"/],
    ['{"v":1,"op":"drop"}', "drop", /^op: expected "attach" or "detach", got "drop"/],
    ['{"v":1,"op":"detach","faultId":"x"}', "detach", /^detach\.faultId: expected an integer 0\.\.4294967295, got "x"/],
  ];
  for (const [text, op, error] of cases) {
    const reply = JSON.parse(rawRequest(relay.handoff, text).toString("utf8")) as { op: unknown; ok: boolean; error: string };
    t.is(reply.op, op, text);
    t.false(reply.ok, text);
    t.regex(reply.error, error, text);
  }
});

test.serial("ids are whole numbers in their range; anything else is refused naming the key, and its fd is closed", async (t) => {
  const relay = await startRelay(t);
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const before = relay.fds().length;
  const dev = { devId: 1, endpointId: 1 };
  const queue = (q: object, more: object = {}): object => ({ v: 1, op: "attach", queues: [{ fd: 0, faultId: 5, devices: [dev], emulator: true, ...q }], ...more });
  const attaches: [object, RegExp][] = [
    [queue({ faultId: -1 }), /^attach\.queues\[0\]\.faultId: expected an integer 0\.\.4294967295, got -1$/],
    [queue({ faultId: 1.5 }), /^attach\.queues\[0\]\.faultId: expected an integer 0\.\.4294967295, got 1\.5$/],
    [queue({ faultId: 4294967296 }), /^attach\.queues\[0\]\.faultId: expected an integer 0\.\.4294967295, got 4294967296$/],
    [queue({ faultId: "5" }), /^attach\.queues\[0\]\.faultId: expected an integer 0\.\.4294967295, got "5"$/],
    [queue({ fd: 1 }), /^attach\.queues\[0\]\.fd: index 1, but the message carries 1 fd/],
    [queue({ devices: [{ devId: 4294967296, endpointId: 1 }] }), /^attach\.queues\[0\]\.devices\[0\]\.devId: expected an iommufd device id, an integer 0\.\.4294967295, got 4294967296$/],
    [queue({ devices: [{ devId: 1, endpointId: -1 }] }), /^attach\.queues\[0\]\.devices\[0\]\.endpointId: expected a virtio-iommu endpoint id, an integer 0\.\.4294967295, got -1$/],
    [queue({ devices: [{ devId: 1, endpointId: 1, hostPasid: 1048576 }] }), /^attach\.queues\[0\]\.devices\[0\]\.hostPasid: expected a host PASID, an integer 0\.\.1048575/],
    [queue({ devices: [{ devId: 1, endpointId: 1, pasid: { "0x11": 1 } }] }), /^attach\.queues\[0\]\.devices\[0\]\.pasid\["0x11"\]: expected a host PASID as a decimal key 0\.\.1048575/],
    [queue({ devices: [{ devId: 1, endpointId: 1, pasid: { 17: 1048576 } }] }), /^attach\.queues\[0\]\.devices\[0\]\.pasid\["17"\]: expected a guest PASID, an integer 0\.\.1048575, got 1048576$/],
    [queue({}, { vmmPid: 0 }), /^attach\.vmmPid: expected a process id, an integer 1\.\.2147483647, got 0$/],
    [queue({}, { vmmPid: 2147483648 }), /^attach\.vmmPid: expected a process id, an integer 1\.\.2147483647, got 2147483648$/],
  ];
  for (const [request, error] of attaches) t.regex(refused(handoffRequest(relay.handoff, request, [emu.faultFd])), error, JSON.stringify(request));
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 4294967296 })), /^detach\.faultId: expected an integer 0\.\.4294967295, got 4294967296$/);
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 5, devIds: [1.5] })), /^detach\.devIds\[0\]: expected an integer 0\.\.4294967295, got 1\.5$/);
  // The ends of the ranges are ids like any other.
  t.like(ok(handoffRequest(relay.handoff, queue({ faultId: 4294967295, devices: [{ devId: 4294967295, endpointId: 4294967295, hostPasid: 1048575, pasid: 0 }] }), [emu.faultFd])),
    { queues: [{ faultId: 4294967295, devices: 1 }] });
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 4294967295, devIds: [4294967295] })), { closed: false });
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 4294967295 })), { closed: true });
  await until(() => relay.fds().length <= before, 10_000, "every fd sent closed");
});

test.serial("an attach with an fd may bring no devices (its groups are answered INVALID until some are added); one without an fd must bring some", async (t) => {
  const relay = await startRelay(t);
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  t.like(ok(handoffRequest(relay.handoff, attach(5, []), [emu.faultFd])), { queues: [{ faultId: 5, devices: 0 }] });
  await emu.raise({ dev: 1, count: 2 });
  await until(async () => (await emu.stats()).answeredInvalid === 2, 10_000, "the groups of a device not yet added answered INVALID");
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "attach", queues: [{ faultId: 5, devices: [] }] })),
    /^attach\.queues\[0\]\.devices: expected at least one device to add to fault 5/);
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "attach", queues: [{ faultId: 5, devices: [{ devId: 1, endpointId: 1 }] }] })), { queues: [{ faultId: 5, devices: 1 }] });
  await emu.raise({ dev: 1, count: 3, addr: 0x100000 });
  await until(async () => (await emu.stats()).answeredSuccess === 3, 10_000, "the device's groups served once it is added");
});

test.serial("a whole queue is detached by leaving devIds out; devIds: [] is refused and changes nothing", async (t) => {
  const relay = await startRelay(t);
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  ok(handoffRequest(relay.handoff, attach(5, [{ devId: 1, endpointId: 1 }]), [emu.faultFd]));
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 5, devIds: [] })),
    /^detach\.devIds: expected a non-empty array of device ids \(leave it out to detach the whole queue\), got \[\]$/);
  t.true(relay.fds().some((f) => f.endsWith("/fault")), "the queue is still held");
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 5 })), { closed: true });
});

test.serial("fds no queue names are refused with the message, and closed: the relay's fd count comes back to what it was", async (t) => {
  const relay = await startRelay(t);
  const devNull = openSync("/dev/null", "r");
  t.teardown(() => closeSync(devNull));
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const before = relay.fds();
  const count = (): number => relay.fds().length;
  const dev = [{ devId: 1, endpointId: 1 }];
  t.regex(refused(handoffRequest(relay.handoff, attach(5, dev), [emu.faultFd, devNull])), /^attach: the message carries 2 fds but the queues use 1/);
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "attach", queues: [{ faultId: 5, devices: dev }] }, [devNull])), /^attach: the message carries 1 fds? but the queues use 0/);
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 5 }, [devNull])), /^detach: expected no fds with a detach, got 1/);
  t.regex(refused(handoffRequest(relay.handoff, { v: 1, op: "bogus" }, [devNull, devNull])), /^op: expected "attach" or "detach"/);
  // More fds than one message may carry (16): the relay gets the first 16, the kernel drops the rest.
  const script = `import json, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
fd = os.open("/dev/null", os.O_RDONLY)
socket.send_fds(s, [json.dumps({"v": 1, "op": "detach", "faultId": 5}).encode()], [fd] * 20)
print(s.recv(65536).decode())`;
  const over = JSON.parse(execFileSync("python3", ["-c", script, relay.handoff], { encoding: "utf8" })) as { ok: boolean; error: string };
  t.false(over.ok);
  t.regex(over.error, /at most 16 fds/);
  await until(() => count() <= before.length, 10_000, "every fd sent closed").catch((err: Error) => {
    t.log(relay.fds().join("\n"));
    throw err;
  });
  t.deepEqual(relay.fds().filter((f) => f.includes("/dev/null") && !before.includes(f)), [], "no /dev/null a peer sent is open");
});

test.serial("--handoff without --config is a usage error: the config's viommu is what every attach is checked against", async (t) => {
  const dir = tempDir(t, "iopf-handoff-noconfig-");
  const relay = spawn(process.execPath, [RELAY_CLI, "--handoff", `unix:${join(dir, "h.sock")}`, "--socket-path", join(dir, "l.sock")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  relay.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => relay.on("close", resolve));
  t.is(code, 2);
  t.is(stderr.split("\n").length, 2, stderr);
  t.regex(stderr, /^iopf-relay: --handoff needs --config FILE: its "viommu" is the model every attach is checked against/);
});

test("under the keeper, a request waits for a ready relay at most its bound: then it is refused, and nothing was sent", async (t) => {
  // No relay ever connects to this channel.
  const channel = await KeeperChannel.start(50);
  t.teardown(() => channel.close());
  const reply = await channel.request({ v: 1, op: "detach", faultId: 5 });
  t.like(reply, { v: 1, op: "detach", ok: false });
  t.regex(refused(reply!), /^no relay has been ready for 0\.05 s \(the keeper is starting it again: see its log\); nothing was done: try again$/);
});
