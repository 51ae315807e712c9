// /metrics, /healthz and /api/status of a real relay process after a known
// scenario: with an agent that answers only device 1, M groups of device 2
// (their deadline answers them), then N groups of device 1 it answers SUCCESS.
import test from "ava";
import { pb } from "../../src/link/messages.js";
import { httpGet, inject, sample, startRelay, status, waitStatus } from "./control-harness.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";

const CONFIG = {
  viommu: "virtio-iommu",
  devices: [
    // Long enough that a guest answer always comes first, even on a loaded machine.
    { devId: 1, endpointId: 8, name: "nic0", deadlineMs: 10_000 },
    { devId: 2, endpointId: 9, name: "gpu0", deadlineMs: 50 },
  ],
  // Groups wait for an agent instead of being answered at once after 2 s without one.
  limits: { sessionGraceMs: 600_000 },
};

test("metrics after M deadline answers and N guest answers", async (t) => {
  const M = 7;
  const N = 25;
  const relay = await startRelay(t, { source: "synthetic", config: CONFIG });

  // Endpoint 8 is device 1 (nic0); device 2's groups stay unanswered.
  const agent = reconnectingAgent(relay.socketPath, 0, (r) => (r.endpoint === 8 ? pb.ResponseCode.RESPONSE_SUCCESS : null));
  t.teardown(() => agent.stop());
  await waitStatus(relay.control, (x) => x.session.state === "up", "the agent's session");
  await inject(relay.control, { dev: 2, pasid: 5, addr: 0x20000, count: M });
  let s = await waitStatus(relay.control, (x) => x.counters.deadlines >= M, "M deadline answers");
  t.is(s.counters.deadlines, M, "every group the agent leaves is answered by its deadline");
  await inject(relay.control, { dev: 1, pasid: 1, addr: 0x10000, perm: 3, count: N });
  await waitStatus(relay.control, (x) => (x.counters.answers["guest"]?.success ?? 0) >= N, "N guest answers");

  const res = await httpGet(relay.control, "/metrics");
  t.is(res.status, 200);
  t.regex(String(res.headers["content-type"]), /^text\/plain; version=0\.0\.4/);
  const m = res.body;
  const expect: [string, number][] = [
    ["iopf_relay_records_total", M + N],
    ["iopf_relay_groups_total", M + N],
    ["iopf_relay_groups_sent_total", M + N],
    ['iopf_relay_answers_total{origin="guest",code="success"}', N],
    ['iopf_relay_answers_total{origin="guest",code="invalid"}', 0],
    ['iopf_relay_answers_total{origin="deadline",code="invalid"}', M],
    ['iopf_relay_answers_total{origin="deadline",code="success"}', 0],
    ["iopf_relay_deadlines_total", M],
    ['iopf_relay_guest_answers_dropped_total{reason="late"}', 0],
    ["iopf_relay_answers_refused_total", 0],
    ["iopf_relay_groups_in_flight", 0],
    ["iopf_relay_groups_queued", 0],
    ["iopf_relay_credit_window", 4096],
    ['iopf_relay_session_state{state="up"}', 1],
    ['iopf_relay_session_state{state="waiting"}', 0],
    ["iopf_relay_sessions_started_total", 1],
    ['iopf_relay_sessions_ended_total{cause="hangup"}', 0],
    ['iopf_relay_sessions_ended_total{cause="replaced"}', 0],
    ["iopf_relay_keeper_restarts_total", 0],
    ["iopf_relay_answer_latency_seconds_count", M + N],
    ['iopf_relay_answer_latency_seconds_bucket{le="+Inf"}', M + N],
    ["iopf_relay_guest_answer_latency_seconds_count", N],
    ['iopf_relay_device_groups_total{dev="1",name="nic0"}', N],
    ['iopf_relay_device_groups_total{dev="2",name="gpu0"}', M],
    ['iopf_relay_device_answers_total{dev="1",name="nic0",result="success"}', N],
    ['iopf_relay_device_answers_total{dev="2",name="gpu0",result="expired"}', M],
    ["iopf_relay_control_viewers", 0],
  ];
  for (const [series, value] of expect) t.is(sample(m, series), value, series);
  const started = sample(m, "process_start_time_seconds") ?? 0;
  t.true(started > 0 && started <= Date.now() / 1000, `process_start_time_seconds ${started} is a past instant`);

  // Deadline answers take at least the 50 ms deadline: none in the buckets below it.
  t.is(sample(m, 'iopf_relay_answer_latency_seconds_bucket{le="0.025"}'), sample(m, 'iopf_relay_guest_answer_latency_seconds_bucket{le="0.025"}'));
  const buckets = m.split("\n").filter((l) => l.startsWith("iopf_relay_answer_latency_seconds_bucket")).map((l) => Number(l.split(" ")[1]));
  t.deepEqual(buckets, [...buckets].sort((a, b) => a - b), "histogram buckets are cumulative");
  t.true((sample(m, "iopf_relay_answer_latency_seconds_sum") ?? 0) >= M * 0.05, "the sum holds M answers of at least 50 ms");
  for (const family of ["iopf_relay_answers_total", "iopf_relay_answer_latency_seconds", "iopf_relay_groups_in_flight"]) {
    t.regex(m, new RegExp(`# HELP ${family} .+\\n# TYPE ${family} (counter|gauge|histogram)\\n`));
  }

  const health = await httpGet(relay.control, "/healthz");
  t.is(health.status, 200);
  t.is(health.body, "ok\n");
  s = await status(relay.control);
  t.is(s.counters.groups, M + N);
  t.deepEqual(s.devices.map((d) => [d.devId, d.name, d.groups, d.success, d.expired]), [[1, "nic0", N, N, 0], [2, "gpu0", M, 0, M]]);
  t.is((await httpGet(relay.control, "/nothing")).status, 404);

  // The agent leaves: its goodbye ends the session, counted by cause.
  agent.stop();
  await waitStatus(relay.control, (x) => x.session.state !== "up", "the session's end");
  const after = (await httpGet(relay.control, "/metrics")).body;
  t.is(sample(after, 'iopf_relay_sessions_ended_total{cause="goodbye-received"}'), 1);
  t.is(sample(after, 'iopf_relay_sessions_ended_total{cause="hangup"}'), 0);
  t.is(await relay.stop(), 0, "the relay stops cleanly with its control server");
});
