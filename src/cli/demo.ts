#!/usr/bin/env node
// `npm start`: the relay on the built-in kernel emulator (the kernel's fault
// fd contract over a socket), the real guest agent as a separate process on
// a Unix socket, and a live view of what flows between them. Ctrl-C stops
// all three after every group read has been answered.
//
// Ctrl-C in a terminal is SIGINT to the whole foreground process group. The
// emulator (KernelEmulator.start) and the agent run in their own process
// groups, so the signal reaches the demo alone and the demo stops them in
// order: the relay answers what it read while the emulator still takes
// answers, then the agent says goodbye, then the emulator quits.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { EmulatorStats } from "../fault/emulator/kernel-emulator.js";
import { startRelay } from "../relay/daemon.js";
import type { RelayConfig } from "../relay/config.js";
import { DEMO_DEV_IDS, demoConfig } from "../relay/demo-config.js";
import { UsageError } from "../relay/cli-options.js";
import { DEMO_USAGE, parseDemoArgs } from "../relay/demo-options.js";
import { flow, LiveView, originParts, relayFrame } from "../relay/live-view.js";
import { CORE_DEFAULTS } from "../relay/relay-core.js";
import { RelayMetrics } from "../relay/relay-metrics.js";
import { createLogger } from "../relay/log.js";
import { emulatorDemoLoad, openSources } from "../relay/source-factory.js";
import { IOMMU_DEVICE } from "../relay/startup-error.js";
import { StopSignals } from "../relay/stop-signals.js";
import { SOFTWARE } from "../relay/version.js";

/** Endpoints the demo agent refuses, on purpose, so that both codes show: FAILURE is written to the kernel as INVALID. */
const REFUSED = [{ endpoint: 0x17, answer: "invalid" }, { endpoint: 0x18, answer: "failure" }] as const;

/**
 * The agent's window fits what the relay holds (maxHeld, less the groups it
 * reads ahead), so the relay never leaves groups in the queue while the
 * agent has credit for them.
 */
function agentConfig(config: RelayConfig): object {
  const window = config.maxHeld - CORE_DEFAULTS.readAhead;
  return {
    appSocket: "none",
    credits: window,
    maxInFlight: window,
    handlers: [
      ...REFUSED.map((r) => (r.answer === "invalid" ? { endpoint: r.endpoint, handler: "invalid" } : { endpoint: r.endpoint, handler: "policy", rules: [], otherwise: r.answer })),
      { handler: "policy", otherwise: "invalid", rules: [{ start: "0x0", end: "0x800000000000", perm: "rwx", answer: "success" }] },
    ],
  };
}

/** What the INVALID answers are, from the agent's config and the device map: said on screen, so nobody takes them for a fault. */
function invalidNote(): string {
  const entries = demoConfig().devices.entries;
  const names = REFUSED.map((r) => `${entries.find((e) => e.endpoint === r.endpoint)?.name ?? `endpoint ${r.endpoint}`} ${r.answer.toUpperCase()}`);
  const share = REFUSED.length / DEMO_DEV_IDS.length;
  return `INVALID answers are on purpose: the demo agent answers ${names.join(" and ")} (written to the kernel as INVALID), ` +
    `${REFUSED.length} of ${DEMO_DEV_IDS.length} devices, so about ${share === 0.25 ? "a quarter" : `${Math.round(share * 100)}%`} of the guest's answers.`;
}

/** The last words: what was read and answered, and what the emulator saw. */
function summary(m: RelayMetrics, seconds: number, final: EmulatorStats): string[] {
  const width = 79;
  return [
    `stopped after ${seconds.toFixed(0)} s: ${m.groups} groups read, ${m.totalAnswers()} answered`,
    ...(m.answers.size > 0 ? flow("  by ", originParts(m.answers), ", ", width) : []),
    `kernel emulator: delivered ${final.deliveredGroups} groups, contract violations ${final.violationCount}`,
    ...(final.outstanding > 0
      ? flow("  ", `${final.outstanding} were still queued, unread, at the stop: a kernel keeps those for its next reader`.split(" "), " ", width)
      : []),
  ];
}

