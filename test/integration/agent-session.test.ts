// The agent's session client over a real Unix socket, with a HostLink as the
// relay: credits, the policy, app and default handlers, guarded handlers,
// resync after garbage, a relay restarting mid-batch, and a relay's goodbye.
import test from "ava";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../guest-agent/agent.js";
import { AgentClient, PageFault } from "../../guest-agent/app/client.js";
import { AgentConfig, defaultConfig, HandlerRule } from "../../guest-agent/config.js";
import { jsonLogger, Logger, silentLogger } from "../../guest-agent/log.js";
import { pb } from "../../src/link/messages.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { UnixListener } from "../../src/link/transport/unix.js";
import { HostLink } from "../../src/link/host-link.js";
import { FAST_TIMERS, HostRecord } from "../support/link-peers.js";
import { tick, until } from "../support/memory-stream.js";

const SUCCESS = pb.ResponseCode.RESPONSE_SUCCESS;
const INVALID = pb.ResponseCode.RESPONSE_INVALID;
const FAILURE = pb.ResponseCode.RESPONSE_FAILURE;

interface Relay {
  hosts: Host[];
  streams: ByteStream[];
  listener: UnixListener;
  /** Called on each connection before the HostLink starts (to inject bytes). */
  onConnect: ((s: ByteStream) => void) | null;
}

/** A relay's link, recording what the agent sends, and the size of each PAGE_RESPONSES frame. */
type Host = HostRecord & { frames: number[] };

let epoch = 5000;

function makeCountingHost(stream: ByteStream): Host {
  const host = { ups: [], downs: [], refusals: [], responses: [], credits: [], closed: false, frames: [] } as unknown as Host;
  host.link = new HostLink(
    stream,
    {
      sessionUp: (s) => host.ups.push(s),
      pageResponses: (_e, r) => {
        host.frames.push(r.count);
        host.responses.push(...r.responses);
      },
      credit: (_e, w) => host.credits.push(w),
      sessionDown: (_e, reason) => host.downs.push(reason),
      refused: (_code, reason) => host.refusals.push(reason),
      writable: () => undefined,
      closed: () => (host.closed = true),
    },
    { model: pb.ViommuModel.VIRTIO_IOMMU, endpoints: [{ endpointId: 8, name: "nic0", deadlineMs: 100, pasidCapable: true }], software: "test-relay", nextEpoch: () => ++epoch, resyncTimers: FAST_TIMERS },
  );
  return host;
}

async function relayAt(t: { teardown: (f: () => unknown) => void }, path: string): Promise<Relay> {
  const listener = await UnixListener.listen(path);
  const relay: Relay = { hosts: [], streams: [], listener, onConnect: null };
  listener.on("connection", (stream) => {
    relay.streams.push(stream);
    relay.onConnect?.(stream);
    const host = makeCountingHost(stream);
    relay.hosts.push(host);
    host.link.start();
  });
  t.teardown(async () => {
    for (const s of relay.streams) s.destroy();
    await listener.close().catch(() => undefined);
  });
  return relay;
}

