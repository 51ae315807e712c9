// POST /api/inject: synthetic faults raised into a source of the relay that
// can make them: the in-process synthetic source ("synthetic", the default)
// or the kernel emulator ("emulator"), which takes them through the same
// fault-fd path as the kernel's. Never the kernel's fault fd: a real device's
// queue is not ours to write into.
import { KernelEmulator } from "../../fault/emulator/kernel-emulator.js";
import { SyntheticSource } from "../../fault/sources/synthetic-source.js";
import { codecByName, VIOMMU_NAMES } from "../../viommu/models.js";
import { MAX_INJECT, MAX_INJECT_PAGES } from "./inject-limits.js";

export type InjectTarget = "synthetic" | "emulator";

export interface InjectRequest {
  target: InjectTarget;
  count: number;
  dev: number;
  /** Absent: no PASID. */
  pasid?: number;
  addr: number;
  /** Bits of iommu_hwpt_pgfault.perm: 1 read, 2 write, 4 exec, 8 privileged. */
  perm: number;
  /** Records (pages) per group. */
  pages: number;
}

export interface Injectors {
  synthetic: SyntheticSource | null;
  emulator: KernelEmulator | null;
}

const PAGE = 4096;

/**
 * Group indices every vIOMMU model can show (VT-d and SMMUv3 carry PCIe's
 * 9-bit PRG index): injected groups count through these and start again, as
 * a device reuses its indices. A larger index is answered INVALID at once.
 */
export const GROUP_INDICES = Math.min(...VIOMMU_NAMES.map((name) => codecByName(name).limits.groupIndex)) + 1;

export class InjectError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export function parseInjectRequest(body: string): InjectRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new InjectError(`expected a JSON object like {"dev":1,"pasid":1,"addr":4096,"perm":1,"count":1}, got ${JSON.stringify(body.slice(0, 80))}`, 400);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new InjectError(`expected a JSON object, got ${JSON.stringify(raw)}`, 400);
  const o = raw as Record<string, unknown>;
  const int = (key: string, min: number, max: number, dflt?: number): number => {
    const v = o[key] ?? dflt;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      throw new InjectError(`${key}: expected an integer ${min}..${max}, got ${JSON.stringify(o[key]) ?? "nothing"}`, 400);
    }
    return v;
  };
  const target = o.target ?? "synthetic";
  if (target !== "synthetic" && target !== "emulator") throw new InjectError(`target: expected "synthetic" or "emulator", got ${JSON.stringify(target)}`, 400);
  const request: InjectRequest = {
    target,
    count: int("count", 1, MAX_INJECT, 1),
    dev: int("dev", 0, 0xffff_ffff),
    addr: int("addr", 0, Number.MAX_SAFE_INTEGER),
    perm: int("perm", 0, 15, 1),
    pages: int("pages", 1, MAX_INJECT_PAGES, 1),
  };
  if (request.addr % PAGE !== 0) throw new InjectError(`addr: expected a 4 KiB aligned address, got 0x${request.addr.toString(16)}`, 400);
  // Each group's pages follow the previous group's; the last byte must stay an exact number.
  const last = request.addr + request.count * request.pages * PAGE - 1;
  if (last > Number.MAX_SAFE_INTEGER) {
    throw new InjectError(`addr: ${request.count} groups of ${request.pages} page${request.pages === 1 ? "" : "s"} from 0x${request.addr.toString(16)} run past 0x${Number.MAX_SAFE_INTEGER.toString(16)}; start lower or raise fewer`, 400);
  }
  if (o.pasid !== undefined && o.pasid !== null) request.pasid = int("pasid", 0, 0xfffff);
  return request;
}

/** Raises the groups; each group's pages follow the previous group's. Returns how many groups. */
export async function inject(req: InjectRequest, to: Injectors): Promise<number> {
  if (req.target === "emulator") {
    const emulator = to.emulator;
    if (!emulator) {
      throw new InjectError(to.synthetic
        ? "this relay has no kernel emulator, but its synthetic source takes injections: leave out iopfctl's --emulator (\"target\": \"synthetic\")"
        : "this relay has no kernel emulator source: start iopf-relay with --source emulator (not under --keeper, whose emulator lives in the keeper); inject never writes into a kernel fault queue", 409);
    }
    // The emulator steps grpid and addr itself, from the grpid given: one command per run of indices.
    // A PASID of 0 means none to it.
    for (let first = 0; first < req.count; first += GROUP_INDICES) {
      const count = Math.min(GROUP_INDICES, req.count - first);
      await emulator.raise({ dev: req.dev, pasid: req.pasid, grpid: 0, perm: req.perm, addr: req.addr + first * req.pages * PAGE, records: req.pages, count });
    }
    return req.count;
  }
  const source = to.synthetic;
  if (!source) {
    throw new InjectError(to.emulator
      ? "this relay has no synthetic source, but its kernel emulator takes injections: add --emulator to iopfctl inject or replay (\"target\": \"emulator\")"
      : "this relay has no synthetic source: start iopf-relay with --source synthetic (inject never writes into a kernel fault queue)", 409);
  }
  for (let i = 0; i < req.count; i++) {
    source.raise({ devId: req.dev, pasid: req.pasid, grpid: i % GROUP_INDICES, perm: req.perm, addr: req.addr + i * req.pages * PAGE, pages: req.pages });
  }
  return req.count;
}
