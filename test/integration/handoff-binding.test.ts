// Who may talk on the handoff socket (docs/handoff.md, section 3): only root
// manages the relay; any other process, whatever its uid (the relay's own
// too: every QEMU under libvirt shares one), binds the handoff to itself on
// its first attach, and the others are refused while it lives. The relay
// here runs as user nobody, and so do the VMMs; the emulator is its stream
// kind (a socket), which any user's process can read and write once it has
// the fd (its kernel-exact FUSE file answers only the user that mounted it).
import test, { type ExecutionContext } from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { buildHandoffClient } from "../../scripts/handoff/build-client.js";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { handoffRequest } from "../../src/ctl/handoff-client.js";
import type { HandoffReply } from "../../src/relay/handoff/handoff-message.js";
import { status, until, waitStatus } from "./control-harness.js";
import { asNobody, attach, nobodyReadable, ok, refused, startRelay, type Relay } from "./handoff-harness.js";

/** The modules the peers (user nobody) import, where they can read them. */
const CLIENT = nobodyReadable(fileURLToPath(new URL("../../src/ctl/handoff-client.js", import.meta.url)));
const RIGHTS = nobodyReadable(fileURLToPath(new URL("../../src/kernel/unix-rights.js", import.meta.url)));
const LIBC = nobodyReadable(fileURLToPath(new URL("../../src/kernel/libc.js", import.meta.url)));

interface Peer {
  child: ChildProcess;
  /** The relay's reply to its one request. */
  reply: Promise<HandoffReply>;
}

/** A process of user nobody that sends one request (its fd 3 with an attach) and prints the reply; `stay` keeps it running after. */
function nobodyPeer(t: ExecutionContext, relay: Relay, request: object, fd: number, stay: boolean): Peer {
  const fds = (request as { op: string }).op === "attach" ? "[3]" : "[]";
  const script = `import { handoffRequest } from ${JSON.stringify(CLIENT)};
    console.log(JSON.stringify(handoffRequest(${JSON.stringify(relay.handoff)}, ${JSON.stringify(request)}, ${fds})));
    ${stay ? "setInterval(() => {}, 1000);" : ""}`;
  const [file, args] = asNobody([process.execPath, "--input-type=module", "-e", script]);
  const child = spawn(file, args, { stdio: ["ignore", "pipe", "inherit", fd] });
  t.teardown(() => void child.kill("SIGKILL"));
  const reply = new Promise<HandoffReply>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", (line) => resolve(JSON.parse(line) as HandoffReply));
    child.once("exit", (code) => reject(new Error(`the peer exited ${code} without printing a reply`)));
  });
  return { child, reply };
}

/** Whether the relay holds the emulator's fd (the same socket). */
const holds = (relay: Relay, emu: KernelEmulator): boolean => relay.fds().some((f) => f.endsWith(` -> ${readlinkSync(`/proc/self/fd/${emu.faultFd}`)}`));

async function letGo(relay: Relay, emu: KernelEmulator): Promise<void> {
  await until(() => /the VMM that handed its fault queues over exited/.test(relay.logs()), 10_000, "the relay to let go");
  await until(() => !holds(relay, emu), 10_000, "its copy of the fault fd closed");
}

test.serial("a relay running as an ordinary user binds its handoff to the first VMM process of that same user: another process of it is refused, for its own request; the VMM's exit lets go", async (t) => {
  const emu = await KernelEmulator.start();
  t.teardown(() => emu.close());
  const relay = await startRelay(t, { nobody: true });
  const vmm = nobodyPeer(t, relay, attach(5, [{ devId: 1, endpointId: 1 }]), emu.faultFd, true);
  t.like(await vmm.reply, { op: "attach", ok: true }, "the first VMM binds it");
  await until(() => new RegExp(`"msg":"handoff bound to the VMM[^"]*","pid":${vmm.child.pid}`).test(relay.logs()), 10_000, "the binding");

  // setpriv execs node: the VMM's pid is the child's.
  const bound = new RegExp(`bound to process ${vmm.child.pid}, the VMM that attached first`);
  const other = await nobodyPeer(t, relay, attach(6, [{ devId: 2, endpointId: 2 }]), emu.faultFd, false).reply;
  t.is(other.op, "attach", "the refusal answers the request it refuses");
  t.regex(refused(other), bound);
  const detach = await nobodyPeer(t, relay, { v: 1, op: "detach", faultId: 5 }, emu.faultFd, false).reply;
  t.like(detach, { op: "detach", ok: false });
  t.regex(refused(detach), bound);

  // The C client, as a VMM of the same user would run it, says so on its one line.
  const bin = join(relay.dir, "iopf-handoff");
  copyFileSync(await buildHandoffClient(), bin);
  const [file, args] = asNobody([bin, "--socket", relay.handoff, "attach", "--emulator", "--fd", "3", "--fault-id", "7", "--devices", '[{"devId":3,"endpointId":3}]']);
  const c = spawn(file, args, { stdio: ["ignore", "pipe", "pipe", emu.faultFd] });
  let stderr = "";
  c.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((resolve) => c.on("close", resolve));
  t.is(code, 1);
  t.regex(stderr, new RegExp(`^iopf-handoff: the relay refused attach: this relay's handoff is bound to process ${vmm.child.pid}`));

  await emu.raise({ dev: 1, count: 3 });
  await waitStatus(relay.control, (s) => s.counters.answered === 3, "the bound VMM's queue served");
  t.deepEqual((await status(relay.control)).devices.map((d) => d.devId), [1], "nothing of the refused peers was taken");
  vmm.child.kill("SIGKILL");
  await letGo(relay, emu);
});

