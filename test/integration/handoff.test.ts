// The handoff socket of a real relay process, on the kernel-exact emulator
// (docs/handoff.md): fault fds handed over at runtime and served, devices
// and queues detached with groups in flight (answered before the reply, the
// fd closed after), a second queue plugged later, the VMM dying, bad fds,
// malformed messages, peers that leave, iopfctl, the keeper, and 100
// attach/detach cycles that leak no fd. Who may talk: handoff-binding; the
// protocol's corners: handoff-edges.
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { handoffRequest } from "../../src/ctl/handoff-client.js";
import { connectSeqpacket, send } from "../../src/kernel/unix-rights.js";
import * as libc from "../../src/kernel/libc.js";
import { IOPFCTL_CLI, RELAY_CLI, status, tempDir, until, waitStatus } from "./control-harness.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";
import { attach, fdsOf, ok, refusals, startRelay } from "./handoff-harness.js";

test.serial("a queue handed over is served; detached with groups in flight, they are answered before the reply and the fd is closed after", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const relay = await startRelay(t, { answer: () => null });
  t.deepEqual(ok(handoffRequest(relay.handoff, attach(7, [{ devId: 1, endpointId: 1, deadlineMs: 60_000 }, { devId: 2, endpointId: 2, deadlineMs: 60_000 }]), [emu.faultFd])),
    { v: 1, op: "attach", ok: true, queues: [{ faultId: 7, devices: 2 }] });
  t.true(relay.fds().some((f) => f.endsWith("/fault")), "the relay holds the fd");
  await emu.raise({ dev: 1, count: 3 });
  await emu.raise({ dev: 2, count: 2, addr: 0x100000 });
  await waitStatus(relay.control, (s) => s.inFlight === 5, "five groups with the agent, which never answers");
  // A device first: its two groups answered, the queue still read.
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 7, devIds: [2] })), { answered: 2, closed: false });
  await emu.raise({ dev: 1, count: 1, addr: 0x200000 });
  await waitStatus(relay.control, (s) => s.inFlight === 4, "device 1's new group read");
  // Then the whole queue.
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 7 })), { answered: 4, closed: true });
  const stats = await emu.stats();
  t.like(stats, { outstanding: 0, answeredInvalid: 6 }, "every group answered once, before the reply");
  t.deepEqual(refusals(stats), [], "nothing refused but the sweep's cookies");
  await until(() => !relay.fds().some((f) => f.endsWith("/fault")), 10_000, "the relay to close its copy");
});

test.serial("a second queue plugged later is served beside the first, and groups flow on both", async (t) => {
  const a = await KernelEmulator.start({ mode: "kernel-exact" });
  const b = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const relay = await startRelay(t);
  ok(handoffRequest(relay.handoff, attach(1, [{ devId: 1, endpointId: 1 }]), [a.faultFd]));
  await a.raise({ dev: 1, count: 10 });
  await waitStatus(relay.control, (s) => s.counters.answered === 10, "the first queue's groups");
  ok(handoffRequest(relay.handoff, attach(2, [{ devId: 5, endpointId: 5 }]), [b.faultFd]));
  await b.raise({ dev: 5, count: 10 });
  await a.raise({ dev: 1, count: 10, addr: 0x400000 });
  await waitStatus(relay.control, (s) => s.counters.answered === 30, "both queues' groups");
  const s = await status(relay.control);
  t.deepEqual(s.devices.map((d) => d.devId).sort(), [1, 5], "the map shows both queues' devices");
  t.like(await a.stats(), { answeredSuccess: 20, outstanding: 0 });
  t.like(await b.stats(), { answeredSuccess: 10, outstanding: 0 });
  t.deepEqual([...refusals(await a.stats()), ...refusals(await b.stats())], []);
});

