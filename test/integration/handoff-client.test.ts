// The C reference client of the handoff protocol (scripts/handoff/iopf-handoff.c)
// against a stub relay: a python3 SOCK_SEQPACKET server that records the one
// datagram it gets (its text, and where each fd passed with it points), then
// sends a given reply or closes. Checks the exact requests the client builds,
// that the fd it inherited arrives, and its exit codes and messages. Then the
// same client against a real relay on the kernel-exact emulator.
import test, { type ExecutionContext } from "ava";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, openSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { buildHandoffClient } from "../../scripts/handoff/build-client.js";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { RELAY_CLI, tempDir, until } from "./control-harness.js";

const STUB = `
import json, os, socket, sys
path, reply = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(path)
s.listen(1)
print(json.dumps({"listening": path}), flush=True)
c, _ = s.accept()
msg, fds, flags, _ = socket.recv_fds(c, 1 << 20, 32)
print(json.dumps({
    "text": msg.decode("utf-8", "surrogateescape"),
    "fds": [os.readlink(f"/proc/self/fd/{fd}") for fd in fds],
    "truncated": bool(flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC)),
}), flush=True)
if reply == "hold":
    c.recv(1)  # no reply: wait for the client to give up and close
elif reply != "close":
    c.send(reply.encode())
c.close()
`;

interface Received { text: string; fds: string[]; truncated: boolean }
interface Stub { path: string; received: Promise<Received> }
interface Result { code: number | null; stdout: string; stderr: string }

