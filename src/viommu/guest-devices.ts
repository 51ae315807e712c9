// The device map and the model's encoding behind the three calls the relay
// makes per group (src/relay's DeviceModel): where does this group go in the
// guest, how long may the guest take, and what does the guest receive.
import type { WirePageRequest } from "../link/messages.js";
import type { DeviceMap, GuestTarget } from "./device-map.js";
import { buildPageRequest, whyUnfit, type HostGroup } from "./group-builder.js";
import { KernelCode } from "./response-code.js";

export interface GuestDevicesOptions {
  /** A mapped group the model's records cannot hold; the relay then answers it INVALID as unresolvable. */
  unfit?: (group: HostGroup, detail: string) => void;
  /** The answer when a deadline passes (config "deadlineCode"); INVALID unless set. */
  deadlineCode?: KernelCode;
}

export class GuestDevices {
  constructor(
    private current: DeviceMap,
    private readonly options: GuestDevicesOptions = {},
  ) {}

  /** The map in force: it changes at runtime (a handoff adds devices, a detach or a config reload removes them). */
  get map(): DeviceMap {
    return this.current;
  }

  /** Replaces the map; groups already admitted keep the device they were resolved to. */
  replace(map: DeviceMap): void {
    this.current = map;
  }

  /** Null for a device or PASID the map does not know, or a group this guest's model cannot show. */
  resolve(group: HostGroup): GuestTarget | null {
    const target = this.current.lookup(group.devId, group.pasidValid ? group.pasid : null);
    if (target === null) return null;
    const unfit = whyUnfit(group, target, this.current.codec);
    if (unfit === null) return target;
    this.options.unfit?.(group, unfit);
    return null;
  }

  /** The device's deadline and the code answered on expiry (INVALID by default: it never disables PRI). */
  deadline(target: GuestTarget): { ms: number; code: KernelCode } {
    return { ms: target.device.deadlineMs, code: this.options.deadlineCode ?? KernelCode.INVALID };
  }

  pageRequest(group: HostGroup, target: GuestTarget, tag: number, budgetUs: number, rawRecords: boolean): WirePageRequest {
    return buildPageRequest(group, target, this.current.codec, { tag, budgetUs, rawRecords });
  }
}
