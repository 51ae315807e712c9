// Builds the fault sources the command line names. An inherited fd is
// checked first (an iommufd fault fd, or with --emulator-fd a kernel
// emulator's), and read only after its cookies a previous reader may have
// left are answered (the sweep, in the pump's worker). Fault queues this
// process made itself (--iommufd, the built-in emulator) were never read by
// anyone else and are not swept.
import { KernelEmulator } from "../fault/emulator/kernel-emulator.js";
import { FaultSource } from "../fault/fault-source.js";
import { FdSourceSet, FdSpec } from "../fault/sources/fd-sources.js";
import { startSyntheticLoad } from "../fault/sources/synthetic-load.js";
import { SyntheticSource } from "../fault/sources/synthetic-source.js";
import { checkEmulatorFd, checkFaultFd, FdCheck } from "../kernel/fd-kind.js";
import { IommuFd } from "../kernel/iommufd.js";
import { Logger } from "./log.js";
import { StartupError } from "./startup-error.js";

/** Above every fd number (the kernel's nr_open ceiling is 2^20), so an in-process source never shares an id with a fd. */
const SYNTHETIC_ID = 0x10_0000;

/** A source the operator named that cannot be used: one line, exit 1. */
export class SourceError extends StartupError {
  override readonly name = "SourceError";
}

export interface SourceRequest {
  /** Inherited iommufd fault fds. */
  faultFds: number[];
  /** Inherited kernel emulator fds (tests, benchmarks, a keeper's emulator). */
  emulatorFds: number[];
  iommufd: boolean;
  builtIn: string[];
  /** Groups a second raised by the built-in sources; 0 raises none. */
  rate: number;
  /** Device ids the built-in sources raise faults on. */
  devIds: number[];
  /** The most groups the relay holds; bounds what a sweep must cover. */
  maxHeld: number;
  /** Fault fds will be handed over at runtime: start the pump even with none now. */
  handoff: boolean;
}

export interface OpenedSources {
  sources: FaultSource[];
  /** The fd sources' pump, to add fds to at runtime; null when no fd is read. */
  fds: FdSourceSet | null;
  emulator: KernelEmulator | null;
  synthetic: SyntheticSource | null;
  /** Stops the built-in load and releases what the sources own; after the relay shut down. */
  release(): Promise<void>;
}

/** The demo load of the built-in sources: a long run; quit() at shutdown ends it. */
export function emulatorDemoLoad(devIds: number[], rate: number): Parameters<KernelEmulator["load"]>[0] {
  return { devices: devIds.length, devBase: Math.min(...devIds), records: 1, rate, durationMs: 24 * 3600_000, maxOutstanding: 4096, pasid: 1 };
}

function checked(flag: string, fd: number, check: (fd: number) => FdCheck): FdSpec {
  const c = check(fd);
  if (!c.ok) throw new SourceError(`${flag} ${fd}: ${c.why}; pass ${flag === "--fault-fd" ? "the VMM's fault queue fd" : "the emulator's fd"}, or see docs/operations.md`);
  return { fd, kind: c.kind, description: `${flag.slice(2)}:${fd}`, sweep: true };
}

export async function openSources(req: SourceRequest, log: Logger, announce: (info: object) => void): Promise<OpenedSources> {
  const specs: FdSpec[] = [
    ...req.faultFds.map((fd) => checked("--fault-fd", fd, checkFaultFd)),
    ...req.emulatorFds.map((fd) => checked("--emulator-fd", fd, checkEmulatorFd)),
  ];
  let iommu: IommuFd | null = null;
  if (req.iommufd) {
    iommu = IommuFd.open();
    const { faultId, faultFd } = iommu.faultQueueAlloc();
    // The VMM ties its nested HWPTs to this fault object (IOMMU_HWPT_ALLOC with FAULT_ID_VALID).
    announce({ iommufd: iommu.fd, faultId, faultFd });
    specs.push({ fd: faultFd, kind: "kernel", description: `iommufd fault ${faultId} (fd ${faultFd})`, sweep: false });
  }
  let emulator: KernelEmulator | null = null;
  let stopLoad: (() => void) | null = null;
  if (req.builtIn.includes("emulator")) {
    emulator = await KernelEmulator.start();
    specs.push({ fd: emulator.faultFd, kind: "stream", description: "kernel emulator", sweep: false });
  }
  const fds = specs.length === 0 && !req.handoff ? null : await FdSourceSet.start({ maxHeld: req.maxHeld });
  const sources = specs.map((s) => fds!.add(s));
  let synthetic: SyntheticSource | null = null;
  if (req.builtIn.includes("synthetic")) {
    synthetic = new SyntheticSource(SYNTHETIC_ID);
    sources.push(synthetic);
    if (req.rate > 0) stopLoad = startSyntheticLoad(synthetic, { rate: req.rate, devIds: req.devIds });
  }
  if (emulator && req.rate > 0) {
    emulator.load(emulatorDemoLoad(req.devIds, req.rate)).catch((err: Error) => log.level("debug", "emulator load ended", { error: err.message }));
  }
  return {
    sources,
    fds,
    emulator,
    synthetic,
    release: async () => {
      stopLoad?.();
      const unsent = (await fds?.stop()) ?? 0;
      if (unsent > 0) log.level("error", "answers could not be written before the relay stopped; their groups stay outstanding until the device is detached", { unsent });
      if (emulator) {
        const final = await emulator.quit();
        const fields = { delivered: final.deliveredGroups, success: final.answeredSuccess, invalid: final.answeredInvalid, outstanding: final.outstanding, violations: final.violationCount };
        if (final.violationCount > 0) log.level("warn", "kernel emulator final stats: it saw answers the kernel would refuse, or groups never answered", { ...fields, first: final.violations.slice(0, 3) });
        else log("kernel emulator final stats", fields);
        await emulator.close();
      }
      iommu?.close();
    },
  };
}
