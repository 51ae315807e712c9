// The measured path, as in production: the relay and the agent as separate
// node processes on a Unix socket, the relay reading the kernel emulator's
// socket as an inherited fault fd (--emulator-fd), exactly as it would read an
// iommufd fault fd handed over by a VMM or a keeper.
//
// The relay gets two emulators: the first only warms it up (JIT, buffers,
// the socket), the second is measured. The emulator's latency histogram
// cannot be reset, so a warm-up on the measured one would stay in its
// percentiles.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { EmulatorStats, KernelEmulator, LoadOptions } from "../../src/fault/emulator/kernel-emulator.js";
import { Child } from "./child.js";
import { agentConfig, holdingAgentConfig, relayConfig, RelayConfigOptions } from "./configs.js";
import { AGENT_BUNDLE, BENCH_AGENT, GC_PROBE, RELAY_CLI } from "./paths.js";

/** shipped: dist/iopf-agent.mjs; hold: the same with a program holding groups on its app socket (bench-agent.ts); silent: bench-agent.ts. */
export type GuestKind = "shipped" | "hold" | "silent";

export interface RelayPathOptions extends RelayConfigOptions {
  guest: GuestKind;
  /** The agent's credit window (and, for the bench agents, its max_in_flight). */
  credits: number;
  /** The shipped agent accepts FEATURE_RAW_RECORDS (its config's rawRecords; off by default). */
  rawRecords?: boolean;
  /** Run the relay and the agent with --trace-gc (full collections only): a line per mark-compact, for the live heap. */
  traceGc?: boolean;
  /** Write node --cpu-prof profiles of the relay and the agent into this folder. */
  profileDir?: string;
  /** Preload tail/gc-probe.ts into the relay and the agent: a line per collection, on CLOCK_MONOTONIC. */
  gcProbe?: boolean;
}

const START_TIMEOUT_MS = 20_000;
const STOP_GRACE_MS = 60_000;

export class RelayPath {
  private constructor(
    readonly emulator: KernelEmulator,
    private readonly warmEmulator: KernelEmulator,
    readonly relay: Child,
    readonly agent: Child,
    /** The guest program holding groups on the agent's app socket (guest "hold"). */
    readonly holder: Child | null,
    private readonly dir: string,
    /** The measured emulator's violations from the relay's start-up sweep. */
    private readonly sweepViolations: number,
  ) {}

  static async start(o: RelayPathOptions): Promise<RelayPath> {
    const dir = mkdtempSync(join(tmpdir(), "iopf-bench-"));
    const socket = join(dir, "link.sock");
    const relayFile = join(dir, "relay.json");
    const agentFile = join(dir, "agent.json");
    writeFileSync(relayFile, JSON.stringify(relayConfig(o)));
    const appSocket = join(dir, "app.sock");
    writeFileSync(agentFile, JSON.stringify(o.guest === "hold" ? holdingAgentConfig(o.credits, appSocket) : agentConfig(o.credits, o.rawRecords)));
    const prof = (name: string): string[] => [
      ...(o.profileDir ? ["--cpu-prof", "--cpu-prof-dir", o.profileDir, "--cpu-prof-name", `${name}.cpuprofile`] : []),
      ...(o.traceGc ? ["--trace-gc", "--trace-gc-ignore-scavenger"] : []),
      ...(o.gcProbe ? ["--import", pathToFileURL(GC_PROBE).href] : []),
    ];

    const warm = await KernelEmulator.start();
    const measured = await KernelEmulator.start();
    const relay = new Child("iopf-relay", process.execPath, [
      ...prof("relay"), RELAY_CLI, "--emulator-fd", "3", "--emulator-fd", "4", "--config", relayFile, "--socket-path", socket, "--log-level", "info", "--log-format", "json",
    ], [warm.faultFd, measured.faultFd]);
    // The relay sweeps each inherited fd before reading it (cookies 1..maxHeld plus a read, SUCCESS). On the
    // emulator's stream nothing was delivered yet, so it counts each of those answers as an unknown cookie:
    // they are the start-up's, not the measured path's, and are taken off its violations.
    const swept = relay.waitForLine(/answered SUCCESS to the groups a previous reader.*"emulator-fd:4"/, START_TIMEOUT_MS);
    swept.catch(() => undefined); // awaited below; a relay that fails to start is reported by the next wait
    await relay.waitForLine(/relay ready/, START_TIMEOUT_MS);
    const address = `unix:${socket}`;
    const agent = o.guest === "silent"
      ? new Child("bench-agent (silent)", process.execPath, [...prof("agent"), BENCH_AGENT, "--mode", "silent", "--connect", address, "--max-in-flight", String(o.credits)])
      : new Child("iopf-agent", process.execPath, [...prof("agent"), AGENT_BUNDLE, "--connect", address, "--config", agentFile, "--log-level", "info"]);
    await agent.waitForLine(/"session up"/, START_TIMEOUT_MS);
    let holder: Child | null = null;
    if (o.guest === "hold") {
      holder = new Child("bench-agent (hold)", process.execPath, [BENCH_AGENT, "--mode", "hold", "--app-socket", appSocket]);
      await holder.waitForLine(/^registered$/, START_TIMEOUT_MS);
    }
    await swept;
    // The sweep's bytes were written before the relay logged it; stats() reads every answer already written.
    const sweepViolations = (await measured.stats()).violationCount;
    return new RelayPath(measured, warm, relay, agent, holder, dir, sweepViolations);
  }

  /** Runs a load on the warm-up emulator: the same devices as the measured load, answered the same way. */
  async warmUp(load: LoadOptions): Promise<void> {
    await this.warmEmulator.load(load);
  }

  /** Stops the relay (which answers every group it read), then the agent; returns the measured emulator's final stats, the start-up sweep's answers left out. */
  async stop(): Promise<EmulatorStats> {
    // Answering 100k held groups at shutdown takes a while on a loaded machine.
    const relayCode = await this.relay.stop(STOP_GRACE_MS);
    await this.agent.stop();
    await this.holder?.stop();
    const final = await this.emulator.quit();
    await this.warmEmulator.quit();
    await Promise.all([this.emulator.close(), this.warmEmulator.close()]);
    rmSync(this.dir, { recursive: true, force: true });
    if (relayCode !== 0) throw new Error(`iopf-relay exited with code ${relayCode} at SIGTERM, expected 0; its last output:\n${this.relay.output()}`);
    const kinds = { ...final.violationKinds, "unknown-cookie": final.violationKinds["unknown-cookie"] - this.sweepViolations };
    return { ...final, violationCount: final.violationCount - this.sweepViolations, violationKinds: kinds, violations: final.violations.slice(this.sweepViolations) };
  }
}
