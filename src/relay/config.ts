// The relay's JSON config file: devices and the vIOMMU model (parsed by
// src/viommu), the deadline answer, limits, and where the journal lives.
// Every error names the file, the key path, what was expected and what came.
//
//   {
//     "viommu": "virtio-iommu",
//     "devices": [{ "devId": 1, "endpointId": 8, "name": "nic0", "deadlineMs": 100 }],
//     "deadlineCode": "invalid",
//     "limits": { "maxInFlight": 4096, "maxBatch": 256, "maxPayload": 262144, "heartbeatMs": 1000,
//                 "maxQueued": 65536, "overflow": "reject-new", "maxPagesPerGroup": 256, "sessionGraceMs": 2000 },
//     "journal": "/run/iopf-relay/vm1.journal"
//   }
import { readFileSync } from "node:fs";
import { DeviceMap } from "../viommu/device-map.js";
import { parseDeviceMap } from "../viommu/device-config.js";
import { DeviceMapConfigError } from "../viommu/config-problem.js";
import { KernelCode } from "../fault/fault-group.js";
import { DEFAULT_LEDGER_LIMITS, LedgerLimits, OverflowPolicy } from "../fault/ledger.js";
import { DEFAULT_LIMITS, LinkLimits, MAX_LIMITS, MIN_LIMITS } from "../link/negotiation.js";

export interface RelayConfig {
  devices: DeviceMap;
  deadlineCode: KernelCode;
  link: LinkLimits;
  ledger: LedgerLimits;
  maxPagesPerGroup: number;
  sessionGraceMs: number;
  journal: string | null;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const TOP_KEYS = new Set(["viommu", "devices", "deadlineCode", "limits", "journal"]);
const LIMIT_KEYS: Record<string, { min: number; max: number }> = {
  maxPayload: { min: MIN_LIMITS.maxPayload, max: MAX_LIMITS.maxPayload },
  maxBatch: { min: MIN_LIMITS.maxBatch, max: MAX_LIMITS.maxBatch },
  maxInFlight: { min: MIN_LIMITS.maxInFlight, max: MAX_LIMITS.maxInFlight },
  heartbeatMs: { min: MIN_LIMITS.heartbeatMs, max: MAX_LIMITS.heartbeatMs },
  maxQueued: { min: 1, max: 1 << 22 },
  maxPagesPerGroup: { min: 1, max: 4096 },
  sessionGraceMs: { min: 0, max: 600_000 },
};

function show(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v);
}

export function parseRelayConfig(text: string, file: string): RelayConfig {
  const fail = (key: string, expected: string, got: unknown): never => {
    throw new ConfigError(`${file}: ${key}: expected ${expected}, got ${show(got)}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) fail("(top level)", "a JSON object", raw);
  const obj = raw as Record<string, unknown>;
  for (const k of Object.keys(obj)) if (!TOP_KEYS.has(k)) fail(k, `one of the keys ${[...TOP_KEYS].join(", ")}`, `unknown key "${k}"`);

  let devices: DeviceMap;
  try {
    devices = parseDeviceMap({ viommu: obj.viommu, devices: obj.devices });
  } catch (err) {
    if (err instanceof DeviceMapConfigError) throw new ConfigError(`${file}: ${err.message}`);
    throw err;
  }

  let deadlineCode: KernelCode = KernelCode.INVALID;
  if (obj.deadlineCode !== undefined) {
    if (obj.deadlineCode === "invalid") deadlineCode = KernelCode.INVALID;
    else if (obj.deadlineCode === "success") deadlineCode = KernelCode.SUCCESS;
    else fail("deadlineCode", `"invalid" or "success"`, obj.deadlineCode);
  }

  const limits: Record<string, number> = {
    ...DEFAULT_LIMITS, maxQueued: DEFAULT_LEDGER_LIMITS.maxQueued, maxPagesPerGroup: 256, sessionGraceMs: 2000,
  };
  let overflow: OverflowPolicy = DEFAULT_LEDGER_LIMITS.overflow;
  if (obj.limits !== undefined) {
    if (obj.limits === null || typeof obj.limits !== "object" || Array.isArray(obj.limits)) fail("limits", "an object", obj.limits);
    for (const [k, v] of Object.entries(obj.limits as Record<string, unknown>)) {
      if (k === "overflow") {
        if (v !== "reject-new" && v !== "drop-oldest") fail("limits.overflow", `"reject-new" or "drop-oldest"`, v);
        overflow = v as OverflowPolicy;
        continue;
      }
      const range = LIMIT_KEYS[k];
      if (!range) fail(`limits.${k}`, `one of the keys ${[...Object.keys(LIMIT_KEYS), "overflow"].join(", ")}`, `unknown key "${k}"`);
      if (typeof v !== "number" || !Number.isInteger(v) || v < range!.min || v > range!.max) fail(`limits.${k}`, `an integer ${range!.min}..${range!.max}`, v);
      limits[k] = v as number;
    }
  }

  let journal: string | null = null;
  if (obj.journal !== undefined) {
    if (typeof obj.journal !== "string" || obj.journal === "") fail("journal", "a file path", obj.journal);
    journal = obj.journal as string;
  }

  return {
    devices,
    deadlineCode,
    link: { maxPayload: limits.maxPayload!, maxBatch: limits.maxBatch!, maxInFlight: limits.maxInFlight!, heartbeatMs: limits.heartbeatMs! },
    ledger: { maxQueued: limits.maxQueued!, overflow, recentMemory: DEFAULT_LEDGER_LIMITS.recentMemory },
    maxPagesPerGroup: limits.maxPagesPerGroup!,
    sessionGraceMs: limits.sessionGraceMs!,
    journal,
  };
}

export function loadRelayConfig(path: string): RelayConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file: ${(err as Error).message}`);
  }
  return parseRelayConfig(text, path);
}
