// What `iopf-relay --print-capabilities` prints: a JSON object a management
// tool reads to learn what this build speaks. The top level has the shape
// QEMU's vhost-user backends print (docs/interop/vhost-user.json: "type" and
// "features"); the rest sits beside them. This program is not a vhost-user
// device backend, so "type" is its own name, not one of that schema's types.
import { PROTOCOL_VERSION } from "../link/frame-header.js";
import { DEFAULT_LIMITS, Feature } from "../link/negotiation.js";
import { VIOMMU_NAMES } from "../viommu/models.js";
import { VERSION } from "./version.js";

export const SOURCE_KINDS = ["iommufd", "fault-fd", "emulator", "synthetic"] as const;

export function capabilities(): object {
  return {
    type: "iopf-relay",
    features: Object.keys(Feature).map((k) => k.toLowerCase().replaceAll("_", "-")),
    version: VERSION,
    protocol: { version: PROTOCOL_VERSION, limits: DEFAULT_LIMITS },
    viommu: VIOMMU_NAMES,
    sources: SOURCE_KINDS,
    transports: ["unix", "tcp", "ws", "fd"],
  };
}
