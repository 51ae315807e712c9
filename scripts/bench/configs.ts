// The relay and agent configurations the benchmark runs with. Devices 1..N
// carry the load the agent answers at once; HOLD_DEV, when present, carries
// the groups a holding guest keeps (a long deadline, its own PASID so the
// agent routes it to the app handler).
import { CORE_DEFAULTS } from "../../src/relay/relay-core.js";

export const HOLD_DEV = 1000;
export const HOLD_PASID = 77;
export const LOAD_PASID = 1;
/** The longest deadline the relay accepts: held groups must outlive the whole measurement. */
export const HOLD_DEADLINE_MS = 60_000;

export interface RelayConfigOptions {
  devices: number;
  /** Per-device deadline of devices 1..N; the relay's default 100 ms when absent. */
  deadlineMs?: number;
  withHoldDevice?: boolean;
  /** Groups the relay lets the guest hold; the relay's default 4096 when absent. */
  maxInFlight?: number;
}

export function relayConfig(o: RelayConfigOptions): object {
  const devices: object[] = [];
  for (let d = 1; d <= o.devices; d++) {
    devices.push({ devId: d, endpointId: 0x10 + d, name: `bench${d}`, ...(o.deadlineMs ? { deadlineMs: o.deadlineMs } : {}) });
  }
  if (o.withHoldDevice) devices.push({ devId: HOLD_DEV, endpointId: HOLD_DEV, name: "held", deadlineMs: HOLD_DEADLINE_MS });
  return {
    viommu: "virtio-iommu",
    devices,
    // The relay reads only while it holds fewer than maxHeld: to let the guest hold maxInFlight, it must hold that many and a read more.
    ...(o.maxInFlight ? { limits: { maxInFlight: o.maxInFlight, maxHeld: o.maxInFlight + CORE_DEFAULTS.readAhead } } : {}),
  };
}

/** Success for every address the emulator's load raises (it steps up from 0). */
const ANSWER_AT_ONCE = { handler: "policy", otherwise: "invalid", rules: [{ start: "0x0", end: "0x800000000000", perm: "rwx", answer: "success" }] };

/** The shipped agent's config: the policy handler answers every group at once. */
export function agentConfig(credits: number, rawRecords = false): object {
  return { appSocket: "none", credits, rawRecords, handlers: [ANSWER_AT_ONCE] };
}

/** The holding agent's config: a window of `credits`, HOLD_PASID to the app handler (a program that answers late), the rest at once. */
export function holdingAgentConfig(credits: number, appSocket: string): object {
  return { appSocket, credits, maxInFlight: credits, handlers: [{ pasid: HOLD_PASID, handler: "app" }, ANSWER_AT_ONCE] };
}
