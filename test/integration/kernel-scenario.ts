// One fault scenario through the project's own kernel layer (IommuFd,
// FaultPump, FaultQueue), written once and run against two sources: the
// kernel emulator (test/integration/emulator-scenario.test.ts) and the real
// kernel's IOMMUFD_TEST mock devices inside a VM (test/vm/kernel-scenario.test.ts,
// through test/vm/kernel-scenario-guest.ts). It returns a plain report, so the
// guest can print it as JSON for the host test to assert on.
import { readdirSync, readlinkSync } from "node:fs";
import { FaultPump, type FdKind, type PumpEvent } from "../../src/kernel/fault-pump.js";
import { IommuFd } from "../../src/kernel/iommufd.js";
import * as libc from "../../src/kernel/libc.js";
import { destroyMock, mockOnFaultQueue, moveOffFaultQueue, type FaultingMock } from "../../src/kernel/selftest-device.js";
import { constants, type FaultAnswer, type FaultRecord } from "../../src/kernel/uapi-structs.js";
import { KernelEmulator, type EmulatorViolation } from "../../src/fault/emulator/kernel-emulator.js";

export interface RaisedFault {
  pasid: number;
  grpid: number;
  perm: number;
  addr: number;
}

export interface ScenarioSource {
  readonly name: string;
  /** How its fds read: the kernel's fault fd, or the emulator's stream. */
  readonly kind: FdKind;
  /** Three devices over two fault fds: devices 0 and 1 on fds[0], device 2 on fds[1]. */
  setup(): Promise<{ fds: number[]; devIds: number[] }>;
  /** One single-record group (TRIGGER_IOPF always sets LAST_PAGE). */
  raise(device: number, f: RaisedFault): Promise<void>;
  /** Detaches the device; the source answers its waiting groups INVALID itself. */
  detach(device: number): Promise<void>;
  /**
   * What the source recorded instead of failing a write (the emulator: a
   * socket write cannot fail with EINVAL), or null when bad answers fail the
   * write itself (the kernel).
   */
  recordedViolations(): Promise<EmulatorViolation[] | null>;
  teardown(): Promise<void>;
}

export interface ScenarioReport {
  source: string;
  failures: string[];
  log: string[];
}

const { IOMMU_PGFAULT_FLAGS_LAST_PAGE: LAST, IOMMU_PGFAULT_FLAGS_PASID_VALID: PASID_VALID } = constants;
const R = constants.IOMMU_PGFAULT_PERM_READ;
const W = constants.IOMMU_PGFAULT_PERM_WRITE;

/** "fd -> what it is", for every open fd still there once listed (the listing's own fd is gone by then). */
const openFds = (): string[] => readdirSync("/proc/self/fd").flatMap((fd) => {
  try {
    return [`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`];
  } catch {
    return [];
  }
}).sort();

async function collect(it: AsyncIterator<PumpEvent>, count: number, ms: number): Promise<{ fd: number; record: FaultRecord }[]> {
  const out: { fd: number; record: FaultRecord }[] = [];
  const deadline = Date.now() + ms;
  while (out.length < count) {
    const left = deadline - Date.now();
    const next = await Promise.race([it.next(), new Promise<null>((r) => setTimeout(() => r(null), Math.max(left, 0)))]);
    if (next === null || next.done) break;
    const ev = next.value;
    if (ev.type !== "records") throw new Error(`unexpected pump event: ${JSON.stringify(ev)}`);
    out.push(...ev.records.map((record) => ({ fd: ev.fd, record })));
  }
  return out;
}

