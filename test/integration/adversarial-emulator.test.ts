// The relay on the kernel emulator (the fault fd's byte contract, with a
// violations list wherever the kernel would fail a write) under a hostile
// guest: forged and repeated answers never reach the fault fd, and answers
// for groups a detach already answered are refused by the emulator as the
// kernel's EINVAL, once each, never retried.
import test from "ava";
import { KernelEmulator } from "../../src/fault/emulator/kernel-emulator.js";
import { FdSourceSet } from "../../src/fault/sources/fd-sources.js";
import { createLogger } from "../../src/relay/log.js";
import { pb } from "../../src/link/messages.js";
import { RelayCore } from "../../src/relay/relay-core.js";
import { memoryPair, until } from "../support/memory-stream.js";
import { FAST_TIMERS } from "../support/link-peers.js";
import { simpleDevices } from "../support/simple-devices.js";
import { HostileGuest } from "../support/hostile-guest.js";
import { GroupAudit } from "../support/hostile-relay.js";

async function emulatorRelay() {
  const emulator = await KernelEmulator.start();
  const fds = await FdSourceSet.start({ maxHeld: 1000 });
  const source = fds.add({ fd: emulator.faultFd, kind: "stream", description: "emulator", sweep: false });
  const audit = new GroupAudit();
  const core = new RelayCore({
    devices: simpleDevices(10_000),
    link: { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [], software: "emulator-relay", resyncTimers: FAST_TIMERS },
    observer: audit,
    log: createLogger("emulator-relay", "json", "error", () => undefined),
  });
  core.addSource(source);
  const [h, g] = memoryPair();
  core.attach(h);
  const guest = new HostileGuest(g).start();
  await until(() => core.currentSession !== null, 10_000, "a session");
  return { emulator, core, guest, audit, fds };
}

test.serial("forged, repeated and out-of-range answers never reach the fault fd: no violations", async (t) => {
  const { emulator, core, guest, audit, fds } = await emulatorRelay();
  await emulator.raise({ dev: 1, pasid: 1, count: 50 });
  await until(() => guest.requests.length === 50, 10_000, "50 requests");
  const tags = guest.requests.map((r) => r.tag);
  guest.answer([0, 0xffffffff, ...tags.map((tag) => tag + 100_000)]);
  guest.answer(tags);
  guest.answer(tags);
  guest.answer(tags, 7);
  await until(() => core.metrics.totalDropped() === 2 + 50 * 3, 10_000, "every bad answer dropped");
  await core.shutdown();
  await fds.stop();
  const stats = await emulator.quit();
  await emulator.close();
  t.deepEqual(stats.violations, []);
  t.is(stats.answeredSuccess, 50);
  t.is(stats.outstanding, 0);
  t.deepEqual(audit.problems(), []);
});

test.serial("a detach answers device 2's groups first: the relay's later answers are refused once each (counted), not retried", async (t) => {
  const { emulator, core, guest, audit, fds } = await emulatorRelay();
  await emulator.raise({ dev: 1, pasid: 1, count: 5 });
  await emulator.raise({ dev: 2, pasid: 1, count: 5, addr: 0x200000 });
  await until(() => guest.requests.length === 10, 10_000, "10 requests");
  t.deepEqual(await emulator.detach(2), { answered: 5, dropped: 0 });
  guest.answer(guest.requests.map((r) => r.tag));
  await until(() => audit.count("guest") === 10, 10_000, "the guest's answers written");
  await emulator.raise({ dev: 1, pasid: 1, count: 3, addr: 0x300000 });
  await until(() => guest.requests.length === 13, 10_000, "later groups still flow");
  guest.answer(guest.requests.slice(10).map((r) => r.tag));
  await until(() => audit.count("guest") === 13, 10_000, "answered");
  await core.shutdown();
  await fds.stop();
  const stats = await emulator.quit();
  await emulator.close();
  const refusedByDetach = stats.violations.filter((v) => v.kind === "unknown-cookie" && v.detail === "answered by detach");
  t.is(refusedByDetach.length, 5, JSON.stringify(stats.violations));
  t.is(stats.violationCount, 5, "nothing else: no repeated cookie, no retry");
  t.is(stats.autoAnswered, 5);
  t.is(stats.answeredSuccess, 8);
  t.is(stats.outstanding, 0);
  t.deepEqual(audit.problems(), []);
});
