// A steady load for the synthetic source: `rate` groups a second spread over
// the given devices and PASIDs, raised in small bursts every 10 ms so that
// the relay sees batches as it would from a busy fault fd.
import { SyntheticSource } from "./synthetic-source.js";

export interface SyntheticLoadOptions {
  rate: number;
  devIds: number[];
  pasids?: number[];
  pagesPerGroup?: number;
  /** Most groups outstanding at the source; raising pauses beyond it, as a device's queue would fill. */
  maxOutstanding?: number;
}

const TICK_MS = 10;

export function startSyntheticLoad(source: SyntheticSource, opts: SyntheticLoadOptions): () => void {
  if (opts.devIds.length === 0) throw new Error("synthetic load: no device ids to raise faults on; the device map is empty");
  let n = 0;
  let carry = 0;
  const pasids = opts.pasids ?? [1];
  const timer = setInterval(() => {
    carry += (opts.rate * TICK_MS) / 1000;
    for (; carry >= 1; carry--) {
      const { outstanding, waiting } = source.snapshot();
      if (outstanding + waiting >= (opts.maxOutstanding ?? 4096)) {
        carry = 0;
        break;
      }
      const devId = opts.devIds[n % opts.devIds.length]!;
      const pasid = pasids[Math.floor(n / opts.devIds.length) % pasids.length]!;
      source.raise({ devId, pasid, grpid: n % 512, perm: 1 + (n % 3), addr: 0x7f00_0000_0000 + (n % 65536) * 4096, pages: opts.pagesPerGroup ?? 1 });
      n++;
    }
  }, TICK_MS);
  return () => clearInterval(timer);
}
