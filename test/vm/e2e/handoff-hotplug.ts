// The handoff-hotplug scenario of e2e-two-vms.test.ts (issue 14): fault
// queues handed to the relay at runtime by a VMM on VM-A's real kernel, and
// devices plugged and unplugged while the agent in VM-B answers. The relay
// runs under --keeper from start to end and starts with no fault source. A
// VMM stand-in (vmm-stand-in.ts) plugs a mock device on a fault queue and
// hands it over with the C client; a second device on a second queue
// follows; the first is unplugged with groups in flight through the detach
// handshake; the VMM exits without detaching the second (the relay must
// notice and let go, or the kernel never answers its groups); a second VMM
// (the VM restarted) hands a queue over, the relay is SIGKILLed with groups
// in flight, and the keeper's restarted relay sweeps and reads that queue.
// The mock device ignores answers, and a repeat's EINVAL follows the
// kernel's own answers too, so exactly-once is proven from the kernel's
// side: its calls of iopf_group_response() (kernel-tally.ts) match the
// groups raised at every step, and INVALID written to every cookie up to a
// queue's peak, once the relay let go of it, is refused for each.
import { readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { constants } from "../../../src/kernel/uapi-structs.js";
import type { RelayStatus } from "../../../src/relay/control/status.js";
import { startCountingResponses } from "./kernel-responses.js";
import { KernelTally } from "./kernel-tally.js";
import { RelayProcess } from "./relay-process.js";
import { waitStatus } from "./relay-status.js";
import type { Checks, Scenario } from "./scenario-runner.js";
import { DEADLINE_MS, SESSION_MS, type TwoVmContext } from "./two-vm-context.js";
import { POLICY_PASID, POLICY_RANGE, SLOW_APP_PASID } from "./vm-b-agent.js";
import type { RelayReply } from "./vmm-commands.js";
import { VmmProcess } from "./vmm-process.js";

const R = constants.IOMMU_PGFAULT_PERM_READ;
const W = constants.IOMMU_PGFAULT_PERM_WRITE;
const HANDOFF = "/tmp/handoff-hotplug.sock";
const CTL = "/tmp/handoff-hotplug.ctl";
const CONFIG = "/tmp/handoff-hotplug.json";
/** A stand-in's first command waits for node to start it under TCG. */
const VMM_START_MS = 60_000;
/** The groups a step holds in flight (VM-B's program answers them only after SLOW_APP_MS). */
const IN_FLIGHT = 3;
/** For what follows at once under TCG: answers, log lines, status. */
const WAIT_MS = 30_000;

/** The fault fds a process holds (readlink of /proc/PID/fd). */
function faultFdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:[iommufd-pgfault]";
    } catch {
      return false;
    }
  }).length;
}

function expectReply(c: Checks, what: string, reply: RelayReply, expected: Record<string, unknown>): void {
  const differs = Object.entries(expected).filter(([k, v]) => JSON.stringify(reply[k]) !== JSON.stringify(v));
  c.expect(differs.length === 0, `the relay's reply to ${what} to have ${JSON.stringify(expected)}`, reply);
}