test.serial("only root names the VMM: a process of the relay's own user giving vmmPid is refused; root's attach with vmmPid binds that process, and its exit lets go", async (t) => {
  const emu = await KernelEmulator.start();
  t.teardown(() => emu.close());
  const relay = await startRelay(t, { nobody: true });
  const vmm = spawn("sleep", ["600"], { stdio: "ignore" });
  t.teardown(() => void vmm.kill("SIGKILL"));

  const named = await nobodyPeer(t, relay, attach(5, [{ devId: 1, endpointId: 1 }], 0, { vmmPid: vmm.pid }), emu.faultFd, false).reply;
  t.regex(refused(named), /^attach\.vmmPid: only root may name the VMM/);
  t.notRegex(relay.logs(), /"msg":"handoff bound/, "nothing was bound");

  t.like(ok(handoffRequest(relay.handoff, attach(5, [{ devId: 1, endpointId: 1 }], 0, { vmmPid: vmm.pid }), [emu.faultFd])), { queues: [{ faultId: 5, devices: 1 }] });
  await until(() => new RegExp(`"msg":"handoff bound to the VMM[^"]*","pid":${vmm.pid}`).test(relay.logs()), 10_000, "the binding to the process root named");
  const other = await nobodyPeer(t, relay, attach(6, [{ devId: 2, endpointId: 2 }]), emu.faultFd, false).reply;
  t.regex(refused(other), new RegExp(`bound to process ${vmm.pid}`));
  await emu.raise({ dev: 1, count: 2 });
  await waitStatus(relay.control, (s) => s.counters.answered === 2, "the queue served");
  vmm.kill("SIGKILL");
  await letGo(relay, emu);
});

test.serial("a VMM whose first attach is refused tries again on the same connection, and binds the handoff then", async (t) => {
  const emu = await KernelEmulator.start();
  t.teardown(() => emu.close());
  const relay = await startRelay(t, { nobody: true });
  // One connection, two requests: a bad device first, then the right one; each reply printed on its line.
  const script = `import { connectSeqpacket, receive, send } from ${JSON.stringify(RIGHTS)};
    import * as libc from ${JSON.stringify(LIBC)};
    const s = connectSeqpacket(${JSON.stringify(relay.handoff)});
    for (const body of ${JSON.stringify([attach(5, [{ devId: 1 }]), attach(5, [{ devId: 1, endpointId: 1 }])])}) {
      send(s, Buffer.from(JSON.stringify(body)), [3]);
      const p = Buffer.alloc(libc.POLLFD_SIZE);
      p.writeInt32LE(s, 0);
      p.writeInt16LE(libc.POLLIN, 4);
      libc.poll(p, 1, 30000);
      console.log(receive(s, 4096).data.toString());
    }
    setInterval(() => {}, 1000);`;
  const [file, args] = asNobody([process.execPath, "--input-type=module", "-e", script]);
  const vmm = spawn(file, args, { stdio: ["ignore", "pipe", "inherit", emu.faultFd] });
  t.teardown(() => void vmm.kill("SIGKILL"));
  const lines = createInterface({ input: vmm.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<HandoffReply> => JSON.parse((await lines.next()).value as string) as HandoffReply;
  t.regex(refused(await next()), /devices\[0\]\.endpointId: expected a virtio-iommu endpoint id/);
  t.like(await next(), { op: "attach", ok: true }, "the second try is taken");
  await until(() => new RegExp(`"msg":"handoff bound to the VMM[^"]*","pid":${vmm.pid}`).test(relay.logs()), 10_000, "the binding");
  vmm.kill("SIGKILL");
  await letGo(relay, emu);
});
