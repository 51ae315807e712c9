// Every message of the handoff protocol (docs/handoff.md), once: its shape,
// its bounds, and the check that turns untrusted JSON into a request or
// into one line saying what was expected and what came. Device entries are
// checked later, by the device map's own parser, against the relay's vIOMMU
// model.
import { MAX_FDS_PER_MESSAGE } from "../../kernel/unix-rights.js";
import { peerText } from "../../link/peer-text.js";

export const HANDOFF_VERSION = 1;

/** The largest reply: a client may read replies into a buffer of this size. */
export const MAX_REPLY_BYTES = 4096;

/** The most queues one attach names: as many as one message carries fds for, so that every reply fits MAX_REPLY_BYTES. */
export const MAX_QUEUES_PER_ATTACH = MAX_FDS_PER_MESSAGE;

/** The largest process id (pid_t is a signed 32-bit integer). */
const PID_MAX = 0x7fff_ffff;

export interface AttachQueue {
  /** Index of the fault fd in the message's fds; null: add devices to a queue attached before. */
  fd: number | null;
  faultId: number;
  viommu: string | null;
  /** Device entries as the config file writes them, unchecked. */
  devices: unknown[];
  /** Accept a kernel emulator's fd instead of a fault fd (tests). */
  emulator: boolean;
}

export type HandoffRequest =
  /** vmmPid: the VMM whose life the queues are tied to, when a manager (not the VMM itself) hands them over. */
  | { op: "attach"; queues: AttachQueue[]; vmmPid: number | null }
  | { op: "detach"; faultId: number; devIds: number[] | null }
  /** Keeper to relay only: the VMM (vmmPid) exited, let go of every queue without answering. */
  | { op: "drop"; vmmPid: number };

export type HandoffReply =
  /** op: the request's op when it had a string one, else null. */
  | { v: number; op: string | null; ok: false; error: string }
  | { v: number; op: "attach"; ok: true; queues: { faultId: number; devices: number }[] }
  | { v: number; op: "detach"; ok: true; answered: number; closed: boolean }
  | { v: number; op: "drop"; ok: true };

/** A request that cannot be carried out: the reply's one line. */
export class HandoffError extends Error {
  override readonly name = "HandoffError";
}

const U32_MAX = 0xffff_ffff;

function show(v: unknown): string {
  return peerText(v === undefined ? "nothing" : JSON.stringify(v) ?? String(v), 80);
}

function fail(where: string, expected: string, got: unknown): never {
  throw new HandoffError(`${where}: expected ${expected}, got ${show(got)}`);
}

function object(v: unknown, where: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) fail(where, "a JSON object", v);
  return v as Record<string, unknown>;
}

function onlyKeys(o: Record<string, unknown>, where: string, keys: readonly string[]): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`${where}.${peerText(k, 40)}`, `one of the keys ${keys.join(", ")}`, "an unknown key");
}

function u32(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > U32_MAX) fail(where, "an integer 0..4294967295", v);
  return v as number;
}

function pid(v: unknown, where: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > PID_MAX) fail(where, `a process id, an integer 1..${PID_MAX}`, v);
  return v as number;
}

function parseQueue(v: unknown, where: string, fdCount: number): AttachQueue {
  const q = object(v, where);
  onlyKeys(q, where, ["fd", "faultId", "viommu", "devices", "emulator"]);
  let fd: number | null = null;
  if (q.fd !== undefined) {
    fd = u32(q.fd, `${where}.fd`);
    if (fd >= fdCount) throw new HandoffError(`${where}.fd: index ${fd}, but the message carries ${fdCount} fd${fdCount === 1 ? "" : "s"}; send the fault fd with SCM_RIGHTS and give its index`);
  }
  if (q.viommu !== undefined && typeof q.viommu !== "string") fail(`${where}.viommu`, "a vIOMMU model name", q.viommu);
  if (!Array.isArray(q.devices)) fail(`${where}.devices`, "an array of device entries", q.devices);
  if (q.emulator !== undefined && typeof q.emulator !== "boolean") fail(`${where}.emulator`, "true or false", q.emulator);
  const faultId = u32(q.faultId, `${where}.faultId`);
  // A queue handed over with its fd may start with no devices; without one there is nothing to do, which is most likely a mistake.
  if (fd === null && q.devices.length === 0) {
    throw new HandoffError(`${where}.devices: expected at least one device to add to fault ${faultId} (an attach without an fd adds devices to a queue handed over before); got []`);
  }
  return { fd, faultId, viommu: (q.viommu as string | undefined) ?? null, devices: q.devices as unknown[], emulator: q.emulator === true };
}

