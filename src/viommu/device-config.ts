// Builds the device map from the relay config's "viommu" and "devices"
// keys (JSON already parsed). Example:
//
//   "viommu": "vtd",
//   "devices": [
//     { "devId": 3, "requesterId": "00:03.0", "name": "nic", "deadlineMs": 200 },
//     { "devId": 4, "requesterId": "00:04.0", "pasid": { "17": 1, "18": 2 } },
//     { "devId": 5, "hostPasid": 9, "requesterId": "00:05.0", "pasid": 1 }
//   ]
//
// Each device names its guest endpoint with the key of the map's model:
// endpointId (virtio-iommu), requesterId (vtd), streamId (smmuv3). "pasid"
// is "identity" (the default), a table of host PASID to guest PASID, or, on
// an entry with hostPasid, the one guest PASID.
import { describe, DeviceMapConfigError, isPlainObject, type ConfigProblem } from "./config-problem.js";
import { DEFAULT_DEADLINE_MS, DeviceMap, type DeviceEntry, type PasidTranslation } from "./device-map.js";
import { codecByName, isViommuName, VIOMMU_NAMES, type ViommuName } from "./models.js";
import { formatRequesterId, parseRequesterId } from "./requester-id.js";

const U32_MAX = 0xffff_ffff;
/** PCIe PASIDs are 20 bits; so are SMMUv3 SubstreamIDs and VT-d PASIDs. */
const PASID_MAX = 0xfffff;
/** A typo such as 100000 would let a device stall for minutes before the relay answers for the guest. */
const DEADLINE_MAX_MS = 60_000;
const NAME_PATTERN = /^[\x20-\x7e]{1,64}$/;

interface EndpointKey {
  key: string;
  expected: string;
  parse(value: unknown): number | null;
  /** The endpoint as the operator wrote it, for messages. */
  show(endpoint: number): string;
  defaultName(endpoint: number): string;
}

const ENDPOINT_KEYS: Readonly<Record<ViommuName, EndpointKey>> = {
  "virtio-iommu": {
    key: "endpointId",
    expected: "a virtio-iommu endpoint id, an integer 0..4294967295",
    parse: (v) => integerIn(v, U32_MAX),
    show: String,
    defaultName: (e) => `endpoint-${e}`,
  },
  vtd: {
    key: "requesterId",
    expected: `"bus:dev.fn" like "00:03.0" or a number 0..65535`,
    parse: (v) => (typeof v === "string" ? parseRequesterId(v) : integerIn(v, 0xffff)),
    show: formatRequesterId,
    defaultName: formatRequesterId,
  },
  smmuv3: {
    key: "streamId",
    expected: "an SMMUv3 StreamID, an integer 0..4294967295",
    parse: (v) => integerIn(v, U32_MAX),
    show: String,
    defaultName: (e) => `sid-${e}`,
  },
};
const ALL_ENDPOINT_KEYS = new Set(Object.values(ENDPOINT_KEYS).map((k) => k.key));
const COMMON_KEYS = ["devId", "hostPasid", "name", "deadlineMs", "pasid"];

function integerIn(value: unknown, max: number): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max ? value : null;
}

/** Throws DeviceMapConfigError listing every problem found. */
export function parseDeviceMap(section: unknown): DeviceMap {
  if (!isPlainObject(section)) {
    throw new DeviceMapConfigError([{ path: "(config)", message: `expected an object with keys "viommu" and "devices", got ${describe(section)}` }]);
  }
  const problems: ConfigProblem[] = [];
  const viommu = isViommuName(section.viommu) ? section.viommu : null;
  if (viommu === null) {
    const names = VIOMMU_NAMES.map((n) => `"${n}"`).join(", ");
    problems.push({ path: "viommu", message: `expected one of ${names} (the guest's one vIOMMU), got ${describe(section.viommu)}` });
  }
  const devices = section.devices;
  if (!Array.isArray(devices)) {
    problems.push({ path: "devices", message: `expected an array of devices, got ${describe(devices)}` });
  }
  const parsed: { entry: DeviceEntry; path: string }[] = [];
  if (viommu !== null && Array.isArray(devices)) {
    devices.forEach((device: unknown, i) => {
      const path = `devices[${i}]`;
      const entry = parseDevice(device, path, ENDPOINT_KEYS[viommu], problems);
      if (entry !== null) parsed.push({ entry, path });
    });
    checkUnique(parsed, ENDPOINT_KEYS[viommu], problems);
  }
  if (viommu === null || problems.length > 0) throw new DeviceMapConfigError(problems);
  return new DeviceMap(viommu, codecByName(viommu), parsed.map((p) => p.entry));
}

