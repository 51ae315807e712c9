// Assembles a running relay from its parts, in the order crash safety needs:
// open the journal; answer what a previous run may have been answering;
// start the sources; hand back the groups a previous run read and never
// answered; then serve the agent.
import { FaultSource } from "../fault/fault-source.js";
import { Journal } from "../fault/journal.js";
import { OUR_CAPABILITIES } from "../link/negotiation.js";
import { WireEndpoint } from "../link/messages.js";
import { DeviceMap, GuestTarget } from "../viommu/device-map.js";
import { GuestDevices } from "../viommu/guest-devices.js";
import { RelayConfig } from "./config.js";
import { journalObserver } from "./journal-observer.js";
import { LinkEndpoint, LinkEndpointSpec, openLinkEndpoint } from "./link-endpoint.js";
import { Logger } from "./log.js";
import { answerMaybeAnswered } from "./recovery.js";
import { RelayCore } from "./relay-core.js";

export interface DaemonOptions {
  config: RelayConfig;
  link: LinkEndpointSpec;
  sources: FaultSource[];
  log: Logger;
  software: string;
}

export interface RunningRelay {
  core: RelayCore<GuestTarget>;
  endpoint: LinkEndpoint;
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
  const opened = config.journal ? Journal.open(config.journal) : null;
  const devices = new GuestDevices(config.devices, {
    deadlineCode: config.deadlineCode,
    unfit: (group, detail) => log.level("warn", "a mapped group the vIOMMU model cannot show was answered INVALID", { devId: group.devId, detail }),
  });
  const core: RelayCore<GuestTarget> = new RelayCore<GuestTarget>({
    devices,
    link: {
      capabilities: { ...OUR_CAPABILITIES, limits: config.link },
      model: config.devices.codec.model,
      endpoints: helloEndpoints(config.devices),
      software: opts.software,
    },
    ledger: config.ledger,
    maxPagesPerGroup: config.maxPagesPerGroup,
    sessionGraceMs: config.sessionGraceMs,
    ...(opened ? { observer: journalObserver(opened.journal, () => core.liveGroups()) } : {}),
    log,
  });

  if (opened) {
    const byId = new Map(opts.sources.map((s) => [s.id, s]));
    const report = answerMaybeAnswered(opened.recovered, byId);
    log("journal replayed", { path: config.journal, pending: opened.recovered.pending.length, ...report, tornBytes: opened.recovered.tornBytes });
  }
  for (const source of opts.sources) core.addSource(source);
  if (opened) core.adoptRecovered(opened.recovered.pending);

  const endpoint = await openLinkEndpoint(opts.link, (stream) => core.attach(stream), log);
  log("relay ready", { link: endpoint.description, sources: opts.sources.map((s) => s.description), viommu: config.devices.viommu, devices: config.devices.entries.length });

  let stopped: Promise<void> | null = null;
  return {
    core,
    endpoint,
    stop: () => {
      stopped ??= (async () => {
        await endpoint.close();
        await core.shutdown();
        if (opened) {
          opened.journal.compact([]);
          opened.journal.close();
        }
      })();
      return stopped;
    },
  };
}
