// A viewer that stops reading (its socket paused) must cost the relay
// nothing: the relay, carrying a steady emulator load to a real agent, keeps
// its answer rate and latency while the viewer stalls, drops what the
// viewer cannot take, counts it, and tells the viewer when it reads again.
// The stalled window is compared with windows without a viewer before and
// after it. The bound is on the relay's CPU time per answer, which other
// load on the machine hardly changes (the answer rate and latency it does
// change are logged and bounded loosely): a relay that serialized and
// queued every event for the stalled viewer would pay for it here.
import test from "ava";
import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { WebSocket } from "ws";
import type { StreamMessage } from "../../src/relay/control/wire-event.js";
import { httpGet, sample, startAgent, startRelay, until, waitStatus } from "./control-harness.js";

const RATE = 2000;
const WINDOW_MS = 3000;

interface Window {
  rate: number;
  meanMs: number;
  deadlines: number;
  /** The relay process's CPU time (all threads) per group answered, in microseconds. */
  cpuUsPerGroup: number;
}

/** utime + stime of a process, in microseconds (clock ticks of 10 ms). */
function cpuUs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function counters(control: string, pid: number): Promise<{ t: number; cpu: number; groups: number; count: number; sum: number; deadlines: number }> {
  const m = (await httpGet(control, "/metrics")).body;
  return {
    t: performance.now(),
    cpu: cpuUs(pid),
    groups: sample(m, "iopf_relay_groups_total") ?? NaN,
    count: sample(m, "iopf_relay_guest_answer_latency_seconds_count") ?? NaN,
    sum: sample(m, "iopf_relay_guest_answer_latency_seconds_sum") ?? NaN,
    deadlines: sample(m, "iopf_relay_deadlines_total") ?? NaN,
  };
}

/** Guest answers per second, their mean latency, and deadline answers, over one window. */
async function measure(control: string, pid: number): Promise<Window> {
  const a = await counters(control, pid);
  await new Promise((r) => setTimeout(r, WINDOW_MS));
  const b = await counters(control, pid);
  return {
    rate: ((b.count - a.count) * 1000) / (b.t - a.t), meanMs: ((b.sum - a.sum) * 1000) / (b.count - a.count),
    deadlines: b.deadlines - a.deadlines, cpuUsPerGroup: (b.cpu - a.cpu) / (b.groups - a.groups),
  };
}

test("a stalled viewer does not slow the relay, loses events, and is told when it resumes", async (t) => {
  const relay = await startRelay(t, { source: "emulator", rate: RATE, control: "unix" });
  startAgent(t, relay);
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");
  // Let the groups raised before the agent came (answered by their deadline) drain away.
  await new Promise((r) => setTimeout(r, 1500));
  const baseline = await measure(relay.control, relay.child.pid!);

  const ws = new WebSocket(`ws+unix:${relay.control.slice("unix:".length)}:/api/events`);
  const messages: StreamMessage[] = [];
  ws.on("message", (d) => messages.push(JSON.parse(d.toString()) as StreamMessage));
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  ws.send(JSON.stringify({ type: "subscribe" }));
  // ws has no public pause(); its socket is the TCP stream it reads from.
  const socket = (ws as unknown as { _socket: Socket })._socket;
  await until(() => messages.some((m) => m.type === "events"), 10_000, "the first events");
  socket.pause();
  const lostFrom = await waitStatus(relay.control, (s) => s.eventsLost > 0, "events lost to the stalled viewer", 30_000);
  const stalled = await measure(relay.control, relay.child.pid!);
  const lostDuring = (await waitStatus(relay.control, () => true, "status")).eventsLost - lostFrom.eventsLost;


  const before = messages.length;
  socket.resume();
  await until(() => messages.slice(before).some((m) => m.type === "lost"), 10_000, "the lost-events message");
  const lost = messages.slice(before).find((m) => m.type === "lost");
  t.true(lost?.type === "lost" && lost.count > 0, "told how many events it lost");
  await until(() => messages.slice(messages.indexOf(lost!)).some((m) => m.type === "events"), 10_000, "events again after the notice");
  ws.terminate();
  await waitStatus(relay.control, (s) => s.viewers === 0, "the viewer gone");
  const after = await measure(relay.control, relay.child.pid!);

  const show = (w: Window): string => `${w.rate.toFixed(0)} guest answers/s, mean ${w.meanMs.toFixed(2)} ms, ${w.deadlines} deadlines, ${w.cpuUsPerGroup.toFixed(1)} µs CPU/group`;
  t.log(`offered ${RATE} groups/s; no viewer: ${show(baseline)}; stalled viewer: ${show(stalled)} (${lostDuring} events lost); no viewer again: ${show(after)}`);
  const rate = (baseline.rate + after.rate) / 2;
  t.true(stalled.cpuUsPerGroup <= 1.25 * Math.max(baseline.cpuUsPerGroup, after.cpuUsPerGroup) + 5, "the relay's cost per group holds");
  t.true(stalled.rate >= 0.5 * rate, "the answer rate holds");
  t.true(stalled.meanMs <= 3 * Math.max(baseline.meanMs, after.meanMs) + 5, "the answer latency holds");
  t.true(lostDuring > RATE, "the relay dropped the stalled viewer's events instead of keeping them");
  t.is(await relay.stop(), 0);
});
