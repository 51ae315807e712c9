// What `iopf-relay --print-capabilities` prints: a JSON object a management
// tool reads to learn what this build speaks, as vhost-user backends do.
import { PROTOCOL_VERSION } from "../link/frame-header.js";
import { DEFAULT_LIMITS, Feature } from "../link/negotiation.js";
import { VIOMMU_NAMES } from "../viommu/models.js";
import { VERSION } from "./version.js";

export const SOURCE_KINDS = ["iommufd", "fault-fd", "emulator", "synthetic"] as const;

export function capabilities(): object {
  return {
    type: "iopf-relay",
    version: VERSION,
    protocol: {
      version: PROTOCOL_VERSION,
      features: Object.keys(Feature).map((k) => k.toLowerCase().replaceAll("_", "-")),
      limits: DEFAULT_LIMITS,
    },
    viommu: VIOMMU_NAMES,
    sources: SOURCE_KINDS,
    transports: ["unix", "tcp", "ws", "fd"],
  };
}
