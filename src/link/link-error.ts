// Protocol errors of the guest link. Each carries a code that travels in an
// ERROR frame, so both ends log the same reason. The codes are declared
// once, in proto/guest_link.proto (enum ErrorCode).
import { iopf } from "../gen/guest_link.js";

export const LinkErrorCode = iopf.link.v1.ErrorCode;
export type LinkErrorCode = iopf.link.v1.ErrorCode;

export function isLinkErrorCode(code: number): code is LinkErrorCode {
  return code !== LinkErrorCode.ERROR_CODE_UNSPECIFIED && LinkErrorCode[code] !== undefined;
}

/** A code's name; a peer may send codes this side does not know, shown by number. */
export function linkErrorName(code: number): string {
  return isLinkErrorCode(code) ? LinkErrorCode[code] : `UNKNOWN_ERROR(${code})`;
}

export class LinkError extends Error {
  override readonly name = "LinkError";
  /**
   * `detail` alone is what an ERROR frame's message carries: the code
   * travels beside it, and the receiver names it once.
   */
  constructor(
    readonly code: LinkErrorCode,
    readonly detail: string,
  ) {
    super(`${linkErrorName(code)}: ${detail}`);
  }
}
