// What the screens read from /api/status: latency over the last seconds, not
// since start, so that an early burst does not pin p99 for ever; iopfctl's
// status and top show the same window and say so.
import test from "ava";
import { DeviceStats } from "../../src/relay/control/device-stats.js";
import { EventStream } from "../../src/relay/control/event-stream.js";
import type { RelayView } from "../../src/relay/control/relay-view.js";
import { relayViewOf } from "../support/relay-view-stub.js";
import { relayStatus } from "../../src/relay/control/status.js";
import { RECENT_WINDOW_S } from "../../src/relay/latency-histogram.js";
import { RelayMetrics } from "../../src/relay/relay-metrics.js";
import { statusText } from "../../src/ctl/status-command.js";
import { topFrame } from "../../src/ctl/top-command.js";

function relayWithBurstThenCalm(): RelayView {
  let now = 0;
  const metrics = new RelayMetrics(() => now);
  // A burst of slow answers as the relay starts (no agent yet), then a calm minute later.
  for (let i = 0; i < 1000; i++) metrics.latency.record(200_000);
  now = 60;
  for (let i = 0; i < 100; i++) metrics.latency.record(100);
  return relayViewOf(metrics);
}

test("/api/status carries the last seconds' latency: histogram, percentiles and the window's length", (t) => {
  const s = relayStatus(relayWithBurstThenCalm(), new DeviceStats(), new EventStream("test"), { synthetic: true, emulator: false });
  t.is(s.latencyUs.windowS, RECENT_WINDOW_S);
  t.is(s.latencyUs.count, 100);
  // Recorded values, not time: 100 us answers read back within their bucket (12.5%).
  t.true(s.latencyUs.p99 <= 112, `p99 ${s.latencyUs.p99} us`);
  t.is(s.latencyUs.max, 100);
  t.is(s.latencyUs.buckets.reduce((n, b) => n + b.count, 0) + s.latencyUs.over, 100);
});

test("iopfctl status and top show that window and name it", (t) => {
  const s = relayStatus(relayWithBurstThenCalm(), new DeviceStats(), new EventStream("test"), { synthetic: true, emulator: false });
  t.regex(statusText(s), new RegExp(`^latency {6}p50 100 µs, p90 100 µs, p99 100 µs, max 100 µs over the last ${RECENT_WINDOW_S} s \\(100 answers\\)$`, "m"));
  t.regex(topFrame(s, { ...s, now: s.now + 1000 }, false), new RegExp(`p99 \\(last ${RECENT_WINDOW_S} s\\) 100 µs`));
});

test("top's per-device mean latency is over its own interval, not since start", (t) => {
  const s = relayStatus(relayWithBurstThenCalm(), new DeviceStats(), new EventStream("test"), { synthetic: true, emulator: false });
  const dev = { devId: 3, name: "nic0", endpoint: 8, deadlineMs: 100, groups: 10, success: 10, invalid: 0, expired: 0, meanLatencyUs: 200_000, latencySumUs: 2_000_000 };
  const prev = { ...s, devices: [dev] };
  const cur = { ...s, now: s.now + 1000, devices: [{ ...dev, groups: 15, success: 15, latencySumUs: 2_000_000 + 5 * 120, meanLatencyUs: 133_373 }] };
  t.regex(topFrame(prev, cur, false), /^\S+ +3 +nic0 +5\.0 +5\.0 +0\.0 +0\.0 +120 µs$/m);
});
