// The relay's JSON config file: devices and the vIOMMU model (parsed by
// src/viommu), the deadline answer, and limits. Every error names the file,
// the key path, what was expected and what came.
//
//   {
//     "viommu": "virtio-iommu",
//     "devices": [{ "devId": 1, "endpointId": 8, "name": "nic0", "deadlineMs": 100 }],
//     "deadlineCode": "invalid",
//     "limits": { "maxInFlight": 4096, "maxBatch": 256, "maxPayload": 262144, "heartbeatMs": 1000,
//                 "maxHeld": 1024, "maxPagesPerGroup": 256, "sessionGraceMs": 2000 }
//   }
import { closeSync, openSync, readSync } from "node:fs";
import { DeviceMap } from "../viommu/device-map.js";
import { parseDeviceMap } from "../viommu/device-config.js";
import { DeviceMapConfigError } from "../viommu/config-problem.js";
import { KernelCode } from "../fault/fault-group.js";
import { DEFAULT_LEDGER_LIMITS, LedgerLimits } from "../fault/ledger.js";
import { DEFAULT_LIMITS, LinkLimits, MAX_LIMITS, MIN_LIMITS } from "../link/negotiation.js";
import { CORE_DEFAULTS } from "./relay-core.js";

export interface RelayConfig {
  devices: DeviceMap;
  deadlineCode: KernelCode;
  link: LinkLimits;
  ledger: LedgerLimits;
  maxPagesPerGroup: number;
  maxHeld: number;
  sessionGraceMs: number;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** A config is a few kilobytes; more is a mistake (a device node, the wrong file), not a config. */
export const MAX_CONFIG_BYTES = 1 << 20;

const TOP_KEYS = new Set(["viommu", "devices", "deadlineCode", "limits"]);
const LIMIT_KEYS: Record<string, { min: number; max: number }> = {
  maxPayload: { min: MIN_LIMITS.maxPayload, max: MAX_LIMITS.maxPayload },
  maxBatch: { min: MIN_LIMITS.maxBatch, max: MAX_LIMITS.maxBatch },
  maxInFlight: { min: MIN_LIMITS.maxInFlight, max: MAX_LIMITS.maxInFlight },
  heartbeatMs: { min: MIN_LIMITS.heartbeatMs, max: MAX_LIMITS.heartbeatMs },
  // A restarted relay answers cookies 1..maxHeld plus one read, one write each when not outstanding: keep it within a second or so.
  maxHeld: { min: 1, max: 1 << 20 },
  maxPagesPerGroup: { min: 1, max: 4096 },
  sessionGraceMs: { min: 0, max: 600_000 },
};
/** Keys of earlier versions, with what replaced them. */
const REMOVED_KEYS: Record<string, string> = {
  journal: "the journal is gone: a restarted relay answers SUCCESS to the groups its predecessor held (docs/architecture.md); remove the key",
  "limits.maxQueued": "replaced by limits.maxHeld: groups beyond it wait in the kernel's queue",
  "limits.overflow": "removed: groups beyond limits.maxHeld wait in the kernel's queue instead of being answered",
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
  for (const k of Object.keys(obj)) {
    if (REMOVED_KEYS[k]) throw new ConfigError(`${file}: ${k}: ${REMOVED_KEYS[k]}`);
    if (!TOP_KEYS.has(k)) fail(k, `one of the keys ${[...TOP_KEYS].join(", ")}`, `unknown key "${k}"`);
  }

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
    ...DEFAULT_LIMITS, maxHeld: CORE_DEFAULTS.maxHeld, maxPagesPerGroup: CORE_DEFAULTS.maxPagesPerGroup, sessionGraceMs: CORE_DEFAULTS.sessionGraceMs,
  };
  if (obj.limits !== undefined) {
    if (obj.limits === null || typeof obj.limits !== "object" || Array.isArray(obj.limits)) fail("limits", "an object", obj.limits);
    for (const [k, v] of Object.entries(obj.limits as Record<string, unknown>)) {
      const removed = REMOVED_KEYS[`limits.${k}`];
      if (removed) throw new ConfigError(`${file}: limits.${k}: ${removed}`);
      const range = LIMIT_KEYS[k];
      if (!range) fail(`limits.${k}`, `one of the keys ${Object.keys(LIMIT_KEYS).join(", ")}`, `unknown key "${k}"`);
      if (typeof v !== "number" || !Number.isInteger(v) || v < range!.min || v > range!.max) fail(`limits.${k}`, `an integer ${range!.min}..${range!.max}`, v);
      limits[k] = v as number;
    }
  }

  return {
    devices,
    deadlineCode,
    link: { maxPayload: limits.maxPayload!, maxBatch: limits.maxBatch!, maxInFlight: limits.maxInFlight!, heartbeatMs: limits.heartbeatMs! },
    ledger: DEFAULT_LEDGER_LIMITS,
    maxPagesPerGroup: limits.maxPagesPerGroup!,
    maxHeld: limits.maxHeld!,
    sessionGraceMs: limits.sessionGraceMs!,
  };
}

/** The file's text, read up to MAX_CONFIG_BYTES: a larger file (or a device that never ends) is refused, not read. */
export function readConfigText(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file: ${(err as Error).message}`);
  }
  try {
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_CONFIG_BYTES) throw new ConfigError(`${path}: expected a config file of at most ${MAX_CONFIG_BYTES} bytes, got more; is it the right file?`);
    return buf.toString("utf8", 0, n);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`${path}: cannot read the config file: ${(err as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

export function loadRelayConfig(path: string): RelayConfig {
  return parseRelayConfig(readConfigText(path), path);
}