export const handoffHotplug: Scenario<TwoVmContext> = {
  name: "handoff-hotplug",
  async run({ portPath }, c) {
    writeFileSync(CONFIG, JSON.stringify({ viommu: "virtio-iommu", devices: [], limits: { sessionGraceMs: DEADLINE_MS } }));
    const counter = startCountingResponses();
    const tally = new KernelTally(counter, c);
    const keeper = RelayProcess.start(["--keeper", "--handoff", `unix:${HANDOFF}`, "--config", CONFIG, "--control", `unix:${CTL}`,
      "--connect", `chardev:${portPath}`], null, "keeper");
    const vmms: VmmProcess[] = [];
    let keeperStopped = false;
    // Four groups: two inside the policy's range (SUCCESS), two outside (INVALID).
    const policyFaults = async (vmm: VmmProcess, devId: number): Promise<void> => {
      await vmm.vmm.call("raise", { devId, pasid: POLICY_PASID, perm: R | W, addr: POLICY_RANGE.start, count: 2 });
      await vmm.vmm.call("raise", { devId, pasid: POLICY_PASID, perm: R | W, addr: POLICY_RANGE.end + 0x10_0000, count: 2 });
      tally.raised(4);
      await tally.awaitAnswered(4, "four groups answered by VM-B's policy", WAIT_MS);
    };
    /** Groups VM-B's program holds: read, sent and unanswered. */
    const inFlight = async (vmm: VmmProcess, devId: number): Promise<RelayStatus> => {
      await vmm.vmm.call("raise", { devId, pasid: SLOW_APP_PASID, perm: R, addr: 0x50_0000, count: IN_FLIGHT });
      tally.raised(IN_FLIGHT);
      return waitStatus(CTL, `${IN_FLIGHT} groups with the agent`, (s) => s.inFlight === IN_FLIGHT, WAIT_MS);
    };
    /** Plugs a device on a queue of its own and hands it over; the relay's reply is checked. */
    const plug = async (vmm: VmmProcess, endpointId: number, name: string): Promise<{ faultId: number; devId: number }> => {
      const p = await vmm.vmm.call("plug", { endpointId, name, deadlineMs: DEADLINE_MS }, VMM_START_MS);
      expectReply(c, `${name}'s attach`, p.reply, { ok: true, queues: [{ faultId: p.faultId, devices: 1 }] });
      return p;
    };
    try {
      let s = await waitStatus(CTL, "an agent session", (st) => st.session.state === "up", SESSION_MS);
      c.expect(s.sources.length === 0, "the relay to start with no fault source", s.sources);
      tally.end("the relay started under --keeper with --handoff and no fault source", tally.refusedByKernel(s));

      const vmm1 = VmmProcess.start(HANDOFF, "vmm-1");
      vmms.push(vmm1);
      const a = await plug(vmm1, 8, "mock-a");
      await policyFaults(vmm1, a.devId);
      s = await waitStatus(CTL, "nothing in flight", (st) => st.inFlight === 0, WAIT_MS);
      tally.end(`VMM 1 (pid ${vmm1.pid}) plugged device ${a.devId} on fault queue ${a.faultId} and handed it over (C client); 4 faults`,
        tally.refusedByKernel(s), `the relay's answers by origin ${JSON.stringify(s.counters.answers)}`);

      const b = await plug(vmm1, 9, "mock-b");
      await policyFaults(vmm1, b.devId);
      s = await waitStatus(CTL, "nothing in flight", (st) => st.inFlight === 0, WAIT_MS);
      tally.end(`a second device ${b.devId} plugged later on a second queue ${b.faultId}; 4 faults`, tally.refusedByKernel(s),
        `the relay's answers by origin ${JSON.stringify(s.counters.answers)}`);

      await inFlight(vmm1, a.devId);
      c.expect(tally.answered === 0, `device ${a.devId}'s ${IN_FLIGHT} groups to be unanswered while the agent holds them`, tally.answered);
      expectReply(c, "the device's detach", await vmm1.vmm.call("handshake", { devId: a.devId, whole: false }), { ok: true, answered: IN_FLIGHT, closed: false });
      const byRelay = tally.answered;
      await vmm1.vmm.call("unplug", { devId: a.devId });
      const byDetach = tally.answered - byRelay;
      c.expect(byRelay === IN_FLIGHT && byDetach === 0, `the relay to answer the ${IN_FLIGHT} groups before its reply, leaving the VMM's detach none`, { byRelay, byDetach });
      expectReply(c, "the queue's detach", await vmm1.vmm.call("handshake", { devId: a.devId, whole: true }), { ok: true, answered: 0, closed: true });
      const passA = await vmm1.vmm.call("close-queue", { devId: a.devId });
      c.expect(passA.accepted === 0 && passA.refused === passA.peak && passA.other.length === 0, `INVALID to every cookie 1..${passA.peak} of queue ${a.faultId} refused (none waiting)`, passA);
      s = await waitStatus(CTL, "queue a gone", (st) => st.sources.length === 1 && st.inFlight === 0, WAIT_MS);
      tally.end(`device ${a.devId} unplugged with ${IN_FLIGHT} groups in flight: detach handshake (the relay answered ${byRelay}), then the VMM's detach (the kernel answered ${byDetach}); queue ${a.faultId} detached and closed`,
        tally.refusedByKernel(s) + passA.refused, `INVALID to cookies 1..${passA.peak} of queue ${a.faultId}: ${passA.refused} refused, ${passA.accepted} accepted`);

      s = await inFlight(vmm1, b.devId);
      const relayPid = s.pid;
      const mark = keeper.records.length;
      c.note(`VMM 1 exits with device ${b.devId} attached and ${IN_FLIGHT} of its groups in flight: ${await vmm1.exit()}`);
      const letGo = await keeper.waitFor("the relay letting go of the dead VMM's queue", (r) => r.msg.startsWith("let go of a fault queue of a VMM that exited"), WAIT_MS, mark);
      await keeper.waitFor("the keeper closing its copies", (r) => r.msg.startsWith("the VMM exited: the keeper closed"), WAIT_MS, mark);
      await tally.awaitAnswered(IN_FLIGHT, "the kernel's own INVALID answers once nobody holds the dead VMM's iommufd", WAIT_MS);
      s = await waitStatus(CTL, "no fault source and nothing in flight", (st) => st.sources.length === 0 && st.inFlight === 0, WAIT_MS);
      c.expect(letGo.dropped === IN_FLIGHT && letGo.pid === vmm1.pid, `the relay to drop the ${IN_FLIGHT} groups it held of VMM 1's (pid ${vmm1.pid}) queue without answering them`, letGo);
      const held = { keeper: faultFdsOf(keeper.pid), relay: faultFdsOf(relayPid) };
      c.expect(held.keeper === 0 && held.relay === 0, "neither the keeper nor the relay to hold a fault fd once the VMM is gone", held);
      // No INVALID pass here: queue b's fault object went with VMM 1's iommufd, and no fd of it is left.
      tally.end(`VMM 1 exited without detaching device ${b.devId}: the relay dropped its ${String(letGo.dropped)} groups and let go (fault fds held: keeper ${held.keeper}, relay ${held.relay}); the kernel answered them as it freed VMM 1's iommufd`,
        tally.refusedByKernel(s));

      const vmm2 = VmmProcess.start(HANDOFF, "vmm-2");
      vmms.push(vmm2);
      const z = await plug(vmm2, 10, "mock-z");
      await policyFaults(vmm2, z.devId);
      s = await waitStatus(CTL, "nothing in flight", (st) => st.inFlight === 0, WAIT_MS);
      tally.end(`VMM 2 (pid ${vmm2.pid}, the VM restarted) plugged device ${z.devId} on queue ${z.faultId} and handed it over; 4 faults`, tally.refusedByKernel(s));

      s = await inFlight(vmm2, z.devId);
      const killed = s.pid;
      const mark2 = keeper.records.length;
      process.kill(killed, "SIGKILL");
      const second = await keeper.waitFor(`a second "relay started"`, (r) => r.msg === "relay started" && r.pid !== killed, WAIT_MS, mark2);
      const swept = await keeper.waitFor("the new relay's sweep", (r) => r.msg.startsWith("answered SUCCESS to the groups a previous reader"), SESSION_MS, keeper.records.indexOf(second));
      c.expect(swept.answered === IN_FLIGHT && String(swept.source).includes(`handoff fault ${z.faultId}`), `the new relay's sweep of queue ${z.faultId} to answer the ${IN_FLIGHT} groups the dead one held`, swept);
      await tally.awaitAnswered(IN_FLIGHT, "the sweep's answers", WAIT_MS);
      tally.end(`relay pid ${killed} SIGKILLed with ${IN_FLIGHT} groups in flight; the keeper started pid ${String(second.pid)} and handed queue ${z.faultId} over again; its sweep answered ${String(swept.answered)}`, 0);

      s = await waitStatus(CTL, "the new relay's session", (st) => st.pid !== killed && st.session.state === "up", SESSION_MS);
      await policyFaults(vmm2, z.devId);
      s = await waitStatus(CTL, "nothing in flight", (st) => st.inFlight === 0 && st.counters.answered === 4, WAIT_MS);
      c.expect(JSON.stringify(s.counters.answers) === JSON.stringify({ guest: { success: 2, invalid: 2 } }), "the restarted relay to carry VM-B's answers", s.counters.answers);
      tally.end(`the restarted relay reads the handed-off queue ${z.faultId}: 4 faults`, tally.refusedByKernel(s), `its answers by origin ${JSON.stringify(s.counters.answers)}`);

      expectReply(c, "the device's detach", await vmm2.vmm.call("handshake", { devId: z.devId, whole: false }), { ok: true, answered: 0, closed: false });
      await vmm2.vmm.call("unplug", { devId: z.devId });
      expectReply(c, "the queue's detach", await vmm2.vmm.call("handshake", { devId: z.devId, whole: true }), { ok: true, answered: 0, closed: true });
      const passZ = await vmm2.vmm.call("close-queue", { devId: z.devId });
      c.expect(passZ.accepted === 0 && passZ.refused === passZ.peak && passZ.other.length === 0, `INVALID to every cookie 1..${passZ.peak} of queue ${z.faultId} refused (none waiting)`, passZ);
      s = await waitStatus(CTL, "no fault source", (st) => st.sources.length === 0 && st.inFlight === 0, WAIT_MS);
      c.note(`VMM 2 exits: ${await vmm2.exit()}`);
      tally.end(`VMM 2 unplugged device ${z.devId} (handshake, detach), closed queue ${z.faultId} and exited`, tally.refusedByKernel(s) + passZ.refused,
        `INVALID to cookies 1..${passZ.peak} of queue ${z.faultId}: ${passZ.refused} refused, ${passZ.accepted} accepted`);

      await keeper.stop();
      keeperStopped = true;
      tally.end("the keeper stopped (SIGTERM)", 0);
      const raised = tally.steps.reduce((n, st) => n + st.raised, 0);
      const answered = tally.steps.reduce((n, st) => n + st.answered, 0);
      c.note(`in all: raised ${raised}, answered ${answered} (the kernel's calls of iopf_group_response())`);
      c.expect(answered === raised, "the kernel to answer every group raised exactly once", { raised, answered });
    } finally {
      counter.stop();
      for (const v of vmms) await v.exit();
      if (!keeperStopped) await keeper.stop().catch(() => undefined);
    }
  },
};
