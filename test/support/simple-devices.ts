// A device model for relay tests: every dev_id below 100 is a device with
// endpoint = dev_id and a fixed deadline; others are unknown.
import type { DeviceModel } from "../../src/relay/relay-core.js";
import type { FaultGroup } from "../../src/fault/fault-group.js";

export function simpleDevices(deadlineMs = 100, deadlineByDevId: Readonly<Record<number, number>> = {}): DeviceModel<{ endpoint: number }> {
  return {
    resolve: (g: FaultGroup) => (g.devId < 100 ? { endpoint: g.devId } : null),
    deadline: (d) => ({ ms: deadlineByDevId[d.endpoint] ?? deadlineMs, code: 1 }),
    pageRequest: (g, d, tag, budgetUs) => ({
      tag, endpoint: d.endpoint, pasid: g.pasid, pasidValid: g.pasidValid, groupIndex: g.grpid, budgetUs,
      pages: g.pages.map((p) => ({ address: p.addr, perm: p.perm })),
    }),
  };
}