test.serial("when the VMM exits the relay lets go: its groups are dropped unanswered, its fds closed, and the handoff is free again", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const relay = await startRelay(t, { answer: () => null });
  const vmm = spawn("sleep", ["600"], { stdio: "ignore" });
  t.teardown(() => void vmm.kill("SIGKILL"));
  ok(handoffRequest(relay.handoff, attach(3, [{ devId: 1, endpointId: 1 }], 0, { vmmPid: vmm.pid }), [emu.faultFd]));
  await emu.raise({ dev: 1, count: 4 });
  await waitStatus(relay.control, (s) => s.inFlight === 4, "four groups held");
  // The VMM's death detaches its devices: the kernel answers their groups itself.
  await emu.detach(1);
  vmm.kill("SIGKILL");
  await until(() => /the VMM that handed its fault queues over exited/.test(relay.logs()), 10_000, "the relay to notice");
  await until(() => !relay.fds().some((f) => f.endsWith("/fault")), 10_000, "the fd closed");
  const s = await status(relay.control);
  t.is(s.inFlight, 0);
  t.deepEqual(s.devices.filter((d) => d.endpoint !== -1), [], "its devices left the map");
  const stats = await emu.stats();
  t.like(stats, { answeredSuccess: 0, answeredInvalid: 0, autoAnswered: 4 }, "the relay wrote nothing: the kernel had answered");
  t.deepEqual(refusals(stats), []);
  const again = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => again.close());
  t.like(ok(handoffRequest(relay.handoff, attach(3, [{ devId: 1, endpointId: 1 }]), [again.faultFd])), { ok: true }, "the next VMM may attach");
});

test.serial("refused: an fd that is not a fault fd, a malformed message, a bad device; nothing changes and no fd stays open", async (t) => {
  const relay = await startRelay(t);
  const before = relay.fds();
  const devNull = openSync("/dev/null", "r");
  t.teardown(() => closeSync(devNull));
  const notFault = handoffRequest(relay.handoff, { v: 1, op: "attach", queues: [{ fd: 0, faultId: 1, devices: [{ devId: 1, endpointId: 1 }] }] }, [devNull]);
  t.false(notFault.ok);
  t.regex((notFault as { error: string }).error, /attach\.queues\[0\]\.fd: the fd sent is \/dev\/null, not an iommufd fault fd/);
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const badDevice = handoffRequest(relay.handoff, attach(1, [{ devId: 1 }]), [emu.faultFd]);
  t.regex((badDevice as { error: string }).error, /^attach\.queues\[0\]\.devices\[0\]\.endpointId: expected a virtio-iommu endpoint id/);
  const badShape = handoffRequest(relay.handoff, { v: 1, op: "attach", queues: "all of them" });
  t.regex((badShape as { error: string }).error, /attach\.queues: expected a non-empty array of queues, got "all of them"/);
  const unknownKey = handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 1, force: true });
  t.regex((unknownKey as { error: string }).error, /detach\.force: expected one of the keys v, op, faultId, devIds/);
  const unknownQueue = handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 99 });
  t.regex((unknownQueue as { error: string }).error, /fault 99 was not handed over to this relay/);
  // Not JSON at all, with an fd: refused, and the fd the relay received is closed.
  const fd = connectSeqpacket(relay.handoff);
  send(fd, Buffer.from("\x00\x01garbage"), [devNull]);
  const pfd = Buffer.alloc(libc.POLLFD_SIZE);
  pfd.writeInt32LE(fd, 0);
  pfd.writeInt16LE(libc.POLLIN, 4);
  libc.poll(pfd, 1, 10_000);
  const reply = Buffer.alloc(65536);
  const n = libc.read(fd, reply, reply.length);
  libc.close(fd);
  t.regex(reply.toString("utf8", 0, Math.max(0, n)), /"ok":false,"error":"expected one JSON object per message/);
  await until(() => relay.fds().length <= before.length, 10_000, "the fds the relay received closed");
  t.false(relay.fds().some((f) => f.includes("/dev/null") && !before.includes(f)), "no /dev/null the peer sent is left open");
  t.deepEqual((await status(relay.control)).devices, []);
});

