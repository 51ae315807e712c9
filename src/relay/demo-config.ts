// The device map used when no --config is given with a built-in source
// (emulator or synthetic): eight virtio-iommu endpoints, 100 ms deadlines.
import { parseRelayConfig, RelayConfig } from "./config.js";

export const DEMO_DEV_IDS = [1, 2, 3, 4, 5, 6, 7, 8];

export function demoConfigJson(): string {
  const devices = DEMO_DEV_IDS.map((devId) => ({ devId, endpointId: 0x10 + devId, name: `demo-dev${devId}` }));
  return JSON.stringify({ viommu: "virtio-iommu", devices }, null, 2);
}

export function demoConfig(): RelayConfig {
  return parseRelayConfig(demoConfigJson(), "(built-in demo config)");
}
