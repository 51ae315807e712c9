// The scenarios of e2e-guest.test.ts: the relay on the host (kernel
// emulator), the agent and a test program in the guest. Each raises its own
// faults, breaks one thing, and checks that every group got exactly one
// answer, and the right one where the guest could give it.
import { setTimeout as sleep } from "node:timers/promises";
import { KernelCode } from "../../../src/fault/fault-group.js";
import { constants } from "../../../src/kernel/uapi-structs.js";
import type { ControlClient } from "./control-channel.js";
import type { AppInfo, GuestCommands } from "./guest-commands.js";
import type { Fault, HostRelay } from "./host-relay.js";
import type { Checks, Scenario } from "./scenario-runner.js";
import type { SocketProxy } from "./socket-proxy.js";

const PAGE = 4096;
const R = constants.IOMMU_PGFAULT_PERM_READ;
const W = constants.IOMMU_PGFAULT_PERM_WRITE;

/** Device ids in the relay's config: one deadline long enough for any guest round trip under TCG, one short. */
export const PATIENT_DEV = 1;
export const PATIENT_DEADLINE_MS = 30_000;
export const IMPATIENT_DEV = 2;
export const IMPATIENT_DEADLINE_MS = 500;
/** Bound to the test program's address space (procmem). */
export const PROCMEM_PASID = 5;
/** Answered SUCCESS by a guest program after SLOW_APP_MS, so that groups stay in flight a while. */
export const SLOW_APP_PASID = 6;
export const SLOW_APP_MS = 1500;
/** An agent told to stop exits well within this, even under TCG. */
const AGENT_EXIT_MS = 5000;
/** Registered by nobody: the agent's default handler answers INVALID. */
const NOBODY_PASID = 77;

export interface GuestRunContext {
  relay: HostRelay;
  guest: ControlClient<GuestCommands>;
  proxy: SocketProxy;
  app: AppInfo;
  /** Starts the agent (with exe, the single executable) and makes the registrations above (again, after a restart). */
  startAgent(exe?: boolean): Promise<GuestCommands["agent.start"]["result"]>;
}

interface Snapshot {
  stats: { violations: number; delivered: number };
  sent: number;
  sessionsDown: number;
  strays: number;
  origins: Record<string, { success: number; invalid: number }>;
}

async function snapshot(relay: HostRelay): Promise<Snapshot> {
  const s = await relay.emulatorStats();
  return {
    stats: { violations: s.violationCount, delivered: s.deliveredGroups },
    sent: relay.metrics.groupsSent,
    sessionsDown: relay.metrics.sessionsDown,
    strays: relay.strays.length,
    origins: JSON.parse(JSON.stringify(Object.fromEntries(relay.metrics.answers))) as Snapshot["origins"],
  };
}

/** Answers by origin since `before`, e.g. {"guest": {"success": 8, "invalid": 0}}. */
function originsSince(relay: HostRelay, before: Snapshot): Record<string, { success: number; invalid: number }> {
  const out: Record<string, { success: number; invalid: number }> = {};
  for (const [origin, now] of relay.metrics.answers) {
    const was = before.origins[origin] ?? { success: 0, invalid: 0 };
    if (now.success !== was.success || now.invalid !== was.invalid) out[origin] = { success: now.success - was.success, invalid: now.invalid - was.invalid };
  }
  return out;
}

/** The checks every scenario ends with: each group answered once, with `code` when given, nothing refused or stray. */
async function expectEachAnsweredOnce(c: Checks, relay: HostRelay, keys: string[], before: Snapshot, code?: Record<string, number>): Promise<void> {
  for (const k of keys) {
    const written = relay.written(k);
    c.expect(written.length === 1, `one answer written for group ${k}`, written);
    const want = code?.[k];
    if (want !== undefined) c.expect(written[0] === want, `group ${k} answered ${want === KernelCode.SUCCESS ? "SUCCESS (0)" : "INVALID (1)"}`, written[0]);
  }
  const stats = await relay.emulatorStats();
  c.expect(stats.violationCount === before.stats.violations, "no new emulator violations (unknown, repeated or unanswered cookies)", stats.violations.slice(-5));
  c.expect(stats.outstanding === 0, "nothing outstanding in the emulator", stats.outstanding);
  c.expect(relay.strays.length === before.strays, "no answer for a cookie that was not waiting", relay.strays.slice(before.strays));
  c.note(`answers by origin: ${JSON.stringify(originsSince(relay, before))}; page requests sent: ${relay.metrics.groupsSent - before.sent}`);
}

const slowAppFaults = (base: number, n: number, dev = PATIENT_DEV): Fault[] =>
  Array.from({ length: n }, (_, i) => ({ dev, pasid: SLOW_APP_PASID, addr: base + i * PAGE, perm: R }));