function tempDir(t: { teardown: (f: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), "agent-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function startAgent(dir: string, handlers: HandlerRule[], more: Partial<AgentConfig> = {}, log: Logger = silentLogger): Promise<Agent> {
  const config: AgentConfig = {
    ...defaultConfig(),
    port: { ...defaultConfig().port, connect: `unix:${join(dir, "relay.sock")}` },
    appSocket: join(dir, "app.sock"),
    handlers,
    retryMinMs: 10,
    retryMaxMs: 100,
    credits: 32,
    ...more,
  };
  return Agent.start({ config, log, resyncTimers: FAST_TIMERS });
}

function request(tag: number, address: number, perm = 1, pasid = 5, budgetUs = 5_000_000) {
  return { tag, endpoint: 8, pasid, pasidValid: true, groupIndex: tag % 512, pages: [{ address, perm }], budgetUs };
}

function answers(host: Host): Map<number, number> {
  return new Map(host.responses.map((r) => [r.tag, r.code]));
}

const policy: HandlerRule = {
  pasid: 5,
  handler: "policy",
  rules: [
    { start: 0x10000, end: 0x20000, perm: 3, answer: "success" },
    { start: 0x20000, end: 0x30000, perm: 1, answer: "success" },
    { start: 0x30000, end: 0x31000, perm: 7, answer: "failure" },
  ],
  otherwise: "invalid",
};

test("handshake, credits, policy and default handlers, one frame per turn", async (t) => {
  const dir = tempDir(t);
  const relay = await relayAt(t, join(dir, "relay.sock"));
  const agent = await startAgent(dir, [policy]);
  t.teardown(() => agent.stop());
  await until(() => relay.hosts[0]?.link.current !== null && relay.hosts.length === 1, 10_000, "session up");
  const host = relay.hosts[0] as Host;
  await until(() => host.credits.length === 1);
  t.deepEqual(host.credits, [32], "the configured window, within max_in_flight");
  t.regex(host.ups[0]?.agentSoftware ?? "", /^iopf-agent /);

  host.link.sendPageRequests([
    request(1, 0x10000, 3), // rw in an rw range
    request(2, 0x20000, 3), // a write in a read-only range: no rule covers it
    request(3, 0x20000, 1),
    request(4, 0x30000, 1),
    request(5, 0x50000, 1), // outside every rule
    request(6, 0x10000, 1, 6), // a PASID no rule takes: the default
  ]);
  await until(() => host.responses.length === 6);
  t.deepEqual([...answers(host)].sort(([a], [b]) => a - b), [
    [1, SUCCESS],
    [2, INVALID],
    [3, SUCCESS],
    [4, FAILURE],
    [5, INVALID],
    [6, INVALID],
  ]);
  t.deepEqual(host.frames, [6], "answers completed in one turn leave in one frame");
  t.is(agent.counters.get("answers.default.invalid"), 1);
  t.is(agent.counters.get("answers.policy.success"), 2);
});

test("app handler: a registered program answers its PASID; throws, hangs and disconnects become INVALID within the budget", async (t) => {
  const dir = tempDir(t);
  const relay = await relayAt(t, join(dir, "relay.sock"));
  const agent = await startAgent(dir, [{ handler: "app" }]);
  t.teardown(() => agent.stop());
  await until(() => relay.hosts[0]?.link.current != null, 10_000, "session up");
  const host = relay.hosts[0] as Host;

  const app = await AgentClient.connect(join(dir, "app.sock"));
  const seen: PageFault[] = [];
  app.onPageRequest(async (fault) => {
    seen.push(fault);
    const address = fault.pages[0]?.address;
    if (address === 0x1000) return "success";
    if (address === 0x2000) throw new Error("the app's own bug");
    if (address === 0x3000) return new Promise<never>(() => undefined); // never answers
    return "failure";
  });
  await app.register(5);
  const other = await AgentClient.connect(join(dir, "app.sock"));
  t.teardown(() => other.close());
  await t.throwsAsync(() => other.register(5), { message: /registered by another client/ });

  host.link.sendPageRequests([request(1, 0x1000), request(2, 0x2000), request(3, 0x3000, 1, 5, 30_000), request(4, 0x4000), request(5, 0x1000, 1, 7)]);
  await until(() => host.responses.length === 5, 10_000, "five answers");
  t.deepEqual([...answers(host)].sort(([a], [b]) => a - b), [
    [1, SUCCESS],
    [2, INVALID],
    [3, INVALID],
    [4, FAILURE],
    [5, INVALID], // PASID 7: nobody registered it
  ]);
  t.is(agent.counters.get("handler.overran"), 1, "the hung fault was answered INVALID when its 30 ms budget ran out");
  t.is(seen.length, 4);

  // The program goes away with a fault open: the agent answers it, once.
  app.onPageRequest(() => new Promise<never>(() => undefined));
  host.link.sendPageRequests([request(6, 0x1000)]);
  await until(() => seen.length === 4 && agent.counters.get("requests") === 6);
  await tick(20);
  app.close();
  await until(() => host.responses.length === 6, 10_000, "answer after disconnect");
  t.is(answers(host).get(6), INVALID);
  t.is(host.responses.filter((r) => r.tag === 6).length, 1);
});

test("garbage before and during a session: the agent resyncs and serves again", async (t) => {
  const dir = tempDir(t);
  const relay = await relayAt(t, join(dir, "relay.sock"));
  const junk = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 151 + 3) & 0xff));
  relay.onConnect = (s) => s.write(junk);
  const agent = await startAgent(dir, [policy]);
  t.teardown(() => agent.stop());
  await until(() => relay.hosts[0]?.link.current != null, 10_000, "session up through stale bytes");
  const host = relay.hosts[0] as Host;
  host.link.sendPageRequests([request(1, 0x10000)]);
  await until(() => host.responses.length === 1);

  // Bytes that are no frame, straight onto the socket mid-session.
  (relay.streams[0] as ByteStream).write(Buffer.alloc(40, 0x5a));
  await until(() => host.downs.length >= 1 && host.link.current !== null && host.ups.length >= 2, 10_000, "a new session after garbage");
  t.is(relay.hosts.length, 1, "the same connection: the link resynced, nothing reconnected");
  host.link.sendPageRequests([request(2, 0x10000)]);
  await until(() => host.responses.length === 2);
  t.deepEqual(host.responses.map((r) => r.tag), [1, 2]);
});

