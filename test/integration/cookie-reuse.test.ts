// A cookie the kernel gives again while the relay still holds it: a detach
// answers the device's groups INVALID itself, with no event on the fault fd,
// and the freed cookie goes to the next group read. On the kernel-exact
// emulator (cookies given at read, lowest free first, as the kernel does),
// the agent's late verdict for the old group must not reach the new one.
import test from "ava";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { FdSourceSet } from "../../src/fault/sources/fd-sources.js";
import { pb } from "../../src/link/messages.js";
import { buildFrame } from "../../src/link/frame-sender.js";
import { RequestCode } from "../../src/link/request-code.js";
import { createLogger } from "../../src/relay/log.js";
import { RelayCore } from "../../src/relay/relay-core.js";
import { memoryPair, until } from "../support/memory-stream.js";
import { FAST_TIMERS, makeGuest } from "../support/link-peers.js";
import { simpleDevices } from "../support/simple-devices.js";

test("after a detach the agent's verdict for the old group never lands on the new group that got its cookie", async (t) => {
  const emulator = await KernelEmulator.start({ mode: "kernel-exact" });
  const fds = await FdSourceSet.start({ maxHeld: 100 });
  const core = new RelayCore({
    devices: simpleDevices(60_000),
    link: { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [], software: "test-relay", resyncTimers: FAST_TIMERS },
    log: createLogger("test-relay", "json", "error", () => undefined),
  });
  core.addSource(fds.add({ fd: emulator.faultFd, kind: "kernel", description: "emulator", sweep: false }));
  const [h, g] = memoryPair();
  core.attach(h);
  const guest = makeGuest(g);
  guest.answer = null;
  guest.link.start();
  try {
    await until(() => core.currentSession !== null, 10_000, "a session");
    await emulator.raise({ dev: 2, addr: 0x2000 });
    await until(() => guest.requests.length === 1, 10_000, "device 2's group with the agent");
    const old = guest.requests[0]!;
    // The VMM detaches device 2 without telling the relay: the kernel answers its group and frees cookie 1.
    t.deepEqual(await emulator.detach(2), { answered: 1, dropped: 0 });
    await emulator.raise({ dev: 1, addr: 0x1000 });
    await until(() => guest.requests.length === 2, 10_000, "device 1's group, with cookie 1 again");
    await until(() => guest.cancels.includes(old.tag), 10_000, "the old group cancelled at the agent");
    // The agent answers both: SUCCESS for the old group (written raw: GuestLink itself would drop a cancelled tag), INVALID for the new one.
    g.write(buildFrame(RequestCode.PAGE_RESPONSES, 0, 900, pb.PageResponseBatch, { responses: [{ tag: old.tag, code: pb.ResponseCode.RESPONSE_SUCCESS }] }));
    await until(() => core.metrics.totalDropped() === 1, 10_000, "the old verdict dropped");
    guest.link.sendResponses([guest.requests[1]!.tag], [pb.ResponseCode.RESPONSE_INVALID]);
    await until(async () => { const s = await emulator.stats(); return s.outstanding === 0 && s.queued === 0; }, 10_000, "device 1's group answered");
    const stats = await emulator.stats();
    t.is(stats.answeredSuccess, 0, "no SUCCESS reached the kernel: the old verdict was not written");
    t.is(stats.answeredInvalid, 1, "device 1's group got its own INVALID");
    t.deepEqual(stats.violations, []);
    t.is(core.metrics.ended.get("kernel-ended"), 1);
  } finally {
    await core.shutdown();
    await fds.stop();
    await emulator.close();
  }
});
