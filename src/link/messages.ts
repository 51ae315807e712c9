// Every message of the guest link, keyed by what a frame is: its request
// code, and whether it is a reply or an error reply. One place maps frames
// to protobuf types, in both directions.
import { iopf } from "../gen/guest_link.js";
import { Flag, FrameHeader } from "./frame-header.js";
import { decodePageRequests, decodePageResponses, PageRequestColumns, PageResponseColumns } from "./hot-codec.js";
import { LinkError, LinkErrorCode } from "./link-error.js";
import { RequestCode, requestCodeName } from "./request-code.js";

export const pb = iopf.link.v1;

/** Wire types as decoded: protobufjs fills every scalar (from prototype defaults) and every repeated field. */
export interface WireLimits {
  maxPayload: number;
  maxBatch: number;
  maxInFlight: number;
  heartbeatMs: number;
}
export interface WireEndpoint {
  endpointId: number;
  name: string;
  deadlineMs: number;
  pasidCapable: boolean;
}
export interface WireHello {
  versionMin: number;
  versionMax: number;
  features: number;
  /** A Hello without limits decodes with all zeros: "no preference". */
  limits: WireLimits;
  sessionEpoch: number;
  model: iopf.link.v1.ViommuModel;
  endpoints: WireEndpoint[];
  software: string;
}
export interface WireWelcome {
  version: number;
  features: number;
  limits: WireLimits;
  sessionEpoch: number;
  software: string;
}
export interface WirePage {
  address: number;
  perm: number;
  raw: Uint8Array;
}
export interface WirePageRequest {
  tag: number;
  endpoint: number;
  pasid: number;
  pasidValid: boolean;
  groupIndex: number;
  pages: WirePage[];
  budgetUs: number;
}
export interface WirePageResponse {
  tag: number;
  code: iopf.link.v1.ResponseCode;
}
export interface WireError {
  /** Open, as every proto3 enum: a peer may send a code this side does not know. */
  code: iopf.link.v1.ErrorCode;
  message: string;
}
export interface WireGoodbye {
  reason: iopf.link.v1.GoodbyeReason;
  message: string;
}

/**
 * A decoded inbound frame. `reply` frames answer the request with the same
 * id; only HELLO, HEARTBEAT and GOODBYE have replies (validateHeader).
 */
export type Inbound =
  | { kind: "hello"; id: number; needReply: boolean; body: WireHello }
  | { kind: "welcome"; id: number; body: WireWelcome }
  | { kind: "error-reply"; code: number; id: number; body: WireError }
  | { kind: "page-requests"; id: number; body: PageRequestColumns }
  | { kind: "page-responses"; id: number; body: PageResponseColumns }
  | { kind: "credit"; id: number; body: { window: number } }
  | { kind: "page-cancels"; id: number; body: { tags: number[]; reason: iopf.link.v1.CancelReason } }
  | { kind: "heartbeat"; id: number; needReply: boolean; reply: boolean; body: { sentUs: number } }
  | { kind: "error"; id: number; body: WireError }
  | { kind: "goodbye"; id: number; needReply: boolean; reply: boolean; body: WireGoodbye };

const NO_LIMITS: WireLimits = Object.freeze({ maxPayload: 0, maxBatch: 0, maxInFlight: 0, heartbeatMs: 0 });

interface Decoder<T> {
  decode(reader: Uint8Array): T;
}

function decode<T>(type: Decoder<unknown>, header: FrameHeader, payload: Buffer): T {
  try {
    return type.decode(payload) as T;
  } catch (err) {
    throw new LinkError(LinkErrorCode.MALFORMED_PAYLOAD, `${requestCodeName(header.code)} payload of ${payload.length} bytes does not decode: ${(err as Error).message}`);
  }
}

/** Decodes a frame whose header already passed validateHeader(). */
export function decodeFrame(header: FrameHeader, payload: Buffer): Inbound {
  const id = header.id;
  const reply = (header.flags & Flag.REPLY) !== 0;
  const needReply = (header.flags & Flag.NEED_REPLY) !== 0;
  if ((header.flags & Flag.ERROR) !== 0) {
    return { kind: "error-reply", code: header.code, id, body: decode(pb.Error, header, payload) };
  }
  switch (header.code) {
    case RequestCode.HELLO:
      if (reply) {
        const welcome = decode<WireWelcome>(pb.Welcome, header, payload);
        // Set on the decoded instance itself: a copy would lose the defaults its prototype holds.
        welcome.limits ??= NO_LIMITS;
        return { kind: "welcome", id, body: welcome };
      }
      const hello = decode<WireHello>(pb.Hello, header, payload);
      hello.limits ??= NO_LIMITS;
      return { kind: "hello", id, needReply, body: hello };
    case RequestCode.HEARTBEAT:
      return { kind: "heartbeat", id, needReply, reply, body: decode(pb.Heartbeat, header, payload) };
    case RequestCode.GOODBYE:
      return { kind: "goodbye", id, needReply, reply, body: decode(pb.Goodbye, header, payload) };
  }
  switch (header.code) {
    case RequestCode.PAGE_REQUESTS:
      return { kind: "page-requests", id, body: decode({ decode: decodePageRequests }, header, payload) };
    case RequestCode.PAGE_RESPONSES:
      return { kind: "page-responses", id, body: decode({ decode: decodePageResponses }, header, payload) };
    case RequestCode.CREDIT:
      return { kind: "credit", id, body: decode(pb.CreditGrant, header, payload) };
    case RequestCode.PAGE_CANCELS:
      return { kind: "page-cancels", id, body: decode(pb.PageCancelBatch, header, payload) };
    case RequestCode.ERROR:
      return { kind: "error", id, body: decode(pb.Error, header, payload) };
  }
  throw new LinkError(LinkErrorCode.UNKNOWN_CODE, `request code ${header.code} has no decoder`);
}
