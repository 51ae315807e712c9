// fast-check generators for every guest link message, as frames.
import fc from "fast-check";
import { Flag } from "../../src/link/frame-header.js";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import type { Encodable } from "../../src/link/frame-sender.js";

const u32 = fc.nat({ max: 0xffffffff });
// 64-bit fields travel as numbers: exact below 2^53 and when 4 KiB-aligned.
const u64 = fc.oneof(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: 2 ** 52 - 1 }).map((p) => p * 4096));
const limits = fc.record({ maxPayload: u32, maxBatch: u32, maxInFlight: u32, heartbeatMs: u32 });
const endpoint = fc.record({ endpointId: u32, name: fc.string({ maxLength: 20 }), deadlineMs: u32, pasidCapable: fc.boolean() });
const page = fc.record({ address: u64, perm: fc.nat({ max: 15 }), raw: fc.uint8Array({ maxLength: 48 }) });
const pageRequest = fc.record({
  tag: u32, endpoint: u32, pasid: fc.nat({ max: 0xfffff }), pasidValid: fc.boolean(), groupIndex: fc.nat({ max: 511 }),
  pages: fc.array(page, { maxLength: 4 }), budgetUs: u32,
});

export interface FrameCase {
  code: number;
  flags: number;
  id: number;
  type: Encodable<object>;
  body: object;
  kind: string;
}

function frame(kind: string, code: number, flags: number, type: Encodable<never>, body: fc.Arbitrary<object>): fc.Arbitrary<FrameCase> {
  return fc.tuple(u32.filter((n) => n > 0), body).map(([id, b]) => ({ kind, code, flags, id, type: type as Encodable<object>, body: b }));
}

export const frameCase: fc.Arbitrary<FrameCase> = fc.oneof(
  frame("hello", RequestCode.HELLO, Flag.NEED_REPLY, pb.Hello, fc.record({
    versionMin: u32, versionMax: u32, features: u64, limits, sessionEpoch: u64, model: fc.nat({ max: 3 }),
    endpoints: fc.array(endpoint, { maxLength: 3 }), software: fc.string({ maxLength: 30 }),
  })),
  frame("welcome", RequestCode.HELLO, Flag.REPLY, pb.Welcome, fc.record({ version: u32, features: u64, limits, sessionEpoch: u64, software: fc.string({ maxLength: 30 }) })),
  frame("page-requests", RequestCode.PAGE_REQUESTS, 0, pb.PageRequestBatch, fc.record({ requests: fc.array(pageRequest, { maxLength: 5 }) })),
  frame("page-responses", RequestCode.PAGE_RESPONSES, 0, pb.PageResponseBatch, fc.record({ responses: fc.array(fc.record({ tag: u32, code: fc.nat({ max: 2 }) }), { maxLength: 8 }) })),
  frame("credit", RequestCode.CREDIT, 0, pb.CreditGrant, fc.record({ window: u32 })),
  frame("page-cancels", RequestCode.PAGE_CANCELS, 0, pb.PageCancelBatch, fc.record({ tags: fc.array(u32, { maxLength: 8 }), reason: fc.nat({ max: 3 }) })),
  frame("heartbeat", RequestCode.HEARTBEAT, 0, pb.Heartbeat, fc.record({ sentUs: u64 })),
  // ErrorCode is an open enum, an int32 on the wire: any int32 round-trips, not only the codes this side knows.
  frame("error", RequestCode.ERROR, 0, pb.Error, fc.record({ code: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), message: fc.string({ maxLength: 40 }) })),
  frame("goodbye", RequestCode.GOODBYE, 0, pb.Goodbye, fc.record({ reason: fc.nat({ max: 2 }), message: fc.string({ maxLength: 40 }) })),
);