test.serial("a peer that sends its fds and leaves before the reply: the attach stands, the relay runs on", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const relay = await startRelay(t);
  const fd = connectSeqpacket(relay.handoff);
  send(fd, Buffer.from(JSON.stringify(attach(4, [{ devId: 1, endpointId: 1 }]))), [emu.faultFd]);
  libc.close(fd);
  await waitStatus(relay.control, (s) => s.devices.length === 1, "the queue attached");
  await emu.raise({ dev: 1, count: 5 });
  await waitStatus(relay.control, (s) => s.counters.answered === 5, "its groups served");
  t.like(ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 4 })), { closed: true });
});

test.serial("100 attach and detach cycles leave the relay with the fds it had", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const relay = await startRelay(t);
  const before = relay.fds();
  for (let i = 0; i < 100; i++) {
    ok(handoffRequest(relay.handoff, attach(10 + i, [{ devId: 1, endpointId: 1 }]), [emu.faultFd]));
    if (i % 10 === 0) await emu.raise({ dev: 1, count: 2, addr: i * 0x10000 });
    ok(handoffRequest(relay.handoff, { v: 1, op: "detach", faultId: 10 + i }));
  }
  // The status polls' own HTTP sockets come and go: what must not grow is the count, and no fault fd may stay.
  await until(() => relay.fds().length <= before.length && !relay.fds().some((f) => f.endsWith("/fault")), 10_000, "every fd closed").catch((err: Error) => {
    t.log(`before: ${before.join(", ")}\nafter: ${relay.fds().join(", ")}`);
    throw err;
  });
  t.pass();
  t.like(await emu.stats(), { outstanding: 0 });
});

test.serial("iopfctl attach and detach hand over an fd it inherited", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const relay = await startRelay(t);
  const run = (args: string[]): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const c = spawn(process.execPath, [IOPFCTL_CLI, ...args, "--handoff", `unix:${relay.handoff}`], { stdio: ["ignore", "pipe", "pipe", emu.faultFd] });
    let out = "";
    let err = "";
    c.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    c.stderr!.on("data", (b: Buffer) => (err += b.toString()));
    c.on("exit", (code) => resolve({ code, out, err }));
  });
  const a = await run(["attach", "--fault-fd", "3", "--fault-id", "9", "--devices", '[{"devId":1,"endpointId":1}]', "--emulator"]);
  t.is(a.code, 0, a.err);
  t.deepEqual(JSON.parse(a.out), { v: 1, op: "attach", ok: true, queues: [{ faultId: 9, devices: 1 }] });
  await emu.raise({ dev: 1, count: 3 });
  await waitStatus(relay.control, (s) => s.counters.answered === 3, "served");
  const d = await run(["detach", "--fault-id", "9"]);
  t.is(d.code, 0, d.err);
  t.like(JSON.parse(d.out), { op: "detach", ok: true, closed: true });
  const again = await run(["detach", "--fault-id", "9"]);
  t.is(again.code, 1);
  t.regex(again.err, /^iopfctl: the relay refused the detach: detach\.faultId: fault 9 was not handed over/);
});

interface Keeper {
  child: ChildProcess;
  handoff: string;
  /** The agent's socket (--socket-path). */
  socket: string;
  /** Its log and its relay's, JSON lines. */
  logs: () => string;
  /** The pids of the relays it started, in order. */
  pids: () => number[];
}

