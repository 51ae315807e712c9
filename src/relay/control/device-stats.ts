// Per-device counters, kept from the relay's events: RelayMetrics counts the
// relay as a whole, while `iopfctl top`, the dashboard and /metrics show
// which device faults and how its faults end. Bounded by the devices seen.
import { RelayEvent } from "../relay-core.js";

export interface DeviceCounts {
  groups: number;
  /** Answers by the guest (or any origin but the deadline), by code. */
  success: number;
  invalid: number;
  /** Answered by the deadline: the guest did not answer in time. */
  expired: number;
  /** Sum of read-to-answer latencies, for a mean. */
  latencySumUs: number;
}

/** A device id that is not in the device map is still counted, but only this many distinct ones. */
const MAX_DEVICES = 4096;

export class DeviceStats {
  readonly byDev = new Map<number, DeviceCounts>();

  observe(e: RelayEvent): void {
    if (e.kind !== "group-read" && e.kind !== "answered") return;
    const c = this.counts(e.devId);
    if (!c) return;
    if (e.kind === "group-read") {
      c.groups++;
      return;
    }
    c.latencySumUs += e.latencyUs;
    if (e.origin === "deadline") c.expired++;
    else if (e.code === 0) c.success++;
    else c.invalid++;
  }

  private counts(devId: number): DeviceCounts | undefined {
    let c = this.byDev.get(devId);
    if (!c && this.byDev.size < MAX_DEVICES) {
      c = { groups: 0, success: 0, invalid: 0, expired: 0, latencySumUs: 0 };
      this.byDev.set(devId, c);
    }
    return c;
  }
}
