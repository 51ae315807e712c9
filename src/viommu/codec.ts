// The interface every vIOMMU model's encoding implements, so the relay and
// the guest agent pick one by the negotiated model and never branch on it.
import type { iopf } from "../gen/guest_link.js";
import type { FieldLimits, GuestGroup, GuestPage, PageRequestRecord, PageResponseRecord } from "./record.js";
import type { CodeMapping, NativeCodes, ResponseCode } from "./response-code.js";

export interface ViommuCodec {
  readonly model: iopf.link.v1.ViommuModel;
  /** Name used in logs and errors. */
  readonly name: string;
  /** Bytes of one page request record, and of one native page response. */
  readonly requestSize: number;
  readonly responseSize: number;
  /** What the records can hold; group fields beyond these cannot be shown to this guest. */
  readonly limits: FieldLimits;
  /** The model's native answer codes. */
  readonly codes: NativeCodes;
  /** The raw record of one page; LAST only when isLast. Throws RangeError when a field does not fit. */
  encodePageRequest(group: GuestGroup, page: GuestPage, isLast: boolean): Uint8Array;
  /** Throws RangeError on a wrong size or a record that is not a page request. */
  decodePageRequest(bytes: Uint8Array): PageRequestRecord;
  /** The guest's native answer for a group. Throws RangeError when a field does not fit. */
  encodePageResponse(group: GuestGroup, code: ResponseCode): Uint8Array;
  /** Throws RangeError on a wrong size or a record that is not a page response. */
  decodePageResponse(bytes: Uint8Array): PageResponseRecord;
  /** The link code for a native answer code; unknown codes become INVALID and say so. */
  toLinkCode(nativeCode: number): CodeMapping<ResponseCode>;
}
