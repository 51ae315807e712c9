// POST /api/inject: synthetic faults raised into a source of the relay that
// can make them: the in-process synthetic source ("synthetic", the default)
// or the kernel emulator ("emulator"), which takes them through the same
// fault-fd path as the kernel's. Never the kernel's fault fd: a real device's
// queue is not ours to write into.
import { KernelEmulator } from "../../fault/emulator/kernel-emulator.js";
import { SyntheticSource } from "../../fault/sources/synthetic-source.js";

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

/** One request raises at most this many groups: a typo must not queue a million faults. */
export const MAX_INJECT = 100_000;
const PAGE = 4096;

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
    pages: int("pages", 1, 256, 1),
  };
  if (request.addr % PAGE !== 0) throw new InjectError(`addr: expected a 4 KiB aligned address, got 0x${request.addr.toString(16)}`, 400);
  if (o.pasid !== undefined && o.pasid !== null) request.pasid = int("pasid", 0, 0xfffff);
  return request;
}

/** Raises the groups; each group's pages follow the previous group's. Returns how many groups. */
export async function inject(req: InjectRequest, to: Injectors): Promise<number> {
  if (req.target === "emulator") {
    if (!to.emulator) throw new InjectError("this relay has no kernel emulator source: start iopf-relay with --source emulator, or inject into its synthetic source", 409);
    // The emulator steps grpid and addr itself; a PASID of 0 means none to it.
    await to.emulator.raise({ dev: req.dev, pasid: req.pasid, perm: req.perm, addr: req.addr, records: req.pages, count: req.count });
    return req.count;
  }
  const source = to.synthetic;
  if (!source) throw new InjectError("this relay has no synthetic source: start iopf-relay with --source synthetic (inject never writes into a kernel fault queue)", 409);
  for (let i = 0; i < req.count; i++) {
    source.raise({ devId: req.dev, pasid: req.pasid, grpid: i % 512, perm: req.perm, addr: req.addr + i * req.pages * PAGE, pages: req.pages });
  }
  return req.count;
}
