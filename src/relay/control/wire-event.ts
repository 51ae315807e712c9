// The live event stream's JSON: the relay's events as viewers see them, the
// filter a viewer subscribes with, and the messages of /api/events. Shared by
// the server, iopfctl and (by shape) the dashboard page.
import { RelayEvent } from "../relay-core.js";

/**
 * "expired" is an answer decided by a group's deadline: the guest did not
 * answer in time. "ended": a group that got no answer from the relay (the
 * kernel answered it itself, or its source went away).
 */
export const EVENT_KINDS = ["group-read", "sent", "answered", "expired", "ended", "dropped", "session-up", "session-down"] as const;
export type WireKind = (typeof EVENT_KINDS)[number];

export interface WireEvent {
  /** Wall-clock milliseconds when the relay saw it. */
  t: number;
  kind: WireKind;
  dev?: number;
  pasid?: number;
  pages?: number;
  cookie?: number;
  code?: "success" | "invalid";
  origin?: string;
  latencyUs?: number;
  count?: number;
  epoch?: number;
  reason?: string;
  tag?: number;
  agent?: string;
}

/** What a viewer asks for; an absent or empty list lets everything through. */
export interface EventFilter {
  dev?: number[];
  pasid?: number[];
  kind?: WireKind[];
}

/** Client to server: the first one starts the stream; later ones change the filter. */
export interface SubscribeMessage extends EventFilter {
  type: "subscribe";
}

/** Server to client. */
export type StreamMessage =
  | { type: "hello"; software: string; kinds: readonly WireKind[] }
  | { type: "events"; events: WireEvent[] }
  /** Events that matched the filter but were dropped because the viewer read too slowly. */
  | { type: "lost"; count: number }
  | { type: "error"; message: string };

export function toWireEvent(e: RelayEvent, t: number): WireEvent {
  switch (e.kind) {
    case "group-read":
      return { t, kind: e.kind, dev: e.devId, pasid: e.pasid, pages: e.pages, cookie: e.cookie };
    case "answered":
      return {
        t, kind: e.origin === "deadline" ? "expired" : "answered", dev: e.devId, pasid: e.pasid,
        code: e.code === 0 ? "success" : "invalid", origin: e.origin, latencyUs: e.latencyUs,
      };
    case "ended":
      return { t, kind: e.kind, dev: e.devId, pasid: e.pasid, reason: e.reason };
    case "sent":
      return { t, kind: e.kind, count: e.count, epoch: e.epoch };
    case "dropped":
      return { t, kind: e.kind, reason: e.reason, tag: e.tag };
    case "session-up":
      return { t, kind: e.kind, epoch: e.epoch, agent: e.agent };
    case "session-down":
      return { t, kind: e.kind, epoch: e.epoch, reason: e.reason };
  }
}

/**
 * Device and PASID filters keep only events of a device, except session
 * changes, which matter to anyone watching any device.
 */
export function matches(f: EventFilter, e: WireEvent): boolean {
  if (f.kind && f.kind.length > 0 && !f.kind.includes(e.kind)) return false;
  const session = e.kind === "session-up" || e.kind === "session-down";
  if (f.dev && f.dev.length > 0 && !session && (e.dev === undefined || !f.dev.includes(e.dev))) return false;
  if (f.pasid && f.pasid.length > 0 && !session && (e.pasid === undefined || !f.pasid.includes(e.pasid))) return false;
  return true;
}

/** Checks a viewer's subscribe message; returns the filter or a message saying what was wrong. */
export function parseSubscribe(text: string): EventFilter | string {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return `expected a JSON message like {"type":"subscribe","dev":[1],"kind":["group-read"]}, got ${JSON.stringify(text.slice(0, 80))}`;
  }
  if (typeof raw !== "object" || raw === null || (raw as { type?: unknown }).type !== "subscribe") {
    return `expected {"type":"subscribe", ...filters}, got ${JSON.stringify(raw).slice(0, 80)}`;
  }
  const m = raw as Record<string, unknown>;
  const filter: EventFilter = {};
  for (const key of ["dev", "pasid"] as const) {
    const v = m[key];
    if (v === undefined) continue;
    if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x) && x >= 0)) return `${key}: expected an array of non-negative integers, got ${JSON.stringify(v)}`;
    filter[key] = v as number[];
  }
  if (m.kind !== undefined) {
    const v = m.kind;
    if (!Array.isArray(v) || !v.every((x) => (EVENT_KINDS as readonly unknown[]).includes(x))) {
      return `kind: expected an array of ${EVENT_KINDS.join(", ")}, got ${JSON.stringify(v)}`;
    }
    filter.kind = v as WireKind[];
  }
  return filter;
}
