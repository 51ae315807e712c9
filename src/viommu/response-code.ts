// Answer codes on the way back: a model's native code becomes the guest
// link's ResponseCode, and the link's code becomes the one iommufd takes.
// Each mapping says whether its input was a code it knows, so the caller can
// count unknown answers instead of silently turning them into something else.
import { iopf } from "../gen/guest_link.js";
import { KernelCode } from "../fault/fault-group.js";

export { KernelCode };

export const ResponseCode = iopf.link.v1.ResponseCode;
export type ResponseCode = iopf.link.v1.ResponseCode;

export interface CodeMapping<T> {
  code: T;
  /** The input was not a code of its table; code is then INVALID, the answer that keeps the device safe. */
  unknown: boolean;
}

/**
 * The iommufd code for a link answer. iommufd has no FAILURE, and PCIe
 * "Response Failure" would disable PRI for the whole function, so FAILURE
 * becomes INVALID (a known code, not counted as unknown). Anything else is
 * unknown and becomes INVALID.
 */
export function linkToKernel(code: number): CodeMapping<KernelCode> {
  switch (code) {
    case ResponseCode.RESPONSE_SUCCESS:
      return { code: KernelCode.SUCCESS, unknown: false };
    case ResponseCode.RESPONSE_INVALID:
    case ResponseCode.RESPONSE_FAILURE:
      return { code: KernelCode.INVALID, unknown: false };
    default:
      return { code: KernelCode.INVALID, unknown: true };
  }
}

/** A model's answer table: native code to link code, and back. */
export interface NativeCodes {
  readonly success: number;
  readonly invalid: number;
  readonly failure: number;
}

export function nativeToLink(table: NativeCodes, native: number): CodeMapping<ResponseCode> {
  switch (native) {
    case table.success:
      return { code: ResponseCode.RESPONSE_SUCCESS, unknown: false };
    case table.invalid:
      return { code: ResponseCode.RESPONSE_INVALID, unknown: false };
    case table.failure:
      return { code: ResponseCode.RESPONSE_FAILURE, unknown: false };
    default:
      return { code: ResponseCode.RESPONSE_INVALID, unknown: true };
  }
}

/** The native code for a link code; throws on a value that is not a ResponseCode (a programming error, not guest input). */
export function linkToNative(model: string, table: NativeCodes, code: ResponseCode): number {
  switch (code) {
    case ResponseCode.RESPONSE_SUCCESS:
      return table.success;
    case ResponseCode.RESPONSE_INVALID:
      return table.invalid;
    case ResponseCode.RESPONSE_FAILURE:
      return table.failure;
    default:
      throw new RangeError(`${model} page response: code must be a ResponseCode (0 SUCCESS, 1 INVALID, 2 FAILURE), got ${code as number}`);
  }
}
