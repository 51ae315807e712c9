// Builds the fault sources the command line names, and with a journal,
// recovers what a previous run left before the first read. A fd source's id
// is its fd number, which the keeper keeps the same across restarts (3, 4,
// ...), so the journal's keys (fd, cookie) name the same fault queue in the
// next run. In-process sources take ids from 65535 down (the journal's ids
// are u16), where no fd of this process is.
import { KernelEmulator } from "../fault/emulator/kernel-emulator.js";
import { FaultSource } from "../fault/fault-source.js";
import { FdSpec, openFdSources } from "../fault/sources/fd-sources.js";
import { startSyntheticLoad } from "../fault/sources/synthetic-load.js";
import { SyntheticSource } from "../fault/sources/synthetic-source.js";
import { IommuFd } from "../kernel/iommufd.js";
import { Logger } from "./log.js";
import { OpenedJournal, recoverJournal } from "./recovery.js";

const SYNTHETIC_ID = 0xffff;
/** Fds at or above this could meet an in-process source's id. */
const FD_LIMIT = 0xff00;

export interface SourceRequest {
  faultFds: number[];
  iommufd: boolean;
  builtIn: string[];
  /** Groups a second raised by the built-in sources; 0 raises none. */
  rate: number;
  /** Device ids the built-in sources raise faults on. */
  devIds: number[];
  /** Journal the inherited fault fds here (the others die with the process); null or absent: no journal. */
  journal?: string | null;
}

export interface OpenedSources {
  sources: FaultSource[];
  emulator: KernelEmulator | null;
  synthetic: SyntheticSource | null;
  /** The journal and what a previous run left in it, for startRelay; null without one. */
  journal: OpenedJournal | null;
  /** Stops the built-in load and releases what the sources own; after the relay shut down. */
  release(): Promise<void>;
}

export async function openSources(req: SourceRequest, log: Logger, announce: (info: object) => void): Promise<OpenedSources> {
  const specs: FdSpec[] = [];
  for (const fd of req.faultFds) specs.push({ fd, description: `fault-fd:${fd}` });
  let iommu: IommuFd | null = null;
  if (req.iommufd) {
    iommu = IommuFd.open();
    const { faultId, faultFd } = iommu.faultQueueAlloc();
    // The VMM ties its nested HWPTs to this fault object (IOMMU_HWPT_ALLOC with FAULT_ID_VALID).
    announce({ iommufd: iommu.fd, faultId, faultFd });
    specs.push({ fd: faultFd, description: `iommufd fault ${faultId} (fd ${faultFd})` });
  }
  let emulator: KernelEmulator | null = null;
  let stopLoad: (() => void) | null = null;
  if (req.builtIn.includes("emulator")) {
    emulator = await KernelEmulator.start();
    specs.push({ fd: emulator.faultFd, description: "kernel emulator" });
  }
  const high = specs.find((s) => s.fd >= FD_LIMIT);
  if (high) throw new Error(`${high.description}: expected a fd below ${FD_LIMIT} (source ids are 16-bit, and in-process sources take the top ones), got ${high.fd}; pass a lower fd number`);
  // Answers in doubt are settled before the pump's first read, which may get their cookies again.
  const recovered = req.journal ? recoverJournal(req.journal, req.faultFds, log) : null;
  const fdSources = specs.length === 0 ? null
    : await openFdSources(specs, recovered ? { journal: { path: recovered.journal.path, fds: req.faultFds }, carry: recovered.carry } : {});
  const sources = fdSources?.sources ?? [];
  let synthetic: SyntheticSource | null = null;
  if (req.builtIn.includes("synthetic")) {
    synthetic = new SyntheticSource(SYNTHETIC_ID);
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
    journal: recovered && {
      journal: recovered.journal,
      pending: recovered.pending,
      // No fd to read: nothing else appends.
      pauseReads: fdSources?.pauseReads ?? (() => () => undefined),
    },
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
