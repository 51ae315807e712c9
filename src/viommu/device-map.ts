// The device map: which guest endpoint and guest PASID a host fault belongs
// to. Looked up once per fault group, so it is two hash lookups and no scan.
// A dev_id or PASID the map does not know is a normal event (a device the
// operator did not hand to this guest, a PASID the guest never bound): the
// lookup says null, and the relay answers INVALID and counts it.
import type { ViommuCodec } from "./codec.js";
import type { ViommuName } from "./models.js";

/** How a device's host PASIDs become guest PASIDs. */
export type PasidTranslation =
  | { kind: "identity" }
  /** Only the listed host PASIDs are known; any other is unknown. */
  | { kind: "table"; table: ReadonlyMap<number, number> }
  /** The one guest PASID of an entry that serves a single host PASID. */
  | { kind: "fixed"; guestPasid: number };

export interface DeviceEntry {
  /** Host iommufd device object id. Never sent to the guest. */
  readonly devId: number;
  /** The host PASID this entry serves; null when it serves every PASID of the device (and faults without one). */
  readonly hostPasid: number | null;
  /** Guest endpoint id: virtio-iommu endpoint, VT-d requester id, or SMMUv3 StreamID. */
  readonly endpoint: number;
  /** For logs and the guest's Endpoint list; never derived from host identifiers. */
  readonly name: string;
  /** How long the guest has to answer a group of this device. */
  readonly deadlineMs: number;
  readonly pasid: PasidTranslation;
}

/** Where one fault group goes in the guest. */
export interface GuestTarget {
  readonly device: DeviceEntry;
  /** Guest PASID; 0 when the fault has none. */
  readonly pasid: number;
  readonly pasidValid: boolean;
}

export const DEFAULT_DEADLINE_MS = 100;

interface DeviceRoutes {
  /** Entries that serve one host PASID, by that PASID. */
  byPasid: Map<number, DeviceEntry>;
  /** The entry that serves every other PASID of the device. */
  wide: DeviceEntry | null;
}

export class DeviceMap {
  readonly #routes = new Map<number, DeviceRoutes>();

  /** Entries must be valid and free of duplicate (devId, hostPasid) pairs, as parseDeviceMap() guarantees. */
  constructor(
    readonly viommu: ViommuName,
    readonly codec: ViommuCodec,
    readonly entries: readonly DeviceEntry[],
  ) {
    for (const entry of entries) {
      let routes = this.#routes.get(entry.devId);
      if (routes === undefined) {
        routes = { byPasid: new Map(), wide: null };
        this.#routes.set(entry.devId, routes);
      }
      if (entry.hostPasid === null) routes.wide = entry;
      else routes.byPasid.set(entry.hostPasid, entry);
    }
  }

  /** This map with more entries (already checked: their devIds and endpoints new to this map). */
  with(entries: readonly DeviceEntry[]): DeviceMap {
    return new DeviceMap(this.viommu, this.codec, [...this.entries, ...entries]);
  }

  /** This map without the entries of these devices. */
  without(devIds: ReadonlySet<number>): DeviceMap {
    return new DeviceMap(this.viommu, this.codec, this.entries.filter((e) => !devIds.has(e.devId)));
  }

  /**
   * The guest side of a fault of host device devId, with host PASID
   * hostPasid (null when the fault carries none). An entry for that exact
   * PASID wins over the device-wide one. Null when nothing maps it.
   */
  lookup(devId: number, hostPasid: number | null): GuestTarget | null {
    const routes = this.#routes.get(devId);
    if (routes === undefined) return null;
    const device = (hostPasid === null ? undefined : routes.byPasid.get(hostPasid)) ?? routes.wide;
    if (device === null) return null;
    if (hostPasid === null) return { device, pasid: 0, pasidValid: false };
    const pasid = translate(device.pasid, hostPasid);
    return pasid === undefined ? null : { device, pasid, pasidValid: true };
  }
}

function translate(translation: PasidTranslation, hostPasid: number): number | undefined {
  switch (translation.kind) {
    case "identity":
      return hostPasid;
    case "table":
      return translation.table.get(hostPasid);
    case "fixed":
      return translation.guestPasid;
  }
}