/** A request as sent: its JSON object, and its op when it has a string one (what a refusal repeats). */
export interface DecodedRequest {
  op: string | null;
  body: Record<string, unknown>;
}

/** The request's JSON object; throws HandoffError when the text is not one. */
export function decodeRequest(text: string): DecodedRequest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new HandoffError(`expected one JSON object per message, got text that is not JSON (${peerText((err as Error).message, 80)})`);
  }
  const body = object(raw, "(message)");
  return { op: typeof body.op === "string" ? body.op : null, body };
}

/** Checks a request against the protocol; throws HandoffError with the reply's line. `internal`: from the keeper, which may also send "drop". */
export function checkRequest({ body: o }: DecodedRequest, fdCount: number, internal = false): HandoffRequest {
  if (o.v !== HANDOFF_VERSION) fail("v", `${HANDOFF_VERSION} (the protocol version this relay speaks)`, o.v);
  switch (o.op) {
    case "attach": {
      onlyKeys(o, "attach", ["v", "op", "queues", "vmmPid"]);
      if (!Array.isArray(o.queues) || o.queues.length === 0) fail("attach.queues", "a non-empty array of queues", o.queues);
      const raw = o.queues as unknown[];
      if (raw.length > MAX_QUEUES_PER_ATTACH) throw new HandoffError(`attach.queues: expected at most ${MAX_QUEUES_PER_ATTACH} queues in one attach, got ${raw.length}; send several attach requests`);
      const queues = raw.map((q, i) => parseQueue(q, `attach.queues[${i}]`, fdCount));
      const used = queues.flatMap((q) => (q.fd === null ? [] : [q.fd]));
      if (new Set(used).size !== used.length) throw new HandoffError("attach.queues: two queues name the same fd index; each fault fd is one queue");
      if (used.length !== fdCount) throw new HandoffError(`attach: the message carries ${fdCount} fd${fdCount === 1 ? "" : "s"} but the queues use ${used.length}; send exactly the fault fds the queues name`);
      const ids = queues.map((q) => q.faultId);
      if (new Set(ids).size !== ids.length) throw new HandoffError("attach.queues: a faultId appears twice; give each queue once");
      const vmmPid = o.vmmPid === undefined ? null : pid(o.vmmPid, "attach.vmmPid");
      return { op: "attach", queues, vmmPid };
    }
    case "detach": {
      onlyKeys(o, "detach", ["v", "op", "faultId", "devIds"]);
      if (fdCount > 0) throw new HandoffError(`detach: expected no fds with a detach, got ${fdCount}`);
      let devIds: number[] | null = null;
      if (o.devIds !== undefined) {
        if (!Array.isArray(o.devIds) || o.devIds.length === 0) fail("detach.devIds", "a non-empty array of device ids (leave it out to detach the whole queue)", o.devIds);
        devIds = (o.devIds as unknown[]).map((d, i) => u32(d, `detach.devIds[${i}]`));
      }
      return { op: "detach", faultId: u32(o.faultId, "detach.faultId"), devIds };
    }
    case "drop":
      if (internal) {
        onlyKeys(o, "drop", ["v", "op", "vmmPid"]);
        return { op: "drop", vmmPid: pid(o.vmmPid, "drop.vmmPid") };
      }
      return fail("op", `"attach" or "detach"`, o.op);
    default:
      return fail("op", `"attach" or "detach"`, o.op);
  }
}

export function encodeReply(reply: HandoffReply): Buffer {
  return Buffer.from(JSON.stringify(reply));
}

/** The reply to a request that was refused, its error cut (on a character) so that the reply fits MAX_REPLY_BYTES. */
export function refusal(op: string | null, error: string): HandoffReply {
  const reply = { v: HANDOFF_VERSION, op: op === null ? null : peerText(op, 20), ok: false as const, error: "" };
  const room = MAX_REPLY_BYTES - encodeReply(reply).length;
  if (jsonBytes(error) <= room) return { ...reply, error };
  const ellipsis = "...";
  let used = jsonBytes(ellipsis);
  let cut = "";
  for (const ch of error) {
    used += jsonBytes(ch);
    if (used > room) break;
    cut += ch;
  }
  return { ...reply, error: cut + ellipsis };
}

/** The bytes s takes inside a JSON string. */
function jsonBytes(s: string): number {
  return Buffer.byteLength(JSON.stringify(s)) - 2;
}