const procmemVerdicts: Scenario<GuestRunContext> = {
  name: "procmem-verdicts",
  async run({ relay, guest, app }, c) {
    const before = await snapshot(relay);
    const rwAbsent = await guest.call("pagemap", { pid: app.pid, addr: app.rw, pages: app.rwPages });
    c.expect(rwAbsent.every((p) => !p), "the test program's pages absent before any fault", rwAbsent);
    const ok = KernelCode.SUCCESS;
    const bad = KernelCode.INVALID;
    const f = (addr: number, perm: number, expect: number, extra: Partial<Fault> = {}): Fault & { expect: number } =>
      ({ dev: PATIENT_DEV, pasid: PROCMEM_PASID, addr, perm, expect, ...extra });
    const faults = [
      ...[0, 1, 2, 3].map((i) => f(app.rw + i * PAGE, R, ok)),
      ...[4, 5, 6, 7].map((i) => f(app.rw + i * PAGE, R | W, ok)),
      f(app.rw + 8 * PAGE, R, ok, { records: 4 }),
      f(app.ro, R | W, bad),
      f(app.ro + PAGE, R, ok),
      f(0x2000, R, bad),
      f(app.rw + 15 * PAGE, R, bad, { pasid: NOBODY_PASID }),
    ];
    const keys = await relay.raise(faults);
    await relay.waitAnswered(keys, 20_000);
    await expectEachAnsweredOnce(c, relay, keys, before, Object.fromEntries(keys.map((k, i) => [k, faults[i]!.expect])));
    const rw = await guest.call("pagemap", { pid: app.pid, addr: app.rw, pages: app.rwPages });
    c.expect(rw.slice(0, 12).every((p) => p), "read-write pages 0-11 present after their SUCCESS", rw);
    c.expect(rw.slice(12).every((p) => !p), "read-write pages 12-15 still absent (no fault for them, or INVALID)", rw);
    const ro = await guest.call("pagemap", { pid: app.pid, addr: app.ro, pages: app.roPages });
    c.expect(!ro[0] && ro[1] === true, "read-only page 0 absent (write refused), page 1 present (read served)", ro);
  },
};

/** The agent goes away with groups in hand (SIGKILL, or SIGTERM which says goodbye and closes the port) and comes back. */
function agentGone(name: string, signal: NodeJS.Signals, base: number): Scenario<GuestRunContext> {
  return {
    name,
    async run(ctx, c) {
      const { relay, guest } = ctx;
      const before = await snapshot(relay);
      const keys = await relay.raise(slowAppFaults(base, 8));
      await relay.waitSent(before.sent, 8, 10_000);
      const { exit, forced } = await guest.call("agent.signal", { signal, waitMs: AGENT_EXIT_MS });
      c.expect(!forced, `the agent to exit within ${AGENT_EXIT_MS} ms of ${signal} (it was SIGKILLed instead)`, exit);
      // SIGTERM: the relay's reply to the goodbye ends the read sleeping on the port, so the agent exits cleanly.
      if (signal === "SIGTERM") c.expect(exit === "code 0", "the agent to exit with code 0 after SIGTERM", exit);
      c.note(`agent ended with ${exit} while holding the groups`);
      await ctx.startAgent();
      await relay.waitAnswered(keys, PATIENT_DEADLINE_MS + 15_000);
      // The deadline is far off, so the new agent gets every group again and
      // answers it. Which answer depends on whether the guest program had
      // registered again by then, which is the guest's business.
      await expectEachAnsweredOnce(c, relay, keys, before);
      const byGuest = originsSince(relay, before)["guest"];
      c.expect((byGuest?.success ?? 0) + (byGuest?.invalid ?? 0) === 8, "all 8 answered by the new agent (origin guest)", originsSince(relay, before));
      c.expect(relay.metrics.groupsSent - before.sent >= 16, "every group sent again to the new agent", relay.metrics.groupsSent - before.sent);
      c.expect(relay.metrics.sessionsDown > before.sessionsDown, "the relay ended the old session", relay.metrics.sessionsDown - before.sessionsDown);
    },
  };
}

