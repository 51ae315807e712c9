// docs/protocol.md section 8, the worked example, is checked against the
// code: a HostLink and a GuestLink run the example's session, and every hex
// block of the section must be exactly a unit one of them wrote, in order;
// each block must also decode back to the values the example names.
import test from "ava";
import { GuestLink, GuestSession } from "../../src/link/guest-link.js";
import { HostLink, HostSession } from "../../src/link/host-link.js";
import { FrameHeader, HEADER_SIZE, readHeader, validateHeader } from "../../src/link/frame-header.js";
import { decodeFrame, Inbound, pb, WirePageRequest, WirePageResponse } from "../../src/link/messages.js";
import { ALL_FEATURES, DEFAULT_LIMITS, MAX_LIMITS, OUR_CAPABILITIES } from "../../src/link/negotiation.js";
import { RequestCode } from "../../src/link/request-code.js";
import { encodeMarker, MARKER_FIRST_BYTE, MARKER_SIZE, markerKindAt, MarkerKind } from "../../src/link/sync-marker.js";
import { memoryPair, until } from "../support/memory-stream.js";
import { hexBlocks, protocolSection } from "../support/protocol-doc.js";

/** The units of a stream written from its start: 16-byte markers and frames (header + payload). */
function units(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const size = bytes[pos] === MARKER_FIRST_BYTE ? MARKER_SIZE : HEADER_SIZE + bytes.readUInt32LE(pos + 12);
    out.push(bytes.subarray(pos, pos + size));
    pos += size;
  }
  return out;
}

function isFrame(unit: Buffer, ...codes: number[]): boolean {
  return unit[0] !== MARKER_FIRST_BYTE && codes.includes(unit.readUInt32LE(0));
}

/** A doc block read as a frame: its header checked as a receiver would, its payload decoded. */
function decodeBlock(block: Buffer): { header: FrameHeader; msg: Inbound } {
  const header = readHeader(block, 0);
  validateHeader(header, MAX_LIMITS.maxPayload);
  if (block.length !== HEADER_SIZE + header.size) throw new Error(`block of ${block.length} bytes, its header says ${HEADER_SIZE} + ${header.size}`);
  return { header, msg: decodeFrame(header, block.subarray(HEADER_SIZE)) };
}

const EXAMPLE_NONCE = 0x0123456789abcdefn;
const AGENT_LIMITS = { maxPayload: 65536, maxBatch: 64, maxInFlight: 512, heartbeatMs: 1000 };
const REQUEST = { tag: 1, endpoint: 8, pasid: 1, pasidValid: true, groupIndex: 2, pages: [{ address: 0x7f0000001000, perm: 3 }], budgetUs: 99_000 };

