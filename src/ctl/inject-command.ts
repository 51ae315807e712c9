// `iopfctl inject`: raises synthetic fault groups in a relay that runs the
// synthetic source (or, with --emulator, the kernel emulator); never in a
// kernel fault queue, which the relay refuses.
import { ControlClient } from "./control-client.js";

export interface InjectOptions {
  dev: number;
  pasid?: number;
  addr: number;
  perm: number;
  count: number;
  pages: number;
  emulator: boolean;
}

/** "r", "rw", "rwx", "rwxp" (privileged) or a number (iommu_hwpt_pgfault.perm bits). */
export function parsePerm(text: string): number | null {
  if (/^\d+$/.test(text)) return Number(text) <= 15 ? Number(text) : null;
  if (!/^[rwxp]+$/.test(text)) return null;
  let bits = 0;
  for (const ch of text) bits |= { r: 1, w: 2, x: 4, p: 8 }[ch as "r" | "w" | "x" | "p"];
  return bits;
}

export async function injectCommand(client: ControlClient, o: InjectOptions, out: (s: string) => void): Promise<void> {
  const r = await client.inject({ target: o.emulator ? "emulator" : "synthetic", dev: o.dev, pasid: o.pasid, addr: o.addr, perm: o.perm, count: o.count, pages: o.pages });
  out(`raised ${r.raised} group${r.raised === 1 ? "" : "s"} on dev ${o.dev}${o.pasid !== undefined ? ` pasid ${o.pasid}` : ""} at 0x${o.addr.toString(16)} in the relay's ${r.target} source\n`);
}
