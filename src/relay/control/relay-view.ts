// What the control plane reads of a running relay: the core's counters and
// state, the device map, the sources. Narrow on purpose: the control server
// watches the relay and never drives it (inject goes to a fault source).
import { RelayCore } from "../relay-core.js";
import { DeviceEntry } from "../../viommu/device-map.js";

export type CoreView = Pick<RelayCore<unknown>, "metrics" | "events" | "inFlight" | "queued" | "held" | "currentSession" | "failures">;

export interface RelayView {
  core: CoreView;
  devices: readonly DeviceEntry[];
  viommu: string;
  sources: string[];
  software: string;
  /** performance.now() when the relay started. */
  startedAtMs: number;
}

/** Latency histogram bounds for /metrics and the dashboard, in microseconds (Prometheus "le" in seconds). */
export const LATENCY_BOUNDS_US = [50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];
