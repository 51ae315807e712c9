// What a guest can make the relay write: a software name of 60 KB and ERROR
// messages of 200 KB full of escape sequences and newlines, at every session
// change, as fast as it can bounce its session. Every line stays one line,
// bounded, with no raw control character, and the session changes it can
// trigger are written at most about once a second per cause.
import test from "ava";
import { pb } from "../../src/link/messages.js";
import { RequestCode } from "../../src/link/request-code.js";
import { LinkErrorCode } from "../../src/link/link-error.js";
import { until } from "../support/memory-stream.js";
import { HostileRelay } from "../support/hostile-relay.js";

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
