// The handshake's arithmetic: the host offers, the guest answers with a
// subset, the host checks that the answer only narrows the offer. Any
// disagreement is a NEGOTIATION_FAILED error that names both sides' values.
import { LinkError, LinkErrorCode } from "./link-error.js";
import { PROTOCOL_VERSION } from "./frame-header.js";

/** Feature bits (bit 2 and bits 32-63 are reserved and must be zero in version 1). */
export const Feature = {
  /** Page requests carry each page's record in the vIOMMU model's own layout. */
  RAW_RECORDS: 1 << 0,
  /** The host tells the guest about groups it answered itself (PAGE_CANCELS). */
  CANCELS: 1 << 1,
} as const;
export const ALL_FEATURES = Feature.RAW_RECORDS | Feature.CANCELS;

export interface LinkLimits {
  maxPayload: number;
  maxBatch: number;
  maxInFlight: number;
  heartbeatMs: number;
}

export const DEFAULT_LIMITS: LinkLimits = { maxPayload: 256 * 1024, maxBatch: 256, maxInFlight: 4096, heartbeatMs: 1000 };
/** The least either side must accept for the link to carry a page request at all. */
export const MIN_LIMITS: LinkLimits = { maxPayload: 4096, maxBatch: 1, maxInFlight: 1, heartbeatMs: 50 };
/** Ceilings that bound memory whatever a peer asks for. */
export const MAX_LIMITS: LinkLimits = { maxPayload: 16 * 1024 * 1024, maxBatch: 65536, maxInFlight: 1 << 20, heartbeatMs: 60_000 };
/** Largest payload either side accepts before the handshake has set one. */
export const HANDSHAKE_MAX_PAYLOAD = 64 * 1024;

export interface Capabilities {
  versionMin: number;
  versionMax: number;
  features: number;
  limits: LinkLimits;
}

export interface Agreement {
  version: number;
  features: number;
  limits: LinkLimits;
}

export const OUR_CAPABILITIES: Capabilities = { versionMin: PROTOCOL_VERSION, versionMax: PROTOCOL_VERSION, features: ALL_FEATURES, limits: DEFAULT_LIMITS };

const LIMIT_NAMES: Record<keyof LinkLimits, string> = { maxPayload: "max_payload", maxBatch: "max_batch", maxInFlight: "max_in_flight", heartbeatMs: "heartbeat_ms" };

function fail(message: string): never {
  throw new LinkError(LinkErrorCode.NEGOTIATION_FAILED, message);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Checks that a side's own capabilities are coherent before it offers them. */
export function checkCapabilities(side: string, caps: Capabilities): void {
  if (caps.versionMin < 1 || caps.versionMax < caps.versionMin) fail(`${side} versions ${caps.versionMin}..${caps.versionMax} are not a range`);
  if (caps.features >= 2 ** 32 || caps.features < 0) fail(`${side} features ${hex(caps.features)} use reserved bits 32-63`);
  for (const key of Object.keys(LIMIT_NAMES) as (keyof LinkLimits)[]) {
    const v = caps.limits[key];
    if (!Number.isInteger(v) || v < MIN_LIMITS[key] || v > MAX_LIMITS[key]) {
      fail(`${side} ${LIMIT_NAMES[key]} ${v} is outside ${MIN_LIMITS[key]}..${MAX_LIMITS[key]}`);
    }
  }
}

/** Guest side: the answer to an offer, within both sides' capabilities. */
export function answerOffer(offer: Capabilities, ours: Capabilities): Agreement {
  const version = Math.min(offer.versionMax, ours.versionMax);
  if (version < offer.versionMin || version < ours.versionMin) {
    fail(`no common version: host offers ${offer.versionMin}..${offer.versionMax}, agent speaks ${ours.versionMin}..${ours.versionMax}`);
  }
  const limits = {} as LinkLimits;
  for (const key of Object.keys(LIMIT_NAMES) as (keyof LinkLimits)[]) {
    const offered = offer.limits[key] === 0 ? ours.limits[key] : offer.limits[key];
    // heartbeat_ms narrows upward: a longer interval asks less of the peer.
    limits[key] = key === "heartbeatMs" ? Math.max(offered, ours.limits[key]) : Math.min(offered, ours.limits[key]);
    if (limits[key] < MIN_LIMITS[key]) {
      fail(`${LIMIT_NAMES[key]}: host offers ${offer.limits[key]}, agent accepts ${ours.limits[key]}, the least usable is ${MIN_LIMITS[key]}`);
    }
    // Only heartbeat_ms can come out above its ceiling (it narrows upward); a host asking
    // for more would switch the agent's liveness check off.
    if (limits[key] > MAX_LIMITS[key]) {
      fail(`${LIMIT_NAMES[key]}: host offers ${offer.limits[key]}, above the ceiling ${MAX_LIMITS[key]}`);
    }
  }
  return { version, features: (offer.features & ours.features) >>> 0, limits };
}

/** Host side: checks that the guest's answer only narrows the offer. */
export function checkAnswer(offer: Capabilities, answer: Agreement): Agreement {
  if (answer.version < offer.versionMin || answer.version > offer.versionMax) {
    fail(`agent chose version ${answer.version}, host offered ${offer.versionMin}..${offer.versionMax}`);
  }
  const extra = answer.features & ~offer.features;
  if (extra !== 0 || answer.features >= 2 ** 32) {
    fail(`agent accepted features ${hex(answer.features)}, host offered ${hex(offer.features)} (not offered: ${hex(extra >>> 0)})`);
  }
  const limits = {} as LinkLimits;
  for (const key of Object.keys(LIMIT_NAMES) as (keyof LinkLimits)[]) {
    const got = answer.limits[key] === 0 ? offer.limits[key] : answer.limits[key];
    const widened = key === "heartbeatMs" ? got < offer.limits[key] || got > MAX_LIMITS.heartbeatMs : got > offer.limits[key];
    if (widened) fail(`${LIMIT_NAMES[key]}: agent answered ${got}, host offered ${offer.limits[key]}; an answer may only narrow the offer`);
    if (got < MIN_LIMITS[key]) fail(`${LIMIT_NAMES[key]}: agent answered ${got}, the least usable is ${MIN_LIMITS[key]}`);
    limits[key] = got;
  }
  return { version: answer.version, features: answer.features >>> 0, limits };
}
