// What every fault handler is: a function of one page request group that
// returns the group's one answer, now or later. The dispatcher (guard.ts)
// turns throws and overruns into INVALID, so a handler may simply fail.
import type { PageRequestColumns } from "../../src/link/hot-codec.js";
import { pb, WirePageRequest } from "../../src/link/messages.js";
import { iopf } from "../../src/gen/guest_link.js";
import { Perm } from "../../src/viommu/record.js";

export type ResponseCode = iopf.link.v1.ResponseCode;
export const SUCCESS: ResponseCode = pb.ResponseCode.RESPONSE_SUCCESS;
export const INVALID: ResponseCode = pb.ResponseCode.RESPONSE_INVALID;
export const FAILURE: ResponseCode = pb.ResponseCode.RESPONSE_FAILURE;

/** Page permission bits of the wire (proto Page.perm): one declaration, in the vIOMMU layer. */
export { Perm };

export type AnswerName = "success" | "invalid" | "failure";
const BY_NAME: Record<AnswerName, ResponseCode> = { success: SUCCESS, invalid: INVALID, failure: FAILURE };

export function isAnswerName(s: unknown): s is AnswerName {
  return typeof s === "string" && Object.hasOwn(BY_NAME, s);
}

export function codeOf(name: AnswerName): ResponseCode {
  return BY_NAME[name];
}

export function answerName(code: ResponseCode): AnswerName {
  return code === SUCCESS ? "success" : code === FAILURE ? "failure" : "invalid";
}

/** Whether n is one of the protocol's response codes. */
export function isResponseCode(n: unknown): n is ResponseCode {
  return n === SUCCESS || n === INVALID || n === FAILURE;
}

/** The answer of a group whose pages were judged one by one: the worst one wins. */
export function worst(a: ResponseCode, b: ResponseCode): ResponseCode {
  if (a === FAILURE || b === FAILURE) return FAILURE;
  if (a === INVALID || b === INVALID) return INVALID;
  return SUCCESS;
}

export interface FaultContext {
  /** Aborted when the host cancels the group, the session ends, or the budget runs out. */
  signal: AbortSignal;
}

export interface FaultHandler {
  handle(request: WirePageRequest, ctx: FaultContext): ResponseCode | Promise<ResponseCode>;
  /**
   * The same answer, given at once, for request i of a decoded batch: a
   * handler that always answers synchronously offers it, and the agent then
   * answers the group without building an object for it or its pages.
   */
  handleColumns?(requests: PageRequestColumns, i: number): ResponseCode;
}

export function permString(perm: number): string {
  return (perm & Perm.READ ? "r" : "-") + (perm & Perm.WRITE ? "w" : "-") + (perm & Perm.EXEC ? "x" : "-") + (perm & Perm.PRIV ? "p" : "");
}
