// Other connections to the relay's agent socket: a new one takes the session
// only after a valid handshake, the one it replaced is told and closed for
// good and can do nothing any more (its CREDIT(0) cannot starve the agent),
// connections that never shake hands are bounded and cannot lock the agent
// out, and agents taking the session from each other are counted and
// reported.
import test from "ava";
import { connectUnix } from "../../src/link/transport/unix.js";
import { pb } from "../../src/link/messages.js";
import { until } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";

test.after.always(() => HostileRelay.closeAll());

test("a displaced connection is told, closed for good, and its CREDIT(0) and answers are ignored", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 60_000 });
  const old = await relay.connect();
  await until(() => relay.core.currentSession !== null, 10_000, "the first session");
  const first = relay.core.currentSession!.epoch;
  const agent = await relay.connect();
  await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== first, 10_000, "the new connection's session");
  await until(() => old.goodbyes.includes(pb.GoodbyeReason.GOODBYE_REPLACED), 10_000, "GOODBYE_REPLACED to the old one");
  // Whatever the old connection still gets through before its socket goes, it cannot touch the agent's window or answers.
  old.credit(0);
  relay.raise(200);
  await until(() => agent.requests.length === 200, 10_000, "every group to the new agent");
  old.answer(agent.requests.map((r) => r.tag));
  agent.answer(agent.requests.map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 200, 10_000, "the agent's answers");
  await until(() => old.closed, 10_000, "the old connection closed by the relay");
  t.is(old.requests.length, 0);
  t.is(relay.core.metrics.takeovers, 1);
  t.deepEqual(await relay.finish(), clean(200));
});

test("a connection that sends garbage or never shakes hands does not disturb the agent in session", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 60_000 });
  const agent = await relay.connectInSession();
  const epoch = relay.core.currentSession!.epoch;
  const http = await connectUnix(relay.path);
  http.write(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  const silent = await connectUnix(relay.path);
  relay.raise(10);
  await until(() => agent.requests.length === 10, 10_000, "the agent still served");
  agent.answer(agent.requests.map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 10, 10_000, "its answers");
  t.is(relay.core.currentSession?.epoch, epoch, "the same session throughout");
  t.is(relay.core.metrics.takeovers, 0);
  http.destroy();
  silent.destroy();
  t.deepEqual(await relay.finish(), clean(10));
});

test("connections left open without a handshake are bounded: the relay closes the oldest, and an agent still gets in", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 60_000 });
  const idle = await Promise.all(Array.from({ length: 40 }, () => connectUnix(relay.path)));
  const closed = new Set<number>();
  idle.forEach((s, i) => s.on("close", () => closed.add(i)));
  await until(() => closed.size >= 36, 10_000, "all but four closed by the relay");
  t.is(relay.core.metrics.connectionsRefused, 36);
  const agent = await relay.connect();
  await until(() => relay.core.currentSession !== null, 10_000, "the agent's session despite them");
  relay.raise(5);
  await until(() => agent.requests.length === 5, 10_000, "groups to it");
  agent.answer(agent.requests.map((r) => r.tag));
  await until(() => relay.audit.count("guest") === 5, 10_000, "answers");
  for (const s of idle) s.destroy();
  t.deepEqual(await relay.finish(), clean(5));
});

test("two agents taking the session from each other: each takeover counted, the flapping reported", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 60_000 });
  for (let i = 0; i < 4; i++) {
    const before = relay.core.currentSession?.epoch;
    await relay.connect();
    await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== before, 10_000, `connection ${i + 1}'s session`);
  }
  t.is(relay.core.metrics.takeovers, 3);
  t.true(relay.core.metrics.flapping(performance.now()));
  await until(() => relay.logs.some((l) => l.includes("keep taking the session from each other")), 10_000, "the warning");
  t.deepEqual(await relay.finish(), clean(0));
});