const guestNeverAnswers: Scenario<GuestRunContext> = {
  name: "guest-never-answers",
  async run({ relay, guest }, c) {
    const before = await snapshot(relay);
    await guest.call("agent.signal", { signal: "SIGSTOP" });
    const faults = Array.from({ length: 6 }, (_, i) => ({ dev: IMPATIENT_DEV, pasid: NOBODY_PASID, addr: 0x7300_0000 + i * PAGE, perm: R }));
    const keys = await relay.raise(faults);
    const started = Date.now();
    await relay.waitAnswered(keys, 10_000);
    c.note(`answered ${Date.now() - started} ms after raising (deadline ${IMPATIENT_DEADLINE_MS} ms)`);
    const deadline = originsSince(relay, before)["deadline"];
    c.expect(deadline?.invalid === 6, "all 6 answered INVALID by the relay's deadline", originsSince(relay, before));
    await guest.call("agent.signal", { signal: "SIGCONT" });
    // The agent now reads the stale requests and answers them late; one more
    // group after them comes back only once those are through.
    await relay.waitSession(15_000);
    const [probe] = await relay.raise([{ dev: PATIENT_DEV, pasid: NOBODY_PASID, addr: 0x7310_0000, perm: R }]);
    await relay.waitAnswered([probe!], 15_000);
    await expectEachAnsweredOnce(c, relay, [...keys, probe!], before, { [probe!]: KernelCode.INVALID });
    c.note(`guest answers dropped by the relay: ${JSON.stringify(Object.fromEntries(relay.metrics.dropped))}`);
  },
};

const hostSocketDrop: Scenario<GuestRunContext> = {
  name: "host-socket-drop",
  async run({ relay, proxy }, c) {
    const before = await snapshot(relay);
    const connections = proxy.connections;
    const keys = await relay.raise(slowAppFaults(0x7400_0000, 6));
    await relay.waitSent(before.sent, 6, 10_000);
    proxy.drop();
    await sleep(1000);
    proxy.mend();
    await relay.waitAnswered(keys, 25_000);
    await expectEachAnsweredOnce(c, relay, keys, before, Object.fromEntries(keys.map((k) => [k, KernelCode.SUCCESS])));
    c.expect(proxy.connections > connections, "the relay connected again", proxy.connections - connections);
    c.expect(relay.metrics.groupsSent - before.sent >= 12, "every group sent again on the new connection", relay.metrics.groupsSent - before.sent);
  },
};

/**
 * The agent as a single executable (dist/iopf-agent, node's SEA) in place
 * of the bundle under the guest's node: started with a PATH that leads to no
 * node, it must not be node running a script, and must answer as the bundle
 * does. The bundle comes back afterwards for the other scenarios.
 */
const agentExe: Scenario<GuestRunContext> = {
  name: "agent-exe",
  async run(ctx, c) {
    const { relay, guest, app } = ctx;
    const { exit } = await guest.call("agent.signal", { signal: "SIGTERM", waitMs: AGENT_EXIT_MS });
    c.expect(exit === "code 0", "the bundled agent to exit 0 on SIGTERM before the executable takes over", exit);
    const image = await ctx.startAgent(true);
    c.expect(image.exe === "/job/iopf-agent", "the process to run /job/iopf-agent itself (its /proc/PID/exe)", image.exe);
    c.expect(!image.nodeMapped, "the guest's /usr/bin/node not mapped into the process", image.nodeMapped);
    c.expect(!image.pathHasNode, "no node on the process's PATH", image.pathHasNode);
    const before = await snapshot(relay);
    const faults: Fault[] = [
      ...slowAppFaults(0x7500_0000, 3),
      { dev: PATIENT_DEV, pasid: PROCMEM_PASID, addr: app.rw + 12 * PAGE, perm: R | W },
      // Unmapped in the test program, and an address no other scenario raises (answers are counted by dev/PASID/address).
      { dev: PATIENT_DEV, pasid: PROCMEM_PASID, addr: 0x4000, perm: R },
      { dev: PATIENT_DEV, pasid: NOBODY_PASID, addr: 0x7510_0000, perm: R },
    ];
    const want = [KernelCode.SUCCESS, KernelCode.SUCCESS, KernelCode.SUCCESS, KernelCode.SUCCESS, KernelCode.INVALID, KernelCode.INVALID];
    const keys = await relay.raise(faults);
    await relay.waitAnswered(keys, 20_000);
    await expectEachAnsweredOnce(c, relay, keys, before, Object.fromEntries(keys.map((k, i) => [k, want[i]!])));
    c.expect(originsSince(relay, before)["guest"]?.success === 4, "4 SUCCESS answered by the executable agent (origin guest)", originsSince(relay, before));
    const page = await guest.call("pagemap", { pid: app.pid, addr: app.rw + 12 * PAGE, pages: 1 });
    c.expect(page[0] === true, "the page the executable agent faulted in through procmem present", page);
    const stopped = await guest.call("agent.signal", { signal: "SIGTERM", waitMs: AGENT_EXIT_MS });
    c.expect(stopped.exit === "code 0", "the executable agent to say goodbye and exit 0 on SIGTERM", stopped.exit);
    await ctx.startAgent();
  },
};

export const guestScenarios: Scenario<GuestRunContext>[] = [
  procmemVerdicts,
  agentGone("agent-killed-mid-batch", "SIGKILL", 0x7100_0000),
  agentGone("agent-closes-and-reopens-port", "SIGTERM", 0x7200_0000),
  guestNeverAnswers,
  hostSocketDrop,
  agentExe,
];