test("a relay restarting mid-batch: old groups are never answered into the new session", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "relay.sock");
  const relay = await relayAt(t, path);
  const agent = await startAgent(dir, [{ handler: "app" }]);
  t.teardown(() => agent.stop());
  await until(() => relay.hosts[0]?.link.current != null, 10_000, "first session");
  const app = await AgentClient.connect(join(dir, "app.sock"));
  t.teardown(() => app.close());
  // Old faults (address 0x1000) are answered late with "failure"; new ones at once with "success".
  const late: (() => void)[] = [];
  app.onPageRequest((fault) =>
    fault.pages[0]?.address === 0x1000 ? new Promise((resolve) => late.push(() => resolve("failure"))) : "success",
  );
  await app.register(5);

  const first = relay.hosts[0] as Host;
  first.link.sendPageRequests([1, 2, 3].map((tag) => request(tag, 0x1000)));
  await until(() => late.length === 3, 10_000, "the app holds the old batch");

  // The relay dies: its socket goes away and a new relay listens at the same path.
  (relay.streams[0] as ByteStream).destroy();
  await relay.listener.close();
  const relay2 = await relayAt(t, path);
  await until(() => relay2.hosts[0]?.link.current != null, 10_000, "session with the restarted relay");
  const second = relay2.hosts[0] as Host;
  second.link.sendPageRequests([1, 2, 3].map((tag) => request(tag, 0x2000)));
  await until(() => second.responses.length === 3, 10_000, "new answers");
  for (const answer of late) answer();
  await tick(50);
  t.deepEqual(second.responses.map((r) => [r.tag, r.code]).sort(), [
    [1, SUCCESS],
    [2, SUCCESS],
    [3, SUCCESS],
  ]);
  t.is(first.responses.length, 0, "the old relay got nothing after it died");
  t.is(agent.counters.get("answers.app.failure"), 0);
});

for (const reason of [pb.GoodbyeReason.GOODBYE_SHUTDOWN, pb.GoodbyeReason.GOODBYE_RESTART]) {
  test(`after the relay's GOODBYE (${pb.GoodbyeReason[reason]}) the agent drops what it holds unanswered, says why, and serves the next relay`, async (t) => {
    const dir = tempDir(t);
    const path = join(dir, "relay.sock");
    const relay = await relayAt(t, path);
    const lines: string[] = [];
    const agent = await startAgent(dir, [{ handler: "app" }], {}, jsonLogger("info", (l) => lines.push(l)));
    t.teardown(() => agent.stop());
    await until(() => relay.hosts[0]?.link.current != null, 10_000, "first session");
    const app = await AgentClient.connect(join(dir, "app.sock"));
    t.teardown(() => app.close());
    const held: (() => void)[] = [];
    app.onPageRequest((fault) => (fault.pages[0]?.address === 0x1000 ? new Promise((resolve) => held.push(() => resolve("success"))) : "success"));
    await app.register(5);
    const first = relay.hosts[0] as Host;
    first.link.sendPageRequests([1, 2, 3].map((tag) => request(tag, 0x1000)));
    await until(() => held.length === 3, 10_000, "the app holds 3 groups");

    // The relay stops in order: GOODBYE with NEED_REPLY, then it closes its end.
    first.link.close(reason, "relay stopping");
    await until(() => agent.counters.get("dropped.session-ended") === 3, 10_000, "the 3 held groups dropped with the session");
    const down = lines.find((l) => l.includes('"msg":"session down"'));
    t.regex(down ?? "", new RegExp(`relay said goodbye \\(${pb.GoodbyeReason[reason]}\\): relay stopping`));
    await relay.listener.close();

    const relay2 = await relayAt(t, path);
    await until(() => relay2.hosts.some((h) => h.link.current !== null), 10_000, "a session with the next relay");
    const second = relay2.hosts.find((h) => h.link.current !== null)!;
    for (const answer of held) answer();
    second.link.sendPageRequests([request(1, 0x2000)]);
    await until(() => second.responses.length === 1, 10_000, "the next relay's group answered");
    await tick(50);
    t.deepEqual(second.responses.map((r) => r.tag), [1], "nothing of the old session reached the next relay");
    t.is(first.responses.length, 0);
  });
}

test("after the relay's GOODBYE (GOODBYE_REPLACED) the agent backs off before it connects again, says so, and comes back", async (t) => {
  const dir = tempDir(t);
  const relay = await relayAt(t, join(dir, "relay.sock"));
  const lines: string[] = [];
  const agent = await startAgent(dir, [{ handler: "app" }], {}, jsonLogger("info", (l) => lines.push(l)));
  t.teardown(() => agent.stop());
  await until(() => relay.hosts[0]?.link.current != null, 10_000, "first session");
  relay.hosts[0]!.link.close(pb.GoodbyeReason.GOODBYE_REPLACED, "another agent connection took over this relay");
  await until(() => relay.hosts.some((h, i) => i > 0 && h.link.current !== null), 10_000, "a session on the agent's next connection");
  const backingOff = lines.filter((l) => l.includes("another agent connection took over the relay; backing off"));
  t.is(backingOff.length, 1, "the backoff is logged once");
  t.regex(lines.find((l) => l.includes('"msg":"session down"')) ?? "", /relay said goodbye \(GOODBYE_REPLACED\)/);
});
