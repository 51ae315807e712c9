// Agents taking the session from each other show in /api/status and in
// iopfctl status, not only in the log: three takeovers within a minute.
import test from "ava";
import { DeviceStats } from "../../src/relay/control/device-stats.js";
import { EventStream } from "../../src/relay/control/event-stream.js";
import type { RelayView } from "../../src/relay/control/relay-view.js";
import { relayViewOf } from "../support/relay-view-stub.js";
import { relayStatus } from "../../src/relay/control/status.js";
import { FLAPPING_TAKEOVERS, RelayMetrics } from "../../src/relay/relay-metrics.js";
import { statusText } from "../../src/ctl/status-command.js";

function relayWithTakeovers(n: number): RelayView {
  const metrics = new RelayMetrics();
  for (let i = 0; i < n; i++) {
    metrics.takeovers++;
    metrics.recentTakeovers = [...metrics.recentTakeovers, performance.now()].slice(-FLAPPING_TAKEOVERS);
  }
  return relayViewOf(metrics);
}

const status = (n: number) => relayStatus(relayWithTakeovers(n), new DeviceStats(), new EventStream("test"), { synthetic: true, emulator: false });

test("one takeover is not flapping; three within a minute are, in the status and in iopfctl status", (t) => {
  const calm = status(1);
  t.is(calm.session.takeovers, 1);
  t.false(calm.session.flapping);
  t.notRegex(statusText(calm), /FLAPPING/);
  const flapping = status(FLAPPING_TAKEOVERS);
  t.true(flapping.session.flapping);
  t.regex(statusText(flapping), new RegExp(`^ +FLAPPING: agent connections keep taking the session from each other \\(${FLAPPING_TAKEOVERS} takeovers\\)`, "m"));
});