/** Resolves when the child has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

async function main(argv: string[]): Promise<void> {
  const opts = parseDemoArgs(argv);
  if (opts.help) {
    process.stdout.write(DEMO_USAGE + "\n");
    return;
  }
  const { rate, seconds } = opts;
  if (existsSync(IOMMU_DEVICE)) {
    process.stderr.write(`note: this machine has ${IOMMU_DEVICE}; the demo still uses the built-in kernel emulator. For real faults run iopf-relay --keeper --iommufd --config FILE (docs/operations.md).\n`);
  }
  const dir = mkdtempSync(join(tmpdir(), "iopf-demo-"));
  // Whatever ends the demo, its temporary directory goes with it.
  process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
  // The terminal closed (SIGHUP), or `npm start | head` has read enough: stop the same way.
  const signals = new StopSignals(["SIGINT", "SIGTERM", "SIGHUP"]);
  process.stdout.on("error", () => signals.ask("stdout closed"));
  const socket = join(dir, "link.sock");
  const config = demoConfig();
  const agentConfigFile = join(dir, "agent.json");
  writeFileSync(agentConfigFile, JSON.stringify(agentConfig(config)));
  const log = createLogger("iopf-relay", "json", "warn", (line) => process.stderr.write(line));

  const opened = await openSources({ faultFds: [], emulatorFds: [], iommufd: false, builtIn: ["emulator"], rate: 0, devIds: DEMO_DEV_IDS, maxHeld: config.maxHeld, handoff: false }, log, () => undefined);
  const emulator = opened.emulator!;
  const relay = await startRelay({ config, link: { listen: `unix:${socket}` }, sources: opened.sources, log, software: SOFTWARE });
  log("relay ready", relay.ready);
  let stopping = false;
  // Faults start once the agent is there, as a device starts faulting once the guest runs.
  relay.core.events.once("event", function onEvent(e: { kind: string }) {
    if (e.kind !== "session-up") {
      relay.core.events.once("event", onEvent);
      return;
    }
    emulator.load(emulatorDemoLoad(DEMO_DEV_IDS, rate))
      .catch((err: Error) => {
        // quit() at the stop ends the load; only an end before it is news.
        if (!stopping) process.stderr.write(`iopf-relay demo: the kernel emulator's load ended early: ${err.message}\n`);
      });
  });
  const agentBundle = fileURLToPath(new URL("../../../dist/iopf-agent.mjs", import.meta.url));
  const parentGuard = fileURLToPath(new URL("./exit-with-parent.js", import.meta.url));
  // Its own process group keeps the terminal's Ctrl-C from it; its stdin, a
  // pipe from the demo, ends when the demo does, however it ends.
  const agent = spawn(process.execPath, ["--import", parentGuard, agentBundle, "--connect", `unix:${socket}`, "--config", agentConfigFile, "--log-level", "warn"], {
    stdio: ["pipe", "inherit", "inherit"],
    detached: true,
  });

  const view = new LiveView(process.stdout, {
    title: `iopf-relay demo: kernel emulator (${rate} groups/s, ${DEMO_DEV_IDS.length} devices) -> relay -> agent`,
    notes: ["Ctrl-C stops it after every group read has been answered.", invalidNote()],
  });
  const started = performance.now();
  const elapsedS = (): number => (performance.now() - started) / 1000;
  const tick = setInterval(() => {
    // The relay's figures first, then the emulator's: both of this second, and
    // the emulator has delivered at least every group the relay has read.
    const relayNow = relayFrame(relay.core, elapsedS());
    void emulator.stats().then(
      (s) => {
        if (!stopping) view.render({ ...relayNow, emulator: { delivered: s.deliveredGroups, outstanding: s.outstanding, violations: s.violationCount } });
      },
      () => undefined,
    );
    if (elapsedS() >= seconds) signals.ask(`${seconds} s passed`);
  }, 1000);

  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearInterval(tick);
    // The relay answers every group it read while the emulator still takes answers; then the agent leaves.
    await relay.stop();
    agent.kill("SIGTERM");
    await exited(agent);
    const final = await emulator.stats();
    await opened.release();
    const m = relay.core.metrics;
    process.stdout.write(["", ...summary(m, elapsedS(), final), ""].join("\n"));
    if (final.violationCount > 0) process.stderr.write(`iopf-relay demo: the relay broke the kernel's contract: ${JSON.stringify(final.violations.slice(0, 5))}\n`);
    process.exit(final.violationCount > 0 || m.groups !== m.totalAnswers() ? 1 : 0);
  };
  signals.handle(() => void stop().catch(fail));
}

function fail(err: Error): never {
  if (err instanceof UsageError) {
    process.stderr.write(`npm start: ${err.message}; run npm start -- --help for the options\n`);
    process.exit(2);
  }
  process.stderr.write(`iopf-relay demo: ${err.message}\n`);
  process.exit(1);
}

main(process.argv.slice(2)).catch(fail);