test("the worked example of docs/protocol.md section 8 is the bytes the link writes, and decodes back to its values", async (t) => {
  const [hostEnd, guestEnd] = memoryPair();
  const hostUps: HostSession[] = [];
  const guestUps: GuestSession[] = [];
  const requests: WirePageRequest[] = [];
  const responses: WirePageResponse[] = [];
  const credits: number[] = [];
  const host = new HostLink(hostEnd, {
    sessionUp: (s) => hostUps.push(s),
    pageResponses: (_e, r) => responses.push(...r.responses),
    credit: (_e, w) => credits.push(w),
    sessionDown: () => undefined,
    refused: () => undefined,
    writable: () => undefined,
    closed: () => undefined,
  }, {
    capabilities: OUR_CAPABILITIES,
    model: pb.ViommuModel.VIRTIO_IOMMU,
    endpoints: [{ endpointId: 8, name: "nic0", deadlineMs: 100, pasidCapable: true }],
    software: "iopf-relay 0.1.0",
    nextEpoch: () => 5,
  });
  const guest = new GuestLink(guestEnd, {
    sessionUp: (s) => guestUps.push(s),
    pageRequests: (r) => requests.push(...r.requests),
    cancels: () => undefined,
    sessionDown: () => undefined,
    handshakeRefused: () => undefined,
    closed: () => undefined,
  }, {
    capabilities: { versionMin: 1, versionMax: 1, features: ALL_FEATURES, limits: AGENT_LIMITS },
    software: "iopf-agent 0.1.0",
  });
  t.teardown(() => {
    hostEnd.destroy();
    guestEnd.destroy();
  });
  guest.start();
  host.start();
  await until(() => hostUps.length === 1 && guestUps.length === 1, 10_000, "the session");
  // What iopf-agent grants: its credits (256 by default) within the agreed max_in_flight.
  guest.grantCredit(256);
  host.sendPageRequests([REQUEST]);
  await until(() => requests.length === 1 && credits.length === 1, 10_000, "the group and the credit");
  guest.sendResponses([1], [pb.ResponseCode.RESPONSE_SUCCESS]);
  await until(() => responses.length === 1, 10_000, "the answer");

  // What each side wrote is what the other received; heartbeats come and go with timing and are left out.
  const byHost = units(Buffer.concat(guestEnd.received)).filter((u) => !isFrame(u, RequestCode.HEARTBEAT));
  const byAgent = units(Buffer.concat(hostEnd.received)).filter((u) => !isFrame(u, RequestCode.HEARTBEAT));
  const agentSync = byAgent[0]!;
  t.is(markerKindAt(agentSync, 0), MarkerKind.SYNC, "the agent starts with a SYNC");
  const hostFrames = byHost.filter((u) => isFrame(u, RequestCode.HELLO, RequestCode.PAGE_REQUESTS));
  const agentFrames = byAgent.filter((u) => isFrame(u, RequestCode.HELLO, RequestCode.CREDIT, RequestCode.PAGE_RESPONSES));
  t.true(byHost.some((u) => u.equals(encodeMarker(MarkerKind.ACK, agentSync.readBigUInt64LE(8)))), "the host ACKs the agent's SYNC");

  const blocks = hexBlocks(protocolSection(8));
  const produced = [
    encodeMarker(MarkerKind.SYNC, EXAMPLE_NONCE),
    encodeMarker(MarkerKind.ACK, EXAMPLE_NONCE),
    hostFrames[0], // HELLO
    agentFrames[0], // Welcome
    agentFrames[1], // CREDIT
    hostFrames[1], // PAGE_REQUESTS
    agentFrames[2], // PAGE_RESPONSES
  ];
  t.is(blocks.length, produced.length, "one hex block per unit of the example");
  blocks.forEach((block, i) => t.is(block.toString("hex"), produced[i]?.toString("hex") ?? "(no such unit)", `block ${i + 1} of section 8`));
  // The marker blocks are the link's own encoding: only the nonce differs from what the agent wrote.
  t.deepEqual(agentSync.subarray(0, 8), blocks[0]!.subarray(0, 8));

  const hello = decodeBlock(blocks[2]!);
  t.deepEqual(hello.header, { code: RequestCode.HELLO, flags: 0x09, id: 1, size: 57 });
  t.is(hello.msg.kind, "hello");
  if (hello.msg.kind === "hello") {
    const b = hello.msg.body;
    t.deepEqual([b.versionMin, b.versionMax, b.features, b.sessionEpoch, b.model, b.software], [1, 1, 3, 5, pb.ViommuModel.VIRTIO_IOMMU, "iopf-relay 0.1.0"]);
    t.deepEqual({ ...b.limits }, { ...DEFAULT_LIMITS });
    t.deepEqual(b.endpoints.map((e) => [e.endpointId, e.name, e.deadlineMs, e.pasidCapable]), [[8, "nic0", 100, true]]);
  }
  const welcome = decodeBlock(blocks[3]!);
  t.deepEqual(welcome.header, { code: RequestCode.HELLO, flags: 0x05, id: 1, size: 38 });
  t.is(welcome.msg.kind, "welcome");
  if (welcome.msg.kind === "welcome") {
    const b = welcome.msg.body;
    t.deepEqual([b.version, b.features, b.sessionEpoch, b.software], [1, 3, 5, "iopf-agent 0.1.0"]);
    t.deepEqual({ maxPayload: b.limits.maxPayload, maxBatch: b.limits.maxBatch, maxInFlight: b.limits.maxInFlight, heartbeatMs: b.limits.heartbeatMs }, AGENT_LIMITS);
  }
  const credit = decodeBlock(blocks[4]!);
  t.deepEqual(credit.header, { code: RequestCode.CREDIT, flags: 0x01, id: 1, size: 3 });
  t.deepEqual(credit.msg.kind === "credit" ? credit.msg.body.window : null, 256);
  const pageRequests = decodeBlock(blocks[5]!);
  t.deepEqual(pageRequests.header, { code: RequestCode.PAGE_REQUESTS, flags: 0x01, id: 2, size: 28 });
  if (pageRequests.msg.kind !== "page-requests") return t.fail("block 6 is not PAGE_REQUESTS");
  const r = pageRequests.msg.body.requests[0]!;
  t.deepEqual([r.tag, r.endpoint, r.pasid, r.pasidValid, r.groupIndex, r.budgetUs], [1, 8, 1, true, 2, 99_000]);
  t.deepEqual(r.pages.map((p) => [p.address, p.perm, p.raw.length]), [[0x7f0000001000, 3, 0]]);
  const pageResponses = decodeBlock(blocks[6]!);
  t.deepEqual(pageResponses.header, { code: RequestCode.PAGE_RESPONSES, flags: 0x01, id: 2, size: 4 });
  if (pageResponses.msg.kind !== "page-responses") return t.fail("block 7 is not PAGE_RESPONSES");
  t.deepEqual(pageResponses.msg.body.responses.map((x) => [x.tag, x.code]), [[1, pb.ResponseCode.RESPONSE_SUCCESS]]);
});
