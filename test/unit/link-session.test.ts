// Sessions between a host link and a guest link over an in-memory stream:
// handshake, traffic, resync after garbage and cuts, and an untrusted agent.
import test from "ava";
import { memoryPair, MemoryStream, until, tick } from "../support/memory-stream.js";
import { makeGuest, makeHost, startPair } from "../support/link-peers.js";
import { pb } from "../../src/link/messages.js";
import { buildFrame } from "../../src/link/frame-sender.js";
import { RequestCode } from "../../src/link/request-code.js";
import { DEFAULT_LIMITS, OUR_CAPABILITIES } from "../../src/link/negotiation.js";

function request(tag: number) {
  return { tag, endpoint: 8, pasid: 1, pasidValid: true, groupIndex: tag % 512, pages: [{ address: 0x10000 + tag * 4096, perm: 1 }], budgetUs: 90_000 };
}

test("handshake, page requests answered by tag, credits", async (t) => {
  const { h, g, host, guest } = startPair();
  await until(() => host.ups.length === 1 && guest.ups.length === 1, 10_000, "session up");
  t.is(host.ups[0]?.epoch, guest.ups[0]?.epoch);
  t.is(guest.ups[0]?.endpoints[0]?.name, "nic0");
  t.deepEqual(host.ups[0]?.agreement.limits, DEFAULT_LIMITS);

  host.link.sendPageRequests([1, 2, 3].map(request));
  await until(() => host.responses.length === 3, 10_000, "responses");
  t.deepEqual(host.responses.map((r) => r.tag), [1, 2, 3]);
  t.is(guest.requests[1]?.pages[0]?.address, 0x10000 + 2 * 4096);

  guest.link.grantCredit(17);
  await until(() => host.credits.length === 1);
  t.deepEqual(host.credits, [17]);
});

test("a batch larger than max_batch is split into frames the agent accepts", async (t) => {
  const { h, g, host, guest } = startPair(undefined, { ...OUR_CAPABILITIES, limits: { ...DEFAULT_LIMITS, maxBatch: 4 } });
  await until(() => host.ups.length === 1 && guest.ups.length === 1);
  host.link.sendPageRequests(Array.from({ length: 10 }, (_, i) => request(i + 1)));
  await until(() => host.responses.length === 10);
  t.is(host.downs.length, 0);
});

test("random bytes in both directions before the session converge to a clean session", async (t) => {
  const [h, g] = memoryPair();
  // Stale bytes already waiting on both sides, as virtio-serial would deliver them.
  const junk = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131 + 7) & 0xff));
  h.deliver(junk);
  g.deliver(junk);
  const host = makeHost(h);
  const guest = makeGuest(g);
  host.link.start();
  guest.link.start();
  g.deliver(Buffer.concat([junk, buildFrame(RequestCode.HELLO, 8, 1, pb.Hello, { versionMin: 9 })]));
  await until(() => host.ups.length >= 1 && guest.ups.length >= 1 && host.link.current !== null, 10_000, "session up");
  host.link.sendPageRequests([request(5)]);
  await until(() => host.responses.length === 1);
  t.is(host.responses[0]?.tag, 5);
});

test("a session cut mid-frame, then a new host on the same port after a hangup, converges", async (t) => {
  const { h, g, host, guest } = startPair();
  await until(() => guest.ups.length === 1);
  // The old host dies after writing half a frame.
  const frame = buildFrame(RequestCode.PAGE_REQUESTS, 0, 77, pb.PageRequestBatch, { requests: [request(9)] });
  g.deliver(frame.subarray(0, 20));
  h.closed = true;
  g.emit("hangup");
  const h2 = new MemoryStream("memory:host2");
  h2.peer = g;
  g.peer = h2;
  const host2 = makeHost(h2);
  host2.link.start();
  await until(() => host2.ups.length === 1 && guest.ups.length === 2, 10_000, "second session");
  t.true(guest.downs[0]?.includes("hung up"));
  host2.link.sendPageRequests([request(1)]);
  await until(() => host2.responses.length === 1);
  t.deepEqual(guest.requests.map((r) => r.tag), [1], "the half frame of the old host was never delivered");
});

test("an agent restarted while the host is mid-frame: liveness ends the stale frame and they resync", async (t) => {
  const fastBeat = { ...OUR_CAPABILITIES, limits: { ...DEFAULT_LIMITS, heartbeatMs: 50 } };
  const { h, g, host, guest } = startPair(fastBeat, fastBeat);
  await until(() => host.ups.length === 1);
  // The old agent dies after writing the start of a frame that claims 60 KiB.
  const big = buildFrame(RequestCode.PAGE_RESPONSES, 0, 5, pb.PageResponseBatch, { responses: Array.from({ length: 200 }, (_, i) => ({ tag: i, code: 0 })) });
  h.deliver(big.subarray(0, 30));
  g.closed = true;
  const g2 = new MemoryStream("memory:guest2");
  g2.peer = h;
  h.peer = g2;
  const guest2 = makeGuest(g2, fastBeat);
  guest2.link.start();
  await until(() => host.ups.length === 2 && guest2.ups.length === 1, 10_000, "session with the new agent");
  t.regex(host.downs[0] ?? "", /HEARTBEAT_TIMEOUT|restarted/);
});