/** Starts the stub relay on a fresh socket; resolves once it listens. `reply` is sent as is; "close" closes without one, "hold" never replies. */
function startStub(t: ExecutionContext, reply: string): Promise<Stub> {
  const path = join(tempDir(t, "iopf-handoff-"), "handoff.sock");
  const child = spawn("python3", ["-c", STUB, path, reply], { stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void child.kill("SIGKILL"));
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async <T>(what: string): Promise<T> => {
    const line = await lines.next();
    if (line.done) throw new Error(`the stub relay ended before ${what}: ${stderr}`);
    return JSON.parse(line.value) as T;
  };
  return next<{ listening: string }>("listening").then(() => ({ path, received: next<Received>("it received a message") }));
}

/** Runs the client with `fds` as its fds 3, 4, ... */
async function client(args: string[], fds: number[] = []): Promise<Result> {
  const bin = await buildHandoffClient();
  const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe", ...fds] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** A file to hand over, open on an fd of this process; closed when the test ends. */
function fileFd(t: ExecutionContext, name: string): { fd: number; path: string } {
  const path = join(tempDir(t, "iopf-handoff-fd-"), name);
  writeFileSync(path, name);
  const fd = openSync(path, "r");
  t.teardown(() => closeSync(fd));
  return { fd, path };
}

const oneLine = (s: string): boolean => s.endsWith("\n") && s.split("\n").length === 2;
const DEVICES = '[{"devId":3,"endpointId":8,"name":"nic0","deadlineMs":100}]';

test("attach: sends the exact request with the inherited fd as its one SCM_RIGHTS fd, prints the reply, exits 0 on ok", async (t) => {
  const reply = '{"v":1,"op":"attach","ok":true,"queues":[{"faultId":5,"devices":1}]}';
  const stub = await startStub(t, reply);
  const queue = fileFd(t, "fault-queue");
  const r = await client(["--socket", stub.path, "attach", "--fd", "3", "--fault-id", "5", "--devices", ` ${DEVICES}\n`,
    "--viommu", "virtio-iommu"], [queue.fd]);
  const got = await stub.received;
  t.is(got.text, `{"v":1,"op":"attach","queues":[{"fd":0,"faultId":5,"viommu":"virtio-iommu","devices":${DEVICES}}]}`);
  t.deepEqual(got.fds, [queue.path]);
  t.false(got.truncated);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${reply}\n`);
  t.is(r.stderr, "");
});

test("attach --emulator marks the queue; the fd number given is the one sent, whichever it is", async (t) => {
  const stub = await startStub(t, '{"v":1,"op":"attach","ok":true,"queues":[{"faultId":4294967295,"devices":0}]}');
  const other = fileFd(t, "not-this-one");
  const queue = fileFd(t, "emulator-socket");
  const r = await client(["attach", "--socket", stub.path, "--emulator", "--fault-id", "4294967295", "--devices", "[]", "--fd", "4"],
    [other.fd, queue.fd]);
  const got = await stub.received;
  t.is(got.text, '{"v":1,"op":"attach","queues":[{"fd":0,"faultId":4294967295,"emulator":true,"devices":[]}]}');
  t.deepEqual(got.fds, [queue.path]);
  t.is(r.code, 0, r.stderr);
});

test("attach --vmm-pid names the VMM a manager hands the queue over for", async (t) => {
  const stub = await startStub(t, '{"v":1,"op":"attach","ok":true,"queues":[{"faultId":5,"devices":1}]}');
  const queue = fileFd(t, "fault-queue");
  const r = await client(["--socket", stub.path, "attach", "--vmm-pid", "4242", "--fd", "3", "--fault-id", "5", "--devices", DEVICES], [queue.fd]);
  t.is((await stub.received).text, `{"v":1,"op":"attach","vmmPid":4242,"queues":[{"fd":0,"faultId":5,"devices":${DEVICES}}]}`);
  t.is(r.code, 0, r.stderr);
});

test("attach without --fd adds devices to a queue attached before: no fd key, no fds sent", async (t) => {
  const stub = await startStub(t, '{"v":1,"op":"attach","ok":true,"queues":[{"faultId":5,"devices":2}]}');
  const r = await client(["--socket", stub.path, "attach", "--fault-id", "5", "--devices", '[{"devId":4,"endpointId":9}]']);
  const got = await stub.received;
  t.is(got.text, '{"v":1,"op":"attach","queues":[{"faultId":5,"devices":[{"devId":4,"endpointId":9}]}]}');
  t.deepEqual(got.fds, []);
  t.is(r.code, 0, r.stderr);
});

test("detach: the devices named, or none for the whole queue; no fds sent", async (t) => {
  const some = await startStub(t, '{"v":1,"op":"detach","ok":true,"answered":2}');
  const r1 = await client(["--socket", some.path, "detach", "--fault-id", "5", "--dev", "3", "--dev", "4"]);
  const got1 = await some.received;
  t.is(got1.text, '{"v":1,"op":"detach","faultId":5,"devIds":[3,4]}');
  t.deepEqual(got1.fds, []);
  t.is(r1.code, 0, r1.stderr);
  t.is(r1.stdout, '{"v":1,"op":"detach","ok":true,"answered":2}\n');

  const whole = await startStub(t, '{"v":1,"op":"detach","ok":true,"answered":0,"closed":true}');
  const r2 = await client(["--socket", whole.path, "detach", "--fault-id", "7"]);
  t.is((await whole.received).text, '{"v":1,"op":"detach","faultId":7}');
  t.is(r2.code, 0, r2.stderr);
});

test("a refusal: the reply on stdout, its error on stderr as one line stripped of control characters, exit 1", async (t) => {
  const reply = '{"v":1,"op":"attach","ok":false,"error":"fd 0 is /dev/zero, not an iommufd fault fd\\n\\u001b[2J\\u0085 \\u00e9t\\u00e9 \\ud83d\\ude00"}';
  const stub = await startStub(t, reply);
  const queue = fileFd(t, "zero");
  const r = await client(["--socket", stub.path, "attach", "--fd", "3", "--fault-id", "5", "--devices", DEVICES], [queue.fd]);
  await stub.received;
  t.is(r.code, 1);
  t.is(r.stdout, `${reply}\n`);
  t.is(r.stderr, "iopf-handoff: the relay refused attach: fd 0 is /dev/zero, not an iommufd fault fd??[2J? été 😀\n");
});

test("a refusal's error is bounded on the terminal", async (t) => {
  const stub = await startStub(t, JSON.stringify({ v: 1, op: "detach", ok: false, error: "x".repeat(3000) }));
  const r = await client(["--socket", stub.path, "detach", "--fault-id", "5"]);
  t.is(r.code, 1);
  t.true(oneLine(r.stderr), r.stderr);
  t.regex(r.stderr, /^iopf-handoff: the relay refused detach: x{100,600}\.\.\.\n$/);
});

test("--json sends the text as given, malformed or over the limit, with every --fd in order", async (t) => {
  const stub = await startStub(t, '{"v":1,"ok":false,"error":"expected a JSON object, got malformed JSON"}');
  const a = fileFd(t, "first");
  const b = fileFd(t, "second");
  const r = await client(["--socket", stub.path, "--json", '{"v":1,"op":"attach",', "--fd", "4", "--fd", "3"], [a.fd, b.fd]);
  const got = await stub.received;
  t.is(got.text, '{"v":1,"op":"attach",');
  t.deepEqual(got.fds, [b.path, a.path]);
  t.is(r.code, 1);
  t.is(r.stderr, "iopf-handoff: the relay refused the request: expected a JSON object, got malformed JSON\n");

  const big = await startStub(t, '{"v":1,"ok":false,"error":"over 65536 bytes"}');
  const text = `{"v":1,"op":"detach","faultId":5,"pad":"${"p".repeat(70_000)}"}`;
  const r2 = await client(["--socket", big.path, "--json", text]);
  const got2 = await big.received;
  t.is(got2.text, text);
  t.false(got2.truncated);
  t.is(r2.code, 1);
});

test("the relay closes the connection without a reply: exit 1, one line", async (t) => {
  const stub = await startStub(t, "close");
  const r = await client(["--socket", stub.path, "detach", "--fault-id", "5", "--dev", "3"]);
  t.is((await stub.received).text, '{"v":1,"op":"detach","faultId":5,"devIds":[3]}');
  t.is(r.code, 1);
  t.is(r.stdout, "");
  t.is(r.stderr, "iopf-handoff: the relay closed the connection without a reply: see its log for why\n");
});

test("no reply within --timeout (default 30 s): exit 1, one line saying what to do; the request was sent", async (t) => {
  const stub = await startStub(t, "hold");
  const r = await client(["--socket", stub.path, "--timeout", "1", "detach", "--fault-id", "5", "--dev", "3"]);
  t.is((await stub.received).text, '{"v":1,"op":"detach","faultId":5,"devIds":[3]}');
  t.is(r.code, 1);
  t.is(r.stdout, "");
  t.true(oneLine(r.stderr), r.stderr);
  t.regex(r.stderr, /^iopf-handoff: no reply from the relay within 1 s: it may still carry the request out; see its log/);
});

test("a reply over 4096 bytes is not a handoff reply: exit 1, one line", async (t) => {
  const stub = await startStub(t, JSON.stringify({ v: 1, op: "detach", ok: false, error: "x".repeat(5000) }));
  const r = await client(["--socket", stub.path, "detach", "--fault-id", "5"]);
  await stub.received;
  t.is(r.code, 1);
  t.is(r.stdout, "");
  t.is(r.stderr, "iopf-handoff: the relay's reply is over 4096 bytes: not a handoff version 1 reply\n");
});

test("a reply that is not a handoff reply: exit 1, one line, nothing on stdout", async (t) => {
  const cases: Array<Promise<void>> = [];
  for (const [reply, why] of [
    ["not json \u001b[31m", /the relay's reply is not a JSON object: not json \?\[31m\n$/],
    ['{"v":1,"op":"attach"}', /the relay's reply has no "ok": true or false/],
    ['{"v":1,"op":"attach","ok":"yes"}', /the relay's reply has no "ok": true or false/],
    ['{"v":1,"op":"attach","ok":true}', /the relay's reply is not for detach/],
    ['{"v":1,"op":"detach","ok":true} trailing', /not a JSON object/],
    ['{"a":'.repeat(100) + "1" + "}".repeat(100), /not a JSON object/],
  ] as const) {
    cases.push((async () => {
      const stub = await startStub(t, reply);
      const r = await client(["--socket", stub.path, "detach", "--fault-id", "5"]);
      await stub.received;
      t.is(r.code, 1, reply);
      t.is(r.stdout, "", reply);
      t.true(oneLine(r.stderr), r.stderr);
      t.regex(r.stderr, why);
    })());
  }
  await Promise.all(cases);
});

test("usage errors exit 2 with one line and send nothing", async (t) => {
  const queue = fileFd(t, "queue");
  // No stub listens here: an attempt to connect would exit 1, not 2.
  const sock = join(tempDir(t, "iopf-handoff-none-"), "handoff.sock");
  const cases: Array<[string[], RegExp]> = [
    [["attach", "--fd", "3", "--fault-id", "5", "--devices", "[]"], /--socket PATH is required/],
    [["--socket", sock], /expected a command, attach or detach, or --json TEXT/],
    [["--socket", sock, "attach", "detach"], /unexpected argument "detach"/],
    [["--socket", sock, "plug"], /unexpected argument "plug"/],
    [["--socket", sock, "attach", "--fd", "3", "--devices", "[]"], /attach needs --fault-id ID/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5"], /attach needs --devices JSON/],
    [["--socket", sock, "attach", "--fault-id", "5", "--devices", "[]", "--emulator"], /--emulator describes the fd sent: it needs --fd N/],
    [["--socket", sock, "attach", "--fd", "3", "--fd", "3", "--fault-id", "5", "--devices", "[]"], /give --fd N once \(got 2\)/],
    [["--socket", sock, "attach", "--fd", "99", "--fault-id", "5", "--devices", "[]"], /--fd 99 is not an open file descriptor/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "4294967296", "--devices", "[]"], /--fault-id expects a decimal number from 0 to 4294967295, got "4294967296"/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "-1", "--devices", "[]"], /--fault-id expects a decimal number/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "0x5", "--devices", "[]"], /--fault-id expects a decimal number/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5", "--devices", '{"devId":3}'], /--devices expects one JSON array/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5", "--devices", '[{"devId":3}],"queues":[]'], /--devices expects one JSON array/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5", "--devices", '[{"devId":3,}]'], /--devices expects one JSON array/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5", "--devices", "[]", "--dev", "3"], /--dev belongs to detach/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5", "--devices", `[${'"x",'.repeat(20_000)}"x"]`], /the request is \d+ bytes; the protocol allows at most 65536/],
    [["--socket", sock, "detach", "--fault-id", "5", "--fd", "3"], /detach takes only --fault-id and --dev/],
    [["--socket", sock, "detach", "--fault-id", "5", "--vmm-pid", "7"], /detach takes only --fault-id and --dev/],
    [["--socket", sock, "attach", "--fd", "3", "--fault-id", "5", "--devices", "[]", "--vmm-pid", "0"], /--vmm-pid expects the VMM's process id, got 0/],
    [["--socket", sock, "detach", "--fault-id", "5", "--dev"], /--dev needs a value/],
    [["--socket", sock, "--timeout", "0", "detach", "--fault-id", "5"], /--timeout expects whole seconds from 1 to 86400, got "0"/],
    [["--socket", sock, "--timeout", "1.5", "detach", "--fault-id", "5"], /--timeout expects whole seconds from 1 to 86400, got "1.5"/],
    [["--socket", sock, "--json", "{}", "attach"], /--json replaces the attach command/],
    [["--socket", sock, "--json", "{}", "--fault-id", "5"], /--json takes only --socket, --timeout and --fd/],
    [["--socket", "/" + "s".repeat(120), "detach", "--fault-id", "5"], /a Unix socket path has at most 107/],
  ];
  await Promise.all(cases.map(async ([args, why]) => {
    const r = await client(args, [queue.fd]);
    t.is(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    t.true(oneLine(r.stderr), r.stderr);
    t.regex(r.stderr, why);
    t.is(r.stdout, "");
  }));
});

test("--help prints the usage and exits 0", async (t) => {
  const r = await client(["--help"]);
  t.is(r.code, 0);
  t.regex(r.stdout, /^usage: iopf-handoff --socket PATH \[--timeout S\] attach \[--fd N\] --fault-id ID --devices JSON/);
  t.is(r.stderr, "");
});

test("no relay at the path, a socket nobody listens on, a stream socket: exit 1 with what to do", async (t) => {
  const dir = tempDir(t, "iopf-handoff-sockets-");
  const missing = await client(["--socket", join(dir, "none.sock"), "detach", "--fault-id", "5"]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no socket at .*none\.sock: start iopf-relay with --handoff unix:/);

  const stale = join(dir, "stale.sock");
  execFileSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET).bind(sys.argv[1])", stale]);
  const refused = await client(["--socket", stale, "detach", "--fault-id", "5"]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /nobody listens on .*stale\.sock/);

  const streamPath = join(dir, "stream.sock");
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(streamPath, resolve));
  t.teardown(() => void server.close());
  const wrong = await client(["--socket", streamPath, "detach", "--fault-id", "5"]);
  t.is(wrong.code, 1);
  t.regex(wrong.stderr, /is not a SOCK_SEQPACKET socket: is it the relay's --handoff socket/);
  for (const r of [missing, refused, wrong]) t.true(oneLine(r.stderr), r.stderr);
});

// Serial: ava runs it before the others, alone; beside a dozen stubs and compilers a relay took over 20 s to start on a loaded machine.
test.serial("against a real relay: attach an emulator's fd, detach a device, detach the queue; a file that is not a fault fd is refused", async (t) => {
  const dir = tempDir(t, "iopf-handoff-relay-");
  writeFileSync(join(dir, "relay.json"), JSON.stringify({ viommu: "virtio-iommu", devices: [] }));
  const handoff = join(dir, "handoff.sock");
  const relay = spawn(process.execPath, [RELAY_CLI, "--handoff", `unix:${handoff}`, "--config", join(dir, "relay.json"),
    "--socket-path", join(dir, "link.sock"), "--log-format", "json"], { stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  relay.stderr!.on("data", (b: Buffer) => (logs += b.toString()));
  t.teardown(() => void relay.kill("SIGKILL"));
  await until(() => /"msg":"handoff socket listening"/.test(logs), 20_000, "the relay's handoff socket");
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const relayHolds = (target: string): boolean => readdirSync(`/proc/${relay.pid}/fd`).some((fd) => {
    try {
      return readlinkSync(`/proc/${relay.pid}/fd/${fd}`) === target;
    } catch {
      return false;
    }
  });
  const queueFile = readlinkSync(`/proc/self/fd/${emu.faultFd}`);

  const devices = '[{"devId":1,"endpointId":1,"name":"nic0"},{"devId":2,"endpointId":2}]';
  const attached = await client(["--socket", handoff, "attach", "--emulator", "--fd", "3", "--fault-id", "7", "--devices", devices], [emu.faultFd]);
  t.is(attached.code, 0, attached.stderr);
  t.deepEqual(JSON.parse(attached.stdout), { v: 1, op: "attach", ok: true, queues: [{ faultId: 7, devices: 2 }] });
  t.true(relayHolds(queueFile), "the relay holds the queue's fd");

  const device = await client(["--socket", handoff, "detach", "--fault-id", "7", "--dev", "2"]);
  t.is(device.code, 0, device.stderr);
  t.like(JSON.parse(device.stdout), { op: "detach", ok: true, answered: 0 });

  const unknown = await client(["--socket", handoff, "detach", "--fault-id", "8"]);
  t.is(unknown.code, 1);
  t.true(oneLine(unknown.stderr), unknown.stderr);
  t.regex(unknown.stderr, /^iopf-handoff: the relay refused detach: .*8/);

  const queue = await client(["--socket", handoff, "detach", "--fault-id", "7"]);
  t.is(queue.code, 0, queue.stderr);
  t.like(JSON.parse(queue.stdout), { op: "detach", ok: true, closed: true });
  await until(() => !relayHolds(queueFile), 10_000, "the relay to close its copy of the queue's fd");

  const notAQueue = fileFd(t, "not-a-fault-queue");
  const refused = await client(["--socket", handoff, "attach", "--fd", "3", "--fault-id", "9", "--devices", "[]"], [notAQueue.fd]);
  t.is(refused.code, 1);
  t.true(oneLine(refused.stderr), refused.stderr);
  t.regex(refused.stderr, /^iopf-handoff: the relay refused attach: .*not-a-fault-queue/);
  t.false(relayHolds(notAQueue.path), "the relay closed the refused fd");
});
