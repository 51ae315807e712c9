#!/usr/bin/env node
// iopf-relay: carries IO page faults from the host's iommufd fault queue to
// the guest's agent and its answers back. Never daemonizes; exits promptly on
// SIGTERM after answering every group it has read.
import { loadRelayConfig, ConfigError, readConfigText, RelayConfig } from "../relay/config.js";
import { capabilities } from "../relay/capabilities.js";
import { parseRelayCli, UsageError, USAGE } from "../relay/cli-options.js";
import { parseQemuArgsCli, printQemuArgs, QEMU_ARGS_USAGE } from "../relay/control/qemu-args.js";
import { startRelay } from "../relay/daemon.js";
import { DEMO_DEV_IDS, demoConfig, demoConfigJson } from "../relay/demo-config.js";
import { RESTARTS_ENV, runKeeper } from "../relay/keeper.js";
import { fileURLToPath } from "node:url";
import { createLogger } from "../relay/log.js";
import { notifyServiceManager } from "../relay/service-manager.js";
import { openSources } from "../relay/source-factory.js";
import { HandedQueues } from "../relay/handoff/handed-queues.js";
import { HandoffServer } from "../relay/handoff/handoff-server.js";
import { reloadDeviceMap } from "../relay/config-reload.js";
import { serveKeeperChannel } from "../relay/handoff/keeper-link.js";
import { checkIommuDevice, StartupError } from "../relay/startup-error.js";
import { SOFTWARE, VERSION } from "../relay/version.js";
import { failpoint } from "../kernel/failpoint.js";
import { StopSignals } from "../relay/stop-signals.js";

async function main(argv: string[]): Promise<number> {
  const signals = new StopSignals();
  if (argv[0] === "print-qemu-args") {
    const opts = parseQemuArgsCli(argv.slice(1));
    process.stdout.write(opts === "help" ? QEMU_ARGS_USAGE + "\n" : printQemuArgs(opts));
    return 0;
  }
  const parsed = parseRelayCli(argv);
  if (parsed.kind === "help") {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (parsed.kind === "version") {
    process.stdout.write(VERSION + "\n");
    return 0;
  }
  if (parsed.kind === "print-capabilities") {
    process.stdout.write(JSON.stringify(capabilities(), null, 2) + "\n");
    return 0;
  }
  const cli = parsed.cli;
  const log = createLogger("iopf-relay", cli.logFormat, cli.logLevel);
  let config: RelayConfig;
  if (cli.config) config = loadRelayConfig(cli.config);
  else if (cli.faultFds.length === 0 && !cli.iommufd && cli.keeperChannel === null) config = demoConfig();
  else throw new UsageError("the kernel's fault sources need --config FILE with the device map (\"viommu\", and \"devices\", which may be empty when a handoff brings them; see docs/operations.md)");
  if (cli.iommufd) checkIommuDevice();
  if (cli.keeper) {
    const configJson = cli.config ? readConfigText(cli.config) : demoConfigJson();
    return runKeeper({
      cli, script: fileURLToPath(import.meta.url), configJson, maxHeld: config.maxHeld,
      devIds: cli.config ? config.devices.entries.map((e) => e.devId) : DEMO_DEV_IDS,
      log: createLogger("iopf-relay-keeper", cli.logFormat, cli.logLevel),
      signals,
      announce: (info) => process.stdout.write(JSON.stringify(info) + "\n"),
    });
  }

  const opened = await openSources(
    {
      faultFds: cli.faultFds, emulatorFds: cli.emulatorFds, iommufd: cli.iommufd, builtIn: cli.sources, rate: cli.rate,
      devIds: cli.config ? config.devices.entries.map((e) => e.devId) : DEMO_DEV_IDS, maxHeld: config.maxHeld, handoff: cli.handoff !== null || cli.keeperChannel !== null,
    },
    log,
    (info) => process.stdout.write(JSON.stringify(info) + "\n"),
  );
  failpoint("relay-starting");
  const relay = await startRelay({ config, link: cli.link, sources: opened.sources, log, software: SOFTWARE, control: cli.control, emulator: opened.emulator });
  relay.core.metrics.keeperRestarts = Number(process.env[RESTARTS_ENV] ?? 0) || 0;
  const handed = cli.handoff === null && cli.keeperChannel === null ? null : new HandedQueues({ core: relay.core, devices: relay.devices, fds: opened.fds!, log });
  const handoff = cli.handoff === null ? null : await HandoffServer.listen(cli.handoff, handed!, { group: cli.handoffGroup, log }).catch(async (err: Error) => {
    // The relay may have read groups already: it answers them before it exits.
    await relay.stop();
    await opened.release();
    throw err;
  });
  const keeperChannel = cli.keeperChannel === null ? null : await serveKeeperChannel(cli.keeperChannel, handed!, log);
  const configPath = cli.config;
  if (configPath !== null) {
    process.on("SIGHUP", () => reloadDeviceMap({ path: configPath, core: relay.core, devices: relay.devices, handedDevIds: () => handed?.devIds() ?? new Set(), log }));
  }
  log("relay ready", { ...relay.ready, ...(handoff ? { handoff: handoff.description } : {}) });
  notifyServiceManager("READY=1", log);
  // Under a keeper: tell it this relay started (a relay that exits before this, again and again, cannot start).
  if (process.send) {
    process.send({ ready: true }, () => failpoint("relay-after-ready"));
    process.channel?.unref();
  }

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      // A supervisor may repeat SIGTERM; leaving now would abandon groups already read.
      // Only a second interrupt from a person at the terminal forces the exit.
      if (signal !== "SIGINT") return;
      log.level("warn", "second interrupt: exiting without answering what is left", { signal, inFlight: relay.core.inFlight });
      process.exit(1);
    }
    stopping = true;
    notifyServiceManager("STOPPING=1", log);
    log("stopping: answering every group read", { signal, inFlight: relay.core.inFlight });
    await handoff?.close();
    await keeperChannel?.close();
    await relay.stop();
    await opened.release();
    log("stopped", relay.core.metrics.summary());
    process.exit(0);
  };
  signals.handle((signal) => void stop(signal).catch(fail));
  return -1;
}

/** The operator's mistakes are one line each, printed here only; anything else is a bug, told once with its stack. */
function fail(err: Error): never {
  if (err instanceof UsageError) {
    process.stderr.write(`iopf-relay: ${err.message}; run iopf-relay --help for the options\n`);
    process.exit(2);
  }
  if (err instanceof StartupError || err instanceof ConfigError) process.stderr.write(`iopf-relay: ${err.message}\n`);
  else process.stderr.write(`iopf-relay: unexpected failure: ${err.stack ?? err.message}\n`);
  process.exit(1);
}

main(process.argv.slice(2)).then((code) => {
  if (code >= 0) process.exit(code);
}, fail);
