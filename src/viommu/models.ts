// The three guest IOMMU models by the name the config file uses, with the
// link's enum value and the encoding of each.
import { iopf } from "../gen/guest_link.js";
import type { ViommuCodec } from "./codec.js";
import { smmuv3Codec } from "./smmuv3.js";
import { virtioIommuCodec } from "./virtio-iommu.js";
import { vtdCodec } from "./vtd.js";

export type ViommuName = "virtio-iommu" | "vtd" | "smmuv3";
export type ViommuModel = iopf.link.v1.ViommuModel;

const byName: Readonly<Record<ViommuName, ViommuCodec>> = {
  "virtio-iommu": virtioIommuCodec,
  vtd: vtdCodec,
  smmuv3: smmuv3Codec,
};

export const VIOMMU_NAMES = Object.keys(byName) as readonly ViommuName[];

export function isViommuName(value: unknown): value is ViommuName {
  return typeof value === "string" && Object.hasOwn(byName, value);
}

export function codecByName(name: ViommuName): ViommuCodec {
  return byName[name];
}

/** The encoding of a negotiated model; null for VIOMMU_MODEL_UNSPECIFIED or a value this build does not know. */
export function codecForModel(model: number): ViommuCodec | null {
  return Object.values(byName).find((codec) => codec.model === model) ?? null;
}
