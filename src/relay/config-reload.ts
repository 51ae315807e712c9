// SIGHUP: the device map is read again from --config. Devices the file adds
// are served from the next group on, devices it changes take their new
// deadline for groups read from then on, and devices it no longer names
// are removed: the relay answers INVALID what it holds of them, as for a
// detach. Devices a handoff brought are not the file's and stay. A file
// with problems changes nothing: its problems are logged and the map in
// force is kept. Limits and the vIOMMU model take effect at the next start.
import { DeviceMap, type DeviceEntry } from "../viommu/device-map.js";
import { GuestDevices } from "../viommu/guest-devices.js";
import { ConfigError, loadRelayConfig } from "./config.js";
import { Logger } from "./log.js";
import { RelayCore } from "./relay-core.js";

export interface ReloadContext {
  path: string;
  core: RelayCore<unknown>;
  devices: GuestDevices;
  /** The devices handed over at runtime, which the file does not own. */
  handedDevIds: () => ReadonlySet<number>;
  log: Logger;
}

export function reloadDeviceMap(ctx: ReloadContext): void {
  const { path, log } = ctx;
  let entries: readonly DeviceEntry[];
  try {
    const config = loadRelayConfig(path);
    const current = ctx.devices.map;
    if (config.devices.viommu !== current.viommu) {
      throw new ConfigError(`${path}: viommu: the guest's vIOMMU is a ${current.viommu}; a new model takes a restart of the VM's relay, not a reload`);
    }
    const handed = ctx.handedDevIds();
    const clash = config.devices.entries.find((e) => handed.has(e.devId));
    if (clash) throw new ConfigError(`${path}: devices: device ${clash.devId} was handed over by the VMM; remove it from the file, or detach it first`);
    const handedEndpoints = new Map(current.entries.filter((e) => handed.has(e.devId)).map((e) => [e.endpoint, e.devId]));
    const taken = config.devices.entries.find((e) => handedEndpoints.has(e.endpoint));
    if (taken) throw new ConfigError(`${path}: devices: guest endpoint ${taken.endpoint} of device ${taken.devId} belongs to device ${handedEndpoints.get(taken.endpoint)}, which the VMM handed over`);
    entries = config.devices.entries;
  } catch (err) {
    log.level("error", "the config was not reloaded; the device map in force is kept", { path, error: (err as Error).message });
    return;
  }
  const current = ctx.devices.map;
  const handed = ctx.handedDevIds();
  const kept = current.entries.filter((e) => handed.has(e.devId));
  const before = new Set(current.entries.filter((e) => !handed.has(e.devId)).map((e) => e.devId));
  const after = new Set(entries.map((e) => e.devId));
  const removed = [...before].filter((d) => !after.has(d));
  ctx.devices.replace(new DeviceMap(current.viommu, current.codec, [...kept, ...entries]));
  let answered = 0;
  for (const devId of removed) answered += ctx.core.removeDevice(devId);
  log("config reloaded: the device map now follows the file", {
    path, devices: ctx.devices.map.entries.length, added: [...after].filter((d) => !before.has(d)), removed, answeredForRemoved: answered,
  });
}