export async function runFaultScenario(src: ScenarioSource): Promise<ScenarioReport> {
  const failures: string[] = [];
  const log: string[] = [];
  const check = (ok: boolean, what: string, detail?: unknown): void => {
    if (!ok) failures.push(detail === undefined ? what : `${what}: ${JSON.stringify(detail)}`);
  };

  // The first worker thread to load ffi-rs leaves one /dev/null fd open for
  // the life of the process (measured: once, never again on later starts), so
  // one pump runs before the count: the check then sees only the scenario's fds.
  const warmUp = new FaultPump({ maxHeld: 1000 });
  await warmUp.start();
  await warmUp.stop();
  const fdsBefore = openFds();
  const { fds, devIds } = await src.setup();
  const fdOf = (device: number): number => fds[device < 2 ? 0 : 1]!;
  const pump = new FaultPump({ maxHeld: 1000 });
  await pump.start();
  for (const fd of fds) pump.add(fd, src.kind, { sweep: false });
  pump.setLimit(100);
  const it = pump[Symbol.asyncIterator]();

  // Four faults per device over PASIDs 0, 1 and 7 and distinct groups.
  const raised = new Map<string, RaisedFault & { device: number }>();
  for (let device = 0; device < 3; device++) {
    for (let k = 0; k < 4; k++) {
      const f = { pasid: [0, 1, 7, 1][k]!, grpid: k + 1, perm: k % 2 ? R : R | W, addr: (device + 1) * 0x10_0000 + k * 0x1000 };
      await src.raise(device, f);
      raised.set(`${devIds[device]}/${f.grpid}`, { ...f, device });
    }
  }
  const got = await collect(it, 12, 5000);
  log.push(`read ${got.length} records: ${JSON.stringify(got.map((g) => [g.fd, g.record.devId, g.record.grpid, g.record.cookie]))}`);
  check(got.length === 12, "expected 12 records through the pump", got.length);
  for (const { fd, record } of got) {
    const f = raised.get(`${record.devId}/${record.grpid}`);
    if (!f) {
      check(false, "a record nobody raised", record);
      continue;
    }
    check(fd === fdOf(f.device), "record on the fault fd of its device", { fd, record });
    check(record.pasid === f.pasid && record.perm === f.perm && record.addr === f.addr, "record fields as raised", { record, f });
    check(record.flags === (LAST | (f.pasid ? PASID_VALID : 0)), "flags LAST_PAGE, PASID_VALID iff pasid != 0", record);
  }
  for (const fd of fds) {
    const cookies = got.filter((g) => g.fd === fd).map((g) => g.record.cookie).sort((a, b) => a - b);
    check(cookies.every((c, i) => c === i + 1), `cookies on fd ${fd} are 1..n, each once`, cookies);
  }

  // Devices 0 and 1 answered in one batched write.
  const answerOf = (g: { record: FaultRecord }): FaultAnswer => ({ cookie: g.record.cookie, code: g.record.grpid % 2 ? 0 : 1 });
  const first = got.filter((g) => g.fd === fds[0]).map(answerOf);
  const batch = pump.answer(fds[0]!, first);
  check(batch.written === 8 && batch.rejected.length === 0 && batch.queued === 0, "8 answers taken in one batch", batch);

  // The same answer again.
  const repeated = pump.answer(fds[0]!, [first[0]!]);

  // Detach device 2 with its four groups waiting; then answer them anyway.
  await src.detach(2);
  const late = got.filter((g) => g.fd === fds[1]).map(answerOf);
  const afterDetach = pump.answer(fds[1]!, late);

  const violations = await src.recordedViolations();
  log.push(`repeated: ${JSON.stringify(repeated)}; after detach: ${JSON.stringify(afterDetach)}; violations: ${JSON.stringify(violations)}`);
  if (violations === null) {
    check(repeated.rejected.length === 1 && repeated.rejected[0]!.error.code === "EINVAL", "a repeated answer fails with EINVAL", repeated.rejected);
    check(afterDetach.rejected.length === 4 && afterDetach.rejected.every((r) => r.error.code === "EINVAL"),
      "answers for groups the detach answered fail with EINVAL", afterDetach.rejected.map((r) => r.error.code));
  } else {
    check(JSON.stringify(violations) === JSON.stringify([
      { kind: "repeated-cookie", cookie: first[0]!.cookie, code: first[0]!.code },
      ...late.map((a) => ({ kind: "unknown-cookie", cookie: a.cookie, code: a.code, detail: "answered by detach" })),
    ]), "the emulator recorded one repeated and four unknown cookies", violations);
  }

  await pump.stop();
  const rest = await collect(it, 1, 1000);
  check(rest.length === 0, "nothing else was read", rest);
  await src.teardown();
  const fdsAfter = openFds();
  check(JSON.stringify(fdsAfter) === JSON.stringify(fdsBefore), "no fd left open", { fdsBefore, fdsAfter });
  return { source: src.name, failures, log };
}

/**
 * The kernel emulator: one emulator process per fault fd. Its stream front
 * end records the answers the kernel would refuse (a socket write cannot
 * fail with EINVAL); its kernel-exact front end refuses them as the kernel does.
 */
export function emulatorScenarioSource(mode: "stream" | "kernel-exact"): ScenarioSource {
  let emus: KernelEmulator[] = [];
  const devIds = [1, 2, 3];
  const emuOf = (device: number): KernelEmulator => emus[device < 2 ? 0 : 1]!;
  return {
    name: `emulator (${mode})`,
    kind: mode === "stream" ? "stream" : "kernel",
    async setup() {
      emus = [await KernelEmulator.start({ mode }), await KernelEmulator.start({ mode })];
      return { fds: emus.map((e) => e.faultFd), devIds };
    },
    raise: (device, f) => emuOf(device).raise({ dev: devIds[device]!, ...f, records: 1 }),
    async detach(device) {
      await emuOf(device).detach(devIds[device]!);
    },
    async recordedViolations() {
      if (mode === "kernel-exact") return null;
      return (await Promise.all(emus.map((e) => e.stats()))).flatMap((s) => s.violations);
    },
    async teardown() {
      for (const e of emus) {
        await e.quit();
        await e.close();
      }
    },
  };
}

interface KernelDevice extends FaultingMock {
  onIopf: boolean;
}

/** The real kernel: IOMMUFD_TEST mock devices, allocated as the kernel selftest does. */
export function kernelScenarioSource(): ScenarioSource {
  let ictx: IommuFd | undefined;
  let ioas = 0;
  let faults: { faultId: number; faultFd: number }[] = [];
  let devices: KernelDevice[] = [];
  return {
    name: "kernel",
    kind: "kernel",
    async setup() {
      const ctx = IommuFd.open();
      ictx = ctx;
      ioas = ctx.ioasAlloc();
      faults = [ctx.faultQueueAlloc(), ctx.faultQueueAlloc()];
      devices = [0, 1, 2].map((i) => ({ ...mockOnFaultQueue(ctx, ioas, faults[i < 2 ? 0 : 1]!.faultId), onIopf: true }));
      return { fds: faults.map((f) => f.faultFd), devIds: devices.map((d) => d.idevId) };
    },
    async raise(device, f) {
      ictx!.triggerIopf({ idevId: devices[device]!.idevId, ...f });
    },
    async detach(device) {
      const d = devices[device]!;
      moveOffFaultQueue(ictx!, d);
      d.onIopf = false;
    },
    recordedViolations: async () => null,
    async teardown() {
      const ctx = ictx!;
      for (const d of devices) {
        if (d.onIopf) moveOffFaultQueue(ctx, d);
        destroyMock(ctx, ioas, d);
      }
      for (const f of faults) {
        libc.close(f.faultFd);
        ctx.destroy(f.faultId);
      }
      ctx.destroy(ioas);
      ctx.close();
    },
  };
}
