// Builds the fault sources the command line names. Source ids follow the
// order of the command line (fault fds, then --iommufd, then built-in
// sources), so a relay restarted with the same command line maps its
// journal's groups to the same fds.
import { KernelEmulator } from "../fault/emulator/kernel-emulator.js";
import { FaultSource } from "../fault/fault-source.js";
import { FdSpec, startFdSources } from "../fault/sources/fd-sources.js";
import { startSyntheticLoad } from "../fault/sources/synthetic-load.js";
import { SyntheticSource } from "../fault/sources/synthetic-source.js";
import { IommuFd } from "../kernel/iommufd.js";
import { Logger } from "./log.js";

export interface SourceRequest {
  faultFds: number[];
  iommufd: boolean;
  builtIn: string[];
  /** Groups a second raised by the built-in sources; 0 raises none. */
  rate: number;
  /** Device ids the built-in sources raise faults on. */
  devIds: number[];
}

export interface OpenedSources {
  sources: FaultSource[];
  emulator: KernelEmulator | null;
  synthetic: SyntheticSource | null;
  /** Stops the built-in load and releases what the sources own; after the relay shut down. */
  release(): Promise<void>;
}

export async function openSources(req: SourceRequest, log: Logger, announce: (info: object) => void): Promise<OpenedSources> {
  const specs: FdSpec[] = [];
  let nextId = 1;
  for (const fd of req.faultFds) specs.push({ id: nextId++, fd, description: `fault-fd:${fd}` });
  let iommu: IommuFd | null = null;
  if (req.iommufd) {
    iommu = IommuFd.open();
    const { faultId, faultFd } = iommu.faultQueueAlloc();
    // The VMM ties its nested HWPTs to this fault object (IOMMU_HWPT_ALLOC with FAULT_ID_VALID).
    announce({ iommufd: iommu.fd, faultId, faultFd });
    specs.push({ id: nextId++, fd: faultFd, description: `iommufd fault ${faultId} (fd ${faultFd})` });
  }
  let emulator: KernelEmulator | null = null;
  let stopLoad: (() => void) | null = null;
  if (req.builtIn.includes("emulator")) {
    emulator = await KernelEmulator.start();
    specs.push({ id: nextId++, fd: emulator.faultFd, description: "kernel emulator" });
  }
  const sources = specs.length > 0 ? await startFdSources(specs) : [];
  let synthetic: SyntheticSource | null = null;
  if (req.builtIn.includes("synthetic")) {
    synthetic = new SyntheticSource(nextId++);
    sources.push(synthetic);
    if (req.rate > 0) stopLoad = startSyntheticLoad(synthetic, { rate: req.rate, devIds: req.devIds });
  }
  if (emulator && req.rate > 0) {
    const devBase = Math.min(...req.devIds);
    // A long run; quit() at shutdown ends it.
    emulator.load({ devices: req.devIds.length, devBase, records: 1, rate: req.rate, durationMs: 24 * 3600_000, maxOutstanding: 4096, pasid: 1 })
      .catch((err: Error) => log.level("warn", "emulator load ended", { error: err.message }));
  }
  return {
    sources,
    emulator,
    synthetic,
    release: async () => {
      stopLoad?.();
      if (emulator) {
        const final = await emulator.quit();
        log("kernel emulator final stats", { delivered: final.deliveredGroups, success: final.answeredSuccess, invalid: final.answeredInvalid, outstanding: final.outstanding, violations: final.violationCount });
        await emulator.close();
      }
      iommu?.close();
    },
  };
}