async function startKeeper(t: Parameters<typeof tempDir>[0]): Promise<Keeper> {
  const dir = tempDir(t, "iopf-handoff-keeper-");
  writeFileSync(join(dir, "relay.json"), JSON.stringify({ viommu: "virtio-iommu", devices: [] }));
  const handoff = join(dir, "handoff.sock");
  const socket = join(dir, "link.sock");
  const child = spawn(process.execPath, [RELAY_CLI, "--keeper", "--handoff", `unix:${handoff}`, "--config", join(dir, "relay.json"), "--socket-path", socket, "--log-format", "json"], { stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr!.on("data", (b: Buffer) => (logs += b.toString()));
  t.teardown(() => void child.kill("SIGKILL"));
  const pids = (): number[] => [...logs.matchAll(/"msg":"relay started","pid":(\d+)/g)].map((m) => Number(m[1]));
  await until(() => /"msg":"handoff socket listening"/.test(logs) && pids().length === 1, 20_000, "the keeper and its relay");
  return { child, handoff, socket, logs: () => logs, pids };
}

test.serial("under the keeper: the queue survives a relay SIGKILLed with groups in flight; the new relay sweeps them and serves on; detach goes through", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const { child: keeper, handoff, socket, logs, pids } = await startKeeper(t);
  let hold = true;
  const agent = reconnectingAgent(socket, 0, () => (hold ? null : 0));
  t.teardown(() => agent.stop());
  ok(handoffRequest(handoff, attach(8, [{ devId: 1, endpointId: 1, deadlineMs: 60_000 }]), [emu.faultFd]));
  await emu.raise({ dev: 1, count: 4 });
  await until(async () => (await emu.stats()).outstanding === 4, 10_000, "four groups read, held by the agent");
  process.kill(pids()[0]!, "SIGKILL");
  await until(() => pids().length === 2, 20_000, "the restarted relay");
  await until(() => /"msg":"answered SUCCESS to the groups a previous reader of this fault queue left, before reading it".*"answered":4/.test(logs()), 20_000, "the new relay's sweep of the queue the keeper handed it again");
  hold = false;
  await emu.raise({ dev: 1, count: 3, addr: 0x800000 });
  await until(async () => { const s = await emu.stats(); return s.outstanding === 0 && s.queued === 0; }, 20_000, "the new groups served");
  t.like(ok(handoffRequest(handoff, { v: 1, op: "detach", faultId: 8 })), { closed: true });
  const stats = await emu.stats();
  if (stats.answeredSuccess !== 7) t.log(`${JSON.stringify(stats).slice(0, 600)}\n${logs().split("\n").slice(-40).join("\n")}`);
  t.like(stats, { answeredSuccess: 7, outstanding: 0 });
  t.deepEqual(refusals(stats), []);
  keeper.kill("SIGTERM");
  await new Promise((resolve) => keeper.once("exit", resolve));
});

test.serial("under the keeper: when the VMM a manager named exits, the relay lets go of its queue and logs whose it was", async (t) => {
  const emu = await KernelEmulator.start({ mode: "kernel-exact" });
  t.teardown(() => emu.close());
  const { child: keeper, handoff, socket, logs, pids } = await startKeeper(t);
  const agent = reconnectingAgent(socket, 0, () => null);
  t.teardown(() => agent.stop());
  const vmm = spawn("sleep", ["600"], { stdio: "ignore" });
  t.teardown(() => void vmm.kill("SIGKILL"));
  ok(handoffRequest(handoff, attach(4, [{ devId: 1, endpointId: 1, deadlineMs: 60_000 }], 0, { vmmPid: vmm.pid }), [emu.faultFd]));
  await emu.raise({ dev: 1, count: 2 });
  await until(async () => (await emu.stats()).outstanding === 2, 10_000, "two groups read, held by the agent");
  // The VMM's death detaches its devices: the kernel answers their groups itself.
  await emu.detach(1);
  vmm.kill("SIGKILL");
  const letGo = /"msg":"let go of a fault queue of a VMM that exited[^"]*",(.*)\}/;
  await until(() => letGo.test(logs()), 10_000, "the relay to let go");
  t.like(JSON.parse(`{${letGo.exec(logs())![1]!}}`), { pid: vmm.pid, faultId: 4, dropped: 2 }, "the relay names the VMM, not a pid of 0");
  await until(() => !fdsOf(pids()[0]!).some((f) => f.endsWith("/fault")), 5000, "the relay's fd closed");
  t.like(await emu.stats(), { answeredSuccess: 0, answeredInvalid: 0, autoAnswered: 2 }, "the relay wrote nothing: the kernel had answered");
  keeper.kill("SIGTERM");
  await new Promise((resolve) => keeper.once("exit", resolve));
});
