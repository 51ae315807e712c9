// Assembles a running relay from its parts: the core over the sources
// (each inherited fault fd was swept of what a previous reader left before
// its first read, in openSources), then the agent's channel and the
// control server.
import { KernelEmulator } from "../fault/emulator/kernel-emulator.js";
import { FaultSource } from "../fault/fault-source.js";
import { SyntheticSource } from "../fault/sources/synthetic-source.js";
import { OUR_CAPABILITIES } from "../link/negotiation.js";
import { WireEndpoint } from "../link/messages.js";
import { DeviceMap, GuestTarget } from "../viommu/device-map.js";
import { GuestDevices } from "../viommu/guest-devices.js";
import { RelayConfig } from "./config.js";
import { parseControlAddress } from "./control/control-address.js";
import { ControlServer, startControlServer } from "./control/control-server.js";
import { LinkEndpoint, LinkEndpointSpec, openLinkEndpoint } from "./link-endpoint.js";
import { Logger } from "./log.js";
import { RelayCore } from "./relay-core.js";
import { RateLimitedLog } from "./rate-limited-log.js";

export interface DaemonOptions {
  config: RelayConfig;
  link: LinkEndpointSpec;
  sources: FaultSource[];
  log: Logger;
  software: string;
  /** Serve the control plane (metrics, status, events, dashboard) on this address; off when absent. */
  control?: string | null;
  /** The kernel emulator behind one of the sources, for the control server's inject. */
  emulator?: KernelEmulator | null;
}

export interface RunningRelay {
  core: RelayCore<GuestTarget>;
  /** The device map in force, replaced at runtime by handoffs, detaches and reloads. */
  devices: GuestDevices;
  endpoint: LinkEndpoint;
  control: ControlServer | null;
  /** What the relay serves, for the "relay ready" line its command logs once every listener of its own is up too. */
  ready: Record<string, unknown>;
  stop(): Promise<void>;
}

/** The Hello's endpoint table: one entry per guest endpoint of the map. */
export function helloEndpoints(map: DeviceMap): WireEndpoint[] {
  const seen = new Map<number, WireEndpoint>();
  for (const e of map.entries) {
    // Identity and table translations pass PASIDs through, so every mapped device may carry one.
    if (!seen.has(e.endpoint)) seen.set(e.endpoint, { endpointId: e.endpoint, name: e.name, deadlineMs: e.deadlineMs, pasidCapable: true });
  }
  return [...seen.values()];
}

export async function startRelay(opts: DaemonOptions): Promise<RunningRelay> {
  const { config, log } = opts;
  // A bad control address is a usage error: found before anything is opened.
  const controlAddress = opts.control ? parseControlAddress(opts.control) : null;
  const startedAtMs = performance.now();
  const unfit = new RateLimitedLog((msg, fields) => log.level("warn", msg, fields), "a mapped group the vIOMMU model cannot show was answered INVALID");
  const devices = new GuestDevices(config.devices, {
    deadlineCode: config.deadlineCode,
    unfit: (group, detail) => unfit.report(String(group.devId), { devId: group.devId, detail }),
  });
  const core: RelayCore<GuestTarget> = new RelayCore<GuestTarget>({
    devices,
    link: {
      capabilities: { ...OUR_CAPABILITIES, limits: config.link },
      model: config.devices.codec.model,
      endpoints: () => helloEndpoints(devices.map),
      software: opts.software,
    },
    ledger: config.ledger,
    maxPagesPerGroup: config.maxPagesPerGroup,
    maxHeld: config.maxHeld,
    sessionGraceMs: config.sessionGraceMs,
    log,
  });

  for (const source of opts.sources) core.addSource(source);

  const endpoint = await openLinkEndpoint(opts.link, (stream) => core.attach(stream), log);
  const control = controlAddress === null ? null : await startControlServer({
    address: controlAddress,
    view: {
      core,
      // The device map and the sources change at runtime (handoff, detach, reload): read them at each request.
      get devices() {
        return devices.map.entries;
      },
      viommu: config.devices.viommu,
      get sources() {
        return core.sourceNames;
      },
      software: opts.software,
      startedAtMs,
    },
    injectors: { synthetic: opts.sources.find((s): s is SyntheticSource => s instanceof SyntheticSource) ?? null, emulator: opts.emulator ?? null },
    log,
  }).catch(async (err: Error) => {
    // The relay would run unseen; better not to run at all, and to answer what was read.
    await endpoint.close();
    await core.shutdown();
    throw err;
  });

  let stopped: Promise<void> | null = null;
  return {
    core,
    devices,
    endpoint,
    control,
    ready: { link: endpoint.description, sources: opts.sources.map((s) => s.description), viommu: config.devices.viommu, devices: config.devices.entries.length, ...(control ? { control: control.description } : {}) },
    stop: () => {
      stopped ??= (async () => {
        await control?.close();
        await endpoint.close();
        await core.shutdown();
      })();
      return stopped;
    },
  };
}
