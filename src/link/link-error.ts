// Protocol errors of the guest link. Each carries a code that travels in an
// ERROR frame, so both ends log the same reason.

export const LinkErrorCode = {
  /** Header version bits are not a version this side speaks. */
  BAD_VERSION: 1,
  /** A flag bit that is reserved, or a combination that means nothing, is set. */
  BAD_FLAGS: 2,
  /** The request code is not one of the protocol's. */
  UNKNOWN_CODE: 3,
  /** The payload size is above the negotiated maximum. */
  PAYLOAD_TOO_LARGE: 4,
  /** A frame boundary holds 0xFF but not a valid sync marker. */
  BAD_MARKER: 5,
  /** The payload does not decode as the protobuf message of its code. */
  MALFORMED_PAYLOAD: 6,
  /** A valid message the sender may not send, or not in this state. */
  UNEXPECTED_MESSAGE: 7,
  /** Version, features or limits cannot be agreed. */
  NEGOTIATION_FAILED: 8,
  /** More entries in one batch than the negotiated max_batch. */
  BATCH_TOO_LARGE: 9,
  /** Nothing arrived for three heartbeat intervals. */
  HEARTBEAT_TIMEOUT: 10,
  /** No Welcome arrived in time after a Hello. */
  HANDSHAKE_TIMEOUT: 11,
  /** The host sent more groups than the guest's credit window allows. */
  CREDIT_EXCEEDED: 12,
} as const;

export type LinkErrorCode = (typeof LinkErrorCode)[keyof typeof LinkErrorCode];

const names = new Map<number, string>(Object.entries(LinkErrorCode).map(([name, code]) => [code, name]));

export function linkErrorName(code: number): string {
  return names.get(code) ?? `UNKNOWN_ERROR(${code})`;
}

export class LinkError extends Error {
  override readonly name = "LinkError";
  constructor(
    readonly code: LinkErrorCode,
    message: string,
  ) {
    super(`${linkErrorName(code)}: ${message}`);
  }
}