test("a SYNC from the agent mid-session ends the session and a new one starts", async (t) => {
  const { h, g, host, guest } = startPair();
  await until(() => host.ups.length === 1);
  guest.link.start();
  await until(() => host.ups.length === 2 && guest.ups.length === 2, 10_000, "second session");
  t.true(host.downs[0]?.includes("new SYNC"));
  t.not(host.ups[0]?.epoch, host.ups[1]?.epoch);
});

test("an agent sending what only the relay may send ends the session, and the link recovers", async (t) => {
  const { h, g, host, guest } = startPair();
  await until(() => host.ups.length === 1);
  g.write(buildFrame(RequestCode.PAGE_REQUESTS, 0, 999, pb.PageRequestBatch, { requests: [request(1)] }));
  await until(() => host.downs.length === 1);
  t.regex(host.downs[0] ?? "", /UNEXPECTED_MESSAGE/);
  await until(() => host.ups.length === 2 && host.link.current !== null, 10_000, "recovered session");
});

test("garbage mid-session from the agent ends the session, not the process", async (t) => {
  const { h, g, host, guest } = startPair();
  await until(() => host.ups.length === 1);
  g.write(Buffer.from("0100000001000000", "hex").subarray(0, 4));
  g.write(Buffer.alloc(12, 0xab));
  await until(() => host.downs.length === 1);
  t.regex(host.downs[0] ?? "", /BAD_FLAGS|BAD_VERSION|UNKNOWN_CODE/);
  await until(() => host.link.current !== null && guest.link.current !== null, 10_000, "recovered");
});

test("a refused handshake names both sides' versions and leaves the host idle", async (t) => {
  const { h, g, host, guest } = startPair(undefined, { ...OUR_CAPABILITIES, versionMin: 2, versionMax: 2 });
  await until(() => guest.refused.length === 1);
  t.regex(guest.refused[0] ?? "", /host offers 1\.\.1, agent speaks 2\.\.2/);
  await until(() => host.refusals.length === 1, 2000, "the host told of the refusal");
  t.regex(host.refusals[0] ?? "", /^NEGOTIATION_FAILED: no common version: host offers 1\.\.1, agent speaks 2\.\.2$/);
  await tick(50);
  t.is(host.link.current, null);
  t.is(host.ups.length, 0);
});

test("heartbeat silence ends the session on both sides", async (t) => {
  const fastBeat = { ...OUR_CAPABILITIES, limits: { ...DEFAULT_LIMITS, heartbeatMs: 50 } };
  const { h, g, host, guest } = startPair(fastBeat, fastBeat);
  await until(() => host.ups.length === 1);
  await tick(300);
  t.is(host.downs.length, 0, "heartbeats keep an idle session up");
  // Cut the wire silently in both directions.
  h.peer = null;
  g.peer = null;
  await until(() => host.downs.length === 1 && guest.downs.length === 1, 10_000, "both sessions down");
  t.regex(host.downs[0] ?? "", /HEARTBEAT_TIMEOUT/);
});

test("goodbye ends the session in order and close() closes the stream", async (t) => {
  const { h, g, host, guest } = startPair();
  await until(() => host.ups.length === 1);
  guest.link.close();
  await until(() => host.downs.length === 1 && host.closed);
  t.regex(host.downs[0] ?? "", /said goodbye/);
});

test("cancelled tags are reported to the agent and its late answers are not sent", async (t) => {
  const [h, g] = memoryPair();
  const host = makeHost(h);
  const guest = makeGuest(g);
  guest.answer = null;
  host.link.start();
  guest.link.start();
  await until(() => host.ups.length === 1);
  host.link.sendPageRequests([request(1), request(2)]);
  await until(() => guest.requests.length === 2);
  host.link.sendCancels([1], pb.CancelReason.CANCEL_DEADLINE);
  await until(() => guest.cancels.length === 1);
  t.is(guest.link.sendResponses([1, 2], [0, 0]), 1);
  await until(() => host.responses.length === 1);
  t.deepEqual(host.responses.map((r) => r.tag), [2]);
});

test("the agent ends the session when the host exceeds max_in_flight", async (t) => {
  const [h, g] = memoryPair();
  const host = makeHost(h);
  const guest = makeGuest(g, { ...OUR_CAPABILITIES, limits: { ...DEFAULT_LIMITS, maxInFlight: 2 } });
  guest.answer = null;
  host.link.start();
  guest.link.start();
  await until(() => host.ups.length === 1);
  host.link.sendPageRequests([request(1), request(2), request(3)]);
  await until(() => guest.downs.length === 1);
  t.regex(guest.downs[0] ?? "", /CREDIT_EXCEEDED/);
});

test("batches are split to fit max_payload; a request too large alone is returned, not sent", async (t) => {
  const small = { ...OUR_CAPABILITIES, limits: { ...DEFAULT_LIMITS, maxPayload: 4096 } };
  const { host, guest } = startPair(undefined, small);
  await until(() => host.ups.length === 1 && guest.ups.length === 1);
  const raw = new Uint8Array(48).fill(0xab);
  const withPages = (tag: number, pages: number) => ({ ...request(tag), pages: Array.from({ length: pages }, (_, i) => ({ address: i * 4096, perm: 1, raw })) });
  const outcome = host.link.sendPageRequests([...Array.from({ length: 40 }, (_, i) => withPages(i + 1, 4)), withPages(99, 100)]);
  t.deepEqual(outcome.tooLarge.map((r) => r.tag), [99]);
  await until(() => host.responses.length === 40, 10_000, "40 answers");
  t.deepEqual(guest.downs, [], "no frame exceeded the agent's max_payload");
});
