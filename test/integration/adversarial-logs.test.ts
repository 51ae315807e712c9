// What a guest can make the relay write: a software name of 60 KB and ERROR
// messages of 200 KB full of escape sequences and newlines, at every session
// change or refusal of the offer, as fast as it can bounce its session.
// Every line stays one line, bounded, with no raw control character, and the
// session changes and refusals it can trigger are written at most about once
// a second per cause.
import test from "ava";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { until } from "../support/memory-stream.js";
import { clean, HostileRelay } from "../support/hostile-relay.js";
import { DeviceStats } from "../../src/relay/control/device-stats.js";
import { EventStream } from "../../src/relay/control/event-stream.js";
import { RelayView } from "../../src/relay/control/relay-view.js";
import { relayStatus } from "../../src/relay/control/status.js";
import { statusText } from "../../src/ctl/status-command.js";

test.after.always(() => HostileRelay.closeAll());

const NASTY = "\x1b[2J\x1b]0;owned\x07\nfake: relay ready\r\u202e";

test("a guest's strings reach the log bounded and escaped, and its session changes are rate-limited", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  const guest = await relay.connect();
  guest.welcome = (h) => ({ version: 1, features: h.features, limits: h.limits, sessionEpoch: h.sessionEpoch, software: NASTY.repeat(60_000 / NASTY.length) });
  await until(() => relay.core.currentSession !== null, 10_000, "a session");
  const bounces = 200;
  for (let i = 0; i < bounces; i++) {
    const epoch = relay.core.currentSession?.epoch;
    guest.send(RequestCode.ERROR, pb.Error, { code: LinkErrorCode.UNEXPECTED_MESSAGE, message: NASTY.repeat(200_000 / NASTY.length) });
    guest.resync();
    await until(() => relay.core.currentSession !== null && relay.core.currentSession.epoch !== epoch, 10_000, `session ${i + 2}`);
  }
  t.true(relay.core.metrics.sessionsUp > bounces, "the guest bounced its session every time");
  const lines = relay.logs.join("").split("\n").filter((l) => l !== "");
  const longest = Math.max(...lines.map((l) => l.length));
  t.true(longest < 2000, `a log line of ${longest} characters`);
  t.false(lines.some((l) => /[\x00-\x08\x0b-\x1f\x7f]/.test(l)), "no raw control character in any line");
  const ups = lines.filter((l) => l.includes('"msg":"agent session up"'));
  const downs = lines.filter((l) => l.includes('"msg":"agent session down"'));
  t.log(`${relay.core.metrics.sessionsUp} sessions, ${lines.length} log lines (${ups.length} session-up, ${downs.length} session-down), longest ${longest} characters`);
  t.true(ups.length < relay.core.metrics.sessionsUp / 4, `${ups.length} session-up lines for ${relay.core.metrics.sessionsUp} sessions`);
  t.true(downs.length < relay.core.metrics.sessionsDown / 4, `${downs.length} session-down lines for ${relay.core.metrics.sessionsDown} sessions`);
  t.true(ups.some((l) => l.includes("\\\\x1b[2J")), "the software name is shown escaped");
  t.regex(ups[0]!, /more characters\)/, "and cut");
  await relay.finish();
});

test("an agent's refusals of the offer are logged bounded, escaped and once a second per cause; /api/status and iopfctl status keep the last reason", async (t) => {
  const relay = await HostileRelay.start({ deadlineMs: 5000 });
  const guest = await relay.connect();
  // As long as a frame before a session may be (64 KiB).
  guest.refusal = { code: LinkErrorCode.NEGOTIATION_FAILED, message: NASTY.repeat(1500) };
  const refusals = 200;
  for (let i = 1; i < refusals; i++) {
    await until(() => guest.hellos === i, 10_000, `HELLO ${i}`);
    // A new SYNC draws a new HELLO, refused again.
    guest.resync();
  }
  await until(() => guest.hellos === refusals, 10_000, `HELLO ${refusals}`);
  // Another cause, a code the relay does not know: its first refusal is written at once.
  guest.refusal = { code: 99, message: "no" };
  guest.resync();
  const view: RelayView = { core: relay.core, devices: [], viommu: "virtio-iommu", sources: [], software: "test", startedAtMs: performance.now() };
  const status = () => relayStatus(view, new DeviceStats(), new EventStream("test"), { synthetic: true, emulator: false });
  await until(() => status().session.lastAgentRefusal?.reason === "UNKNOWN_ERROR(99): no", 10_000, "the last refusal's reason in /api/status");
  const s = status();
  t.is(s.session.agentRefusals, refusals + 1);
  t.is(relay.core.currentSession, null, "no session after a refusal");
  t.regex(statusText(s), /the agent refused the offer \(201 times so far\), last: UNKNOWN_ERROR\(99\): no/);
  const lines = relay.logs.join("").split("\n").filter((l) => l.includes("the agent refused the relay's offer"));
  t.log(`${refusals + 1} refusals, ${lines.length} log lines about them`);
  t.true(lines.length >= 2, "each cause is logged");
  t.true(lines.length < refusals / 4, `${lines.length} lines for ${refusals + 1} refusals`);
  t.true(lines.every((l) => l.length < 2000 && !/[\x00-\x08\x0b-\x1f\x7f]/.test(l)), "bounded lines with no raw control character");
  t.regex(lines[0]!, /NEGOTIATION_FAILED: \\\\x1b\[2J.*more characters\)/, "the agent's reason, escaped and cut");
  t.true(lines.some((l) => l.includes("UNKNOWN_ERROR(99): no")), "the other cause has its own line");
  t.deepEqual(await relay.finish(), clean(0));
});
