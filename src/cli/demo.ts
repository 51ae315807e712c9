#!/usr/bin/env node
// `npm start`: the relay on the built-in kernel emulator (the kernel's fault
// fd contract over a socket), the real guest agent as a separate process on
// a Unix socket, and a live view of what flows between them. Ctrl-C stops
// all three after every group read has been answered.
//   npm start -- --rate 20000      groups per second (default 2000)
//   npm start -- --seconds 10      stop by itself after a while
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startRelay } from "../relay/daemon.js";
import { DEMO_DEV_IDS, demoConfig } from "../relay/demo-config.js";
import { LiveView } from "../relay/live-view.js";
import { createLogger } from "../relay/log.js";
import { openSources } from "../relay/source-factory.js";
import { SOFTWARE } from "../relay/version.js";

// The agent answers most devices SUCCESS, one INVALID and one FAILURE (which
// the relay writes to the kernel as INVALID), so both codes show.
const AGENT_CONFIG = {
  appSocket: "none",
  credits: 1024,
  handlers: [
    { endpoint: 0x17, handler: "invalid" },
    { endpoint: 0x18, handler: "policy", rules: [], otherwise: "failure" },
    { handler: "policy", otherwise: "invalid", rules: [{ start: "0x0", end: "0x800000000000", perm: "rwx", answer: "success" }] },
  ],
};

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { rate: { type: "string" }, seconds: { type: "string" } } });
  const rate = Number(values.rate ?? 2000);
  const seconds = values.seconds ? Number(values.seconds) : Infinity;
  if (!Number.isInteger(rate) || rate < 1) throw new Error(`--rate: expected a positive integer, got ${values.rate}`);
  if (existsSync("/dev/iommu")) {
    process.stderr.write("note: this machine has /dev/iommu; the demo still uses the built-in kernel emulator. For real faults run iopf-relay --keeper --iommufd --config FILE (docs/operations.md).\n");
  }
  const dir = mkdtempSync(join(tmpdir(), "iopf-demo-"));
  const socket = join(dir, "link.sock");
  const agentConfig = join(dir, "agent.json");
  writeFileSync(agentConfig, JSON.stringify(AGENT_CONFIG));
  const log = createLogger("iopf-relay", "json", "warn", (line) => process.stderr.write(line));

  const config = demoConfig();
  const opened = await openSources({ faultFds: [], emulatorFds: [], iommufd: false, builtIn: ["emulator"], rate: 0, devIds: DEMO_DEV_IDS, maxHeld: config.maxHeld, handoff: false }, log, () => undefined);
  const relay = await startRelay({ config, link: { listen: `unix:${socket}` }, sources: opened.sources, log, software: SOFTWARE });
  let stopping = false;
  // Faults start once the agent is there, as a device starts faulting once the guest runs.
  relay.core.events.once("event", function onEvent(e: { kind: string }) {
    if (e.kind !== "session-up") {
      relay.core.events.once("event", onEvent);
      return;
    }
    opened.emulator?.load({ devices: DEMO_DEV_IDS.length, devBase: DEMO_DEV_IDS[0]!, records: 1, rate, durationMs: 24 * 3600_000, maxOutstanding: 4096, pasid: 1 })
      .catch((err: Error) => {
        if (!stopping) process.stderr.write(`kernel emulator load ended: ${err.message}\n`);
      });
  });
  const agentBundle = fileURLToPath(new URL("../../../dist/iopf-agent.mjs", import.meta.url));
  const agent = spawn(process.execPath, [agentBundle, "--connect", `unix:${socket}`, "--config", agentConfig, "--log-level", "warn"], { stdio: ["ignore", "inherit", "inherit"] });

  const view = new LiveView(process.stdout, `iopf-relay demo: kernel emulator (${rate} groups/s on ${DEMO_DEV_IDS.length} devices) -> relay -> iopf-agent over unix:${socket}   Ctrl-C to stop`);
  const started = Date.now();
  let emulatorStats: { delivered: number; outstanding: number; violations: number } | null = null;
  const tick = setInterval(() => {
    void opened.emulator?.stats().then((s) => (emulatorStats = { delivered: s.deliveredGroups, outstanding: s.outstanding, violations: s.violationCount }));
    const session = relay.core.currentSession;
    view.render({
      elapsedS: (Date.now() - started) / 1000,
      metrics: relay.core.metrics,
      inFlight: relay.core.inFlight,
      queued: relay.core.queued,
      session: session ? `up (epoch ${session.epoch})` : relay.core.metrics.sessionState,
      emulator: emulatorStats,
    });
    if ((Date.now() - started) / 1000 >= seconds) void stop();
  }, 1000);

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    agent.kill("SIGTERM");
    await relay.stop();
    await opened.release();
    rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`\nstopped: ${JSON.stringify(relay.core.metrics.summary())}\n`);
    process.exit(0);
  };
  process.on("SIGINT", () => void stop());
  process.on("SIGTERM", () => void stop());
}

main().catch((err: Error) => {
  process.stderr.write(`iopf-relay demo: ${err.message}\n`);
  process.exit(1);
});