function parseDevice(device: unknown, path: string, endpointKey: EndpointKey, problems: ConfigProblem[]): DeviceEntry | null {
  if (!isPlainObject(device)) {
    problems.push({ path, message: `expected an object like {"devId": 3, "${endpointKey.key}": ...}, got ${describe(device)}` });
    return null;
  }
  const before = problems.length;
  const problem = (key: string, message: string): void => void problems.push({ path: `${path}.${key}`, message });
  for (const key of Object.keys(device)) {
    if (COMMON_KEYS.includes(key) || key === endpointKey.key) continue;
    if (ALL_ENDPOINT_KEYS.has(key)) {
      problem(key, `expected ${endpointKey.key}, the endpoint key of this map's viommu, got ${key}, which belongs to another vIOMMU model`);
    } else {
      problem(key, `unknown key; expected one of ${[...COMMON_KEYS, endpointKey.key].join(", ")}`);
    }
  }
  const devId = integerIn(device.devId, U32_MAX);
  if (devId === null) problem("devId", `expected an iommufd device id, an integer 0..4294967295, got ${describe(device.devId)}`);
  const hostPasid = device.hostPasid === undefined ? null : integerIn(device.hostPasid, PASID_MAX);
  if (device.hostPasid !== undefined && hostPasid === null) {
    problem("hostPasid", `expected a host PASID, an integer 0..${PASID_MAX}, or no hostPasid key to serve every PASID, got ${describe(device.hostPasid)}`);
  }
  const endpoint = endpointKey.parse(device[endpointKey.key]);
  if (endpoint === null) problem(endpointKey.key, `expected ${endpointKey.expected}, got ${describe(device[endpointKey.key])}`);
  const name = device.name === undefined ? null : device.name;
  if (name !== null && (typeof name !== "string" || !NAME_PATTERN.test(name))) {
    problem("name", `expected 1..64 printable ASCII characters, got ${describe(name)}`);
  }
  const deadlineMs = device.deadlineMs === undefined ? DEFAULT_DEADLINE_MS : integerIn(device.deadlineMs, DEADLINE_MAX_MS);
  if (deadlineMs === null || deadlineMs === 0) {
    problem("deadlineMs", `expected milliseconds, an integer 1..${DEADLINE_MAX_MS} (default ${DEFAULT_DEADLINE_MS}), got ${describe(device.deadlineMs)}`);
  }
  const pasid = parsePasid(device.pasid, `${path}.pasid`, device.hostPasid !== undefined, problems);
  if (problems.length > before || devId === null || endpoint === null || deadlineMs === null || pasid === null) return null;
  return {
    devId,
    hostPasid,
    endpoint,
    name: typeof name === "string" ? name : endpointKey.defaultName(endpoint),
    deadlineMs,
    pasid,
  };
}

function parsePasid(value: unknown, path: string, hasHostPasid: boolean, problems: ConfigProblem[]): PasidTranslation | null {
  if (value === undefined || value === "identity") return { kind: "identity" };
  if (hasHostPasid && integerIn(value, PASID_MAX) !== null) return { kind: "fixed", guestPasid: value as number };
  if (!isPlainObject(value)) {
    const single = hasHostPasid ? `, or the one guest PASID 0..${PASID_MAX}` : " (a single guest PASID needs hostPasid)";
    problems.push({ path, message: `expected "identity" or a table like {"17": 1} of host PASID to guest PASID${single}, got ${describe(value)}` });
    return null;
  }
  const table = new Map<number, number>();
  const hostOf = new Map<number, number>();
  const before = problems.length;
  for (const [key, guestValue] of Object.entries(value)) {
    const at = `${path}[${JSON.stringify(key)}]`;
    const host = /^(0|[1-9][0-9]*)$/.test(key) ? integerIn(Number(key), PASID_MAX) : null;
    if (host === null) {
      problems.push({ path: at, message: `expected a host PASID as a decimal key 0..${PASID_MAX}, got ${JSON.stringify(key)}` });
      continue;
    }
    const guest = integerIn(guestValue, PASID_MAX);
    if (guest === null) {
      problems.push({ path: at, message: `expected a guest PASID, an integer 0..${PASID_MAX}, got ${describe(guestValue)}` });
      continue;
    }
    const earlier = hostOf.get(guest);
    if (earlier !== undefined) {
      problems.push({ path: at, message: `expected each guest PASID once, got guest PASID ${guest} again (host PASID ${earlier} maps to it); two host address spaces cannot share one guest PASID` });
      continue;
    }
    hostOf.set(guest, host);
    table.set(host, guest);
  }
  return problems.length > before ? null : { kind: "table", table };
}

/** One entry per (devId, hostPasid); one host device per guest endpoint. */
function checkUnique(parsed: readonly { entry: DeviceEntry; path: string }[], endpointKey: EndpointKey, problems: ConfigProblem[]): void {
  const routes = new Map<string, string>();
  const owners = new Map<number, { devId: number; path: string }>();
  for (const { entry, path } of parsed) {
    const route = `${entry.devId}/${entry.hostPasid ?? "*"}`;
    const earlier = routes.get(route);
    if (earlier !== undefined) {
      const which = entry.hostPasid === null ? "with no hostPasid" : `with hostPasid ${entry.hostPasid}`;
      problems.push({
        path: `${path}.devId`,
        message: `expected each (devId, hostPasid) once, got dev_id ${entry.devId} ${which} again (${earlier} maps it); merge the two entries or give each its own hostPasid`,
      });
    } else {
      routes.set(route, path);
    }
    const owner = owners.get(entry.endpoint);
    if (owner !== undefined && owner.devId !== entry.devId) {
      problems.push({
        path: `${path}.${endpointKey.key}`,
        message: `expected each guest endpoint to belong to one host device, got ${endpointKey.key} ${endpointKey.show(entry.endpoint)} again (${owner.path} maps it to dev_id ${owner.devId}); give this device its own endpoint`,
      });
    } else if (owner === undefined) {
      owners.set(entry.endpoint, { devId: entry.devId, path });
    }
  }
}
