// The scenarios of e2e-two-vms.test.ts, run by VM-A's driver: faults raised
// in VM-A's real kernel (IOMMUFD_TEST mock devices) are read by the
// iopf-relay command, answered by the agent in VM-B across two QEMUs' wired
// virtio-serial ports, and written back to VM-A's kernel. The mock device
// ignores what the answer says; what is checked is that the relay wrote each
// answer once and the kernel took it: the relay's counters (its control
// server's status), and the kernel refusing (EINVAL) one more answer for
// every cookie once the relay has stopped. handoff-hotplug.ts has the
// scenario of fault queues handed over at runtime.
import { writeFileSync } from "node:fs";
import { constants } from "../../../src/kernel/uapi-structs.js";
import { kernelScenarioSource } from "../../integration/kernel-scenario.js";
import type { RelayStatus } from "../../../src/relay/control/status.js";
import { answerAgain, readOneCookie } from "./answer-probes.js";
import { handoffHotplug } from "./handoff-hotplug.js";
import { CHILD_FAULT_FD, RelayProcess } from "./relay-process.js";
import { waitStatus } from "./relay-status.js";
import type { Checks, Scenario } from "./scenario-runner.js";
import { DEADLINE_MS, SESSION_MS, type TwoVmContext } from "./two-vm-context.js";
import { POLICY_PASID, SLOW_APP_PASID } from "./vm-b-agent.js";

const R = constants.IOMMU_PGFAULT_PERM_READ;
const W = constants.IOMMU_PGFAULT_PERM_WRITE;

/** The relay's config for these mock devices, written to a file. */
function writeConfig(path: string, devIds: number[]): void {
  const devices = devIds.map((devId, i) => ({ devId, endpointId: 8 + i, name: `mock${i}`, deadlineMs: DEADLINE_MS }));
  writeFileSync(path, JSON.stringify({ viommu: "virtio-iommu", devices, limits: { sessionGraceMs: DEADLINE_MS } }));
}

/** The checks both scenarios end with: the relay's counters, then the kernel (after the relay stopped). */
function expectAnsweredOnce(c: Checks, status: RelayStatus, expected: RelayStatus["counters"]["answers"]): void {
  c.note(`relay counters: ${JSON.stringify(status.counters)}`);
  c.expect(JSON.stringify(status.counters.answers) === JSON.stringify(expected), `the relay's answers by origin to be ${JSON.stringify(expected)}`, status.counters.answers);
  c.expect(status.counters.refused === 0, "the kernel to refuse none of the relay's answers (refused 0)", status.counters.refused);
}

function expectKernelHasAll(c: Checks, faultFd: number, raised: number): void {
  const again = answerAgain(faultFd, Array.from({ length: raised }, (_, i) => i + 1));
  c.expect(again.every((r) => r === "EINVAL"), `EINVAL for one more answer to each of cookies 1..${raised} (all answered)`, again);
}

const realPath: Scenario<TwoVmContext> = {
  name: "real-path",
  async run({ portPath }, c) {
    const kernel = kernelScenarioSource();
    const { fds, devIds } = await kernel.setup();
    const faultFd = fds[0]!;
    try {
      writeConfig("/tmp/real-path.json", devIds.slice(0, 2));
      const ctl = "/tmp/real-path.ctl";
      const relay = RelayProcess.start(["--fault-fd", String(CHILD_FAULT_FD), "--config", "/tmp/real-path.json", "--control", `unix:${ctl}`, "--connect", `chardev:${portPath}`], faultFd, "relay");
      await waitStatus(ctl, "an agent session", (s) => s.session.state === "up", SESSION_MS);
      // Four inside the policy's range (SUCCESS), four outside (INVALID), over both devices.
      const addrs = [0x10_0000, 0x10_1000, 0x1f_f000, 0x15_0000, 0x30_0000, 0x40_0000, 0x0f_f000, 0x20_0000];
      for (const [i, addr] of addrs.entries()) await kernel.raise(i % 2, { pasid: POLICY_PASID, grpid: i + 1, perm: R | W, addr });
      const status = await waitStatus(ctl, "8 groups read and answered", (s) => s.counters.groups === 8 && s.counters.answered === 8 && s.inFlight === 0, 30_000);
      expectAnsweredOnce(c, status, { guest: { success: 4, invalid: 4 } });
      await relay.stop();
      expectKernelHasAll(c, faultFd, 8);
      // The probe tells the two cases apart: a cookie read here and not answered takes one answer, then refuses the next.
      await kernel.raise(0, { pasid: POLICY_PASID, grpid: 9, perm: R, addr: 0x10_0000 });
      const cookie = readOneCookie(faultFd);
      c.expect(cookie !== null, "to read the ninth fault from the fault fd myself", cookie);
      if (cookie !== null) {
        const twice = answerAgain(faultFd, [cookie, cookie]);
        c.expect(twice[0] === "taken" && twice[1] === "EINVAL", "a cookie nobody answered to take one answer and refuse the second", twice);
      }
    } finally {
      await kernel.teardown();
    }
  },
};

const relayKilledKeeperRestarts: Scenario<TwoVmContext> = {
  name: "relay-killed-keeper-restarts",
  async run({ portPath }, c) {
    const kernel = kernelScenarioSource();
    const { fds, devIds } = await kernel.setup();
    const faultFd = fds[0]!;
    try {
      writeConfig("/tmp/keeper.json", devIds.slice(0, 2));
      const ctl = "/tmp/keeper.ctl";
      const keeper = RelayProcess.start(["--keeper", "--fault-fd", String(CHILD_FAULT_FD), "--config", "/tmp/keeper.json",
        "--control", `unix:${ctl}`, "--connect", `chardev:${portPath}`], faultFd, "keeper");
      const first = await waitStatus(ctl, "an agent session", (s) => s.session.state === "up", SESSION_MS);
      for (let i = 0; i < 6; i++) await kernel.raise(i % 2, { pasid: SLOW_APP_PASID, grpid: i + 1, perm: R, addr: 0x50_0000 + i * 0x1000 });
      // Read, and in the hands of VM-B's program, which answers only after a while.
      await waitStatus(ctl, "6 groups sent and unanswered", (s) => s.counters.sent >= 6 && s.inFlight === 6, 20_000);
      const mark = keeper.records.length;
      process.kill(first.pid, "SIGKILL");
      const second = await keeper.waitFor(`a second "relay started"`, (r) => r.msg === "relay started" && r.pid !== first.pid, 20_000, mark);
      const swept = await keeper.waitFor("the new relay's sweep", (r) => String(r.msg).startsWith("answered SUCCESS to the groups a previous reader"), SESSION_MS, keeper.records.indexOf(second));
      c.note(`relay pid ${first.pid} SIGKILLed; the keeper started pid ${String(second.pid)}; its sweep: ${JSON.stringify({ cookies: swept.cookies, answered: swept.answered })}`);
      c.expect(swept.answered === 6, "the new relay's sweep to answer the 6 groups the dead one held (SUCCESS: each device retries)", swept.answered);
      const status = await waitStatus(ctl, "the new relay's session", (s) => s.pid !== first.pid && s.session.state === "up" && s.inFlight === 0, 40_000);
      // The dead relay's groups were answered by the sweep, not by the new relay's guest path.
      expectAnsweredOnce(c, status, {});
      await keeper.stop();
      expectKernelHasAll(c, faultFd, 6);
    } finally {
      await kernel.teardown();
    }
  },
};

export const twoVmScenarios: Scenario<TwoVmContext>[] = [realPath, relayKilledKeeperRestarts, handoffHotplug];
