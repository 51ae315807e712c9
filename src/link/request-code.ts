// Request codes of the guest link: the first u32 of every frame header.
// Declared once, in proto/guest_link.proto (enum RequestCode); this gives
// the generated enum its checks and names.
import { iopf } from "../gen/guest_link.js";

export const RequestCode = iopf.link.v1.RequestCode;
export type RequestCode = iopf.link.v1.RequestCode;

export function isRequestCode(code: number): code is RequestCode {
  return code !== RequestCode.REQUEST_CODE_UNSPECIFIED && RequestCode[code] !== undefined;
}

export function requestCodeName(code: number): string {
  return isRequestCode(code) ? RequestCode[code] : `UNKNOWN(${code})`;
}
