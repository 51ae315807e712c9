// A RelayView around given metrics, for tests of what the status and the
// screens make of them: no source, no session, nothing in flight.
import { EventEmitter } from "node:events";
import type { RelayView } from "../../src/relay/control/relay-view.js";
import type { RelayMetrics } from "../../src/relay/relay-metrics.js";

export function relayViewOf(metrics: RelayMetrics): RelayView {
  return {
    core: { metrics, events: new EventEmitter(), inFlight: 0, queued: 0, currentSession: null } as unknown as RelayView["core"],
    devices: [],
    viommu: "virtio-iommu",
    sources: ["synthetic:65535"],
    software: "iopf-relay test",
    startedAtMs: performance.now(),
  };
}
