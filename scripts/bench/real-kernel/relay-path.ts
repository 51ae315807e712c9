// The relay answering side, as in production and as scripts/bench/relay-path.ts
// runs it on the emulator: iopf-relay reading the mock device's fault fd as
// an inherited --fault-fd, the shipped agent (policy handler, answers at
// once) on a Unix socket, both their own node processes.
//
// Nothing in the uAPI tells the raiser when a fault was answered (the mock
// device's page_response does nothing), so the answer times come from the
// relay itself. Timing each answer (the latency run): its control server's
// event stream, "answered" events for every group, stamped with Date.now()
// when the relay decided the answer, just before it writes it to the fault
// fd in the same turn of its event loop. Back to back the stream cannot keep
// up (it drops events for a slow viewer, by design), so only the last answer
// is timed: when the relay's status says every fault of the run is answered,
// polled every few milliseconds.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlClient } from "../../../src/ctl/control-client.js";
import type { StreamMessage, WireEvent } from "../../../src/relay/control/wire-event.js";
import { Child } from "../child.js";
import { agentConfig, HOLD_DEADLINE_MS } from "../configs.js";
import { AGENT_BUNDLE, RELAY_CLI } from "../paths.js";
import type { Answerer, ArmedRun } from "./answerer.js";
import type { MockFaultDevice } from "./mock-fault-device.js";

/** Node starts slowly under TCG. */
const START_TIMEOUT_MS = 120_000;
/** The credit window the emulator sections give the shipped agent. */
const CREDITS = 4096;
/** How often a back-to-back run polls the relay's counters: small against a run of seconds under TCG. */
const POLL_MS = 5;

interface Waiting {
  pasidBase: number;
  count: number;
  resolve: (times: Map<number, number>) => void;
  reject: (err: Error) => void;
}

export class RelayPathAnswerer implements Answerer {
  /** Answer times (µs) by PASID, from the relay's events. */
  private readonly times = new Map<number, number>();
  private waiting: Waiting | null = null;
  private problem: Error | null = null;
  private closeEvents: (() => void) | null = null;
  /** Faults armed so far: the relay's count of the agent's SUCCESS answers reaches it when a run is done. */
  private armedTotal = 0;

  private constructor(
    private readonly relay: Child,
    private readonly agent: Child,
    private readonly dir: string,
    private readonly client: ControlClient,
  ) {}

  static async start(device: MockFaultDevice): Promise<RelayPathAnswerer> {
    const dir = mkdtempSync(join(tmpdir(), "iopf-real-kernel-"));
    const socket = join(dir, "link.sock");
    const control = `unix:${join(dir, "control.sock")}`;
    const relayFile = join(dir, "relay.json");
    const agentFile = join(dir, "agent.json");
    // The longest deadline: under TCG a backlog of queued faults takes seconds, and every answer must be the agent's.
    writeFileSync(relayFile, JSON.stringify({
      viommu: "virtio-iommu",
      devices: [{ devId: device.devId, endpointId: 0x11, name: "mock", deadlineMs: HOLD_DEADLINE_MS }],
    }));
    writeFileSync(agentFile, JSON.stringify(agentConfig(CREDITS)));
    const relay = new Child("iopf-relay", process.execPath, [
      RELAY_CLI, "--fault-fd", "3", "--config", relayFile, "--socket-path", socket, "--control", control, "--log-level", "info", "--log-format", "json",
    ], [device.faultFd]);
    const agent = new Child("iopf-agent", process.execPath, [AGENT_BUNDLE, "--connect", `unix:${socket}`, "--config", agentFile, "--log-level", "info"]);
    const path = new RelayPathAnswerer(relay, agent, dir, new ControlClient(control));
    try {
      await relay.waitForLine(/relay ready/, START_TIMEOUT_MS);
      await agent.waitForLine(/"session up"/, START_TIMEOUT_MS);
    } catch (err) {
      await path.stop().catch(() => undefined);
      throw err;
    }
    return path;
  }

  async arm(pasidBase: number, count: number, each: boolean): Promise<ArmedRun> {
    this.armedTotal += count;
    if (!each) {
      this.unsubscribe();
      return { answered: this.lastAnswer(pasidBase + count - 1, this.armedTotal) };
    }
    await this.subscribe();
    const answered = new Promise<Map<number, number>>((resolve, reject) => {
      this.waiting = { pasidBase, count, resolve, reject };
    });
    this.check();
    return { answered };
  }

  private async subscribe(): Promise<void> {
    if (this.closeEvents) return;
    this.closeEvents = await this.client.events({ kind: ["answered", "expired"] }, (m) => this.onMessage(m), (reason) => this.fail(`the event stream closed: ${reason}`));
    // The subscription was written before this request, so the relay has read it by the time it answers.
    await this.client.status();
  }

  private unsubscribe(): void {
    this.closeEvents?.();
    this.closeEvents = null;
  }

  /** The time (us) at which the relay's counters first showed `total` SUCCESS answers by the agent, as the answer time of `lastPasid`. */
  private async lastAnswer(lastPasid: number, total: number): Promise<Map<number, number>> {
    for (;;) {
      const { counters } = await this.client.status();
      const success = counters.answers["guest"]?.success ?? 0;
      const other = Object.entries(counters.answers).some(([origin, c]) => c.invalid > 0 || (origin !== "guest" && c.success > 0));
      if (other) throw new Error(`expected every fault answered SUCCESS by the agent, got the relay's counters ${JSON.stringify(counters.answers)}`);
      if (success >= total) return new Map([[lastPasid, Date.now() * 1000]]);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  private onMessage(m: StreamMessage): void {
    if (m.type === "lost") this.fail(`the relay's event stream lost ${m.count} events (this driver read too slowly); no latency can be computed`);
    if (m.type === "error") this.fail(`the relay's event stream said: ${m.message}`);
    if (m.type !== "events") return;
    for (const e of m.events) {
      if (e.kind !== "answered" || e.code !== "success" || e.origin !== "guest") this.fail(`expected every fault answered SUCCESS by the agent, got ${describe(e)}`);
      else if (e.pasid !== undefined) this.times.set(e.pasid, e.t * 1000);
    }
    this.check();
  }

  private fail(why: string): void {
    this.problem ??= new Error(why);
    this.check();
  }

  private check(): void {
    const w = this.waiting;
    if (!w) return;
    if (this.problem) {
      this.waiting = null;
      w.reject(this.problem);
      return;
    }
    const run = new Map<number, number>();
    for (let p = w.pasidBase; p < w.pasidBase + w.count; p++) {
      const t = this.times.get(p);
      if (t === undefined) return;
      run.set(p, t);
    }
    this.waiting = null;
    w.resolve(run);
  }

  /** Stops the relay (which answers every group it read), then the agent; returns the relay's counters from its "stopped" line. */
  async stop(): Promise<unknown> {
    this.unsubscribe();
    const code = await this.relay.stop(60_000);
    await this.agent.stop();
    rmSync(this.dir, { recursive: true, force: true });
    const output = this.relay.output();
    if (code !== 0) throw new Error(`iopf-relay exited with code ${code} at SIGTERM, expected 0; its last output:\n${output}`);
    const stopped = output.split("\n").reverse().find((l) => l.includes('"msg":"stopped"'));
    return stopped ? JSON.parse(stopped) : null;
  }
}

function describe(e: WireEvent): string {
  return `${e.kind} ${e.code ?? ""} by ${e.origin ?? "?"} for PASID ${e.pasid ?? "none"}`;
}
