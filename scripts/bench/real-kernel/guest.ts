#!/usr/bin/env node
// Runs inside the benchmark VM (sections/real-kernel.ts), argument: the plan
// as JSON. The same raiser against the C responder, then against the relay
// path, each on a mock device of its own: a warm-up, a throughput run
// (faults raised back to back) and a latency run (faults raised at a fixed
// rate). Prints progress lines and, at the end, the figures as one line.
import { quantile } from "../statistics.js";
import { within, type Answerer } from "./answerer.js";
import { CResponder } from "./c-responder.js";
import { MockFaultDevice } from "./mock-fault-device.js";
import { parsePlan, PROGRESS_PREFIX, REPORT_PREFIX, type GuestReport, type PathFigures } from "./protocol.js";
import { raise } from "./raise.js";
import { RelayPathAnswerer } from "./relay-path.js";

/** Raise and answer times (µs, CLOCK_REALTIME) of one run, by PASID. */
interface Run {
  raised: Map<number, number>;
  answered: Map<number, number>;
}

const RUN_TIMEOUT_MS = 120_000;
const plan = parsePlan(process.argv[2]);

// A leading newline: kernel messages may have left the console mid-line.
const progress = (message: string): void => void process.stdout.write(`\n${PROGRESS_PREFIX}${message}\n`);

function figures(throughput: Run, latency: Run): PathFigures {
  const raised = [...throughput.raised.values()];
  const first = Math.min(...raised);
  const seconds = (Math.max(...throughput.answered.values()) - first) / 1e6;
  // Every answer of a latency run is timed: one missing would make a latency NaN.
  if (latency.answered.size !== latency.raised.size) throw new Error(`latency run: expected ${latency.raised.size} answer times, got ${latency.answered.size}`);
  const latencies = [...latency.raised].map(([pasid, at]) => latency.answered.get(pasid)! - at);
  return {
    seconds,
    answeredPerSec: raised.length / seconds,
    raisedPerSec: raised.length / ((Math.max(...raised) - first) / 1e6),
    p50Us: quantile(latencies, 0.5),
    p90Us: quantile(latencies, 0.9),
    p99Us: quantile(latencies, 0.99),
    maxUs: Math.max(...latencies),
  };
}

async function measure(name: string, start: (device: MockFaultDevice) => Promise<Answerer>): Promise<{ figures: PathFigures; final: unknown }> {
  const device = MockFaultDevice.open();
  let answerer: Answerer | null = null;
  try {
    const a = await start(device);
    answerer = a;
    let next = 1;
    const run = async (what: string, count: number, rateHz: number): Promise<Run> => {
      progress(`${name}: ${what}, ${count} faults${rateHz ? ` at ${rateHz}/s` : " back to back"}`);
      const pasidBase = next;
      next += count;
      // Back to back only the last answer's time counts: the relay's event stream need not keep up.
      const armed = await a.arm(pasidBase, count, rateHz > 0);
      const [raised, answered] = await Promise.all([
        raise(device, pasidBase, count, rateHz),
        within(RUN_TIMEOUT_MS, `${name} to answer faults ${pasidBase}..${pasidBase + count - 1}`, armed.answered),
      ]);
      return { raised, answered };
    };
    await run("warm-up", plan.warmUpFaults, 0);
    const throughput = await run("throughput", plan.throughputFaults, 0);
    const latency = await run("latency", plan.latencyFaults, plan.latencyRateHz);
    answerer = null;
    return { figures: figures(throughput, latency), final: await a.stop() };
  } finally {
    await answerer?.stop().catch(() => undefined);
    device.close();
  }
}

/** The relay's "stopped" counters must show every fault answered SUCCESS by the agent and none refused by the kernel. */
function checkRelayCounters(stopped: unknown): void {
  const total = plan.warmUpFaults + plan.throughputFaults + plan.latencyFaults;
  const s = stopped as { answers?: Record<string, { success: number; invalid: number }>; refused?: number } | null;
  const answers = Object.entries(s?.answers ?? {});
  const ok = answers.length === 1 && answers[0]![0] === "guest" && answers[0]![1].success === total && answers[0]![1].invalid === 0 && s?.refused === 0;
  if (!ok) throw new Error(`expected the relay to have written ${total} SUCCESS answers, all the agent's, none refused; its counters at exit: ${JSON.stringify(stopped)}`);
}

async function main(): Promise<void> {
  const baseline = await measure("C responder", async (device) => new CResponder(device));
  progress("relay path: starting iopf-relay and iopf-agent");
  const relay = await measure("relay path", (device) => RelayPathAnswerer.start(device));
  checkRelayCounters(relay.final);
  const report: GuestReport = { baseline: baseline.figures, relay: relay.figures, relayCounters: relay.final };
  process.stdout.write(`\n${REPORT_PREFIX}${JSON.stringify(report)}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`\nreal-kernel guest: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
