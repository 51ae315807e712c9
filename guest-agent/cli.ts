#!/usr/bin/env node
// iopf-agent: the entry point the bundle is built from (dist/iopf-agent.mjs),
// so everything it reaches must run under a guest's plain node with no
// node_modules and no native modules.
import { readFileSync } from "node:fs";
import { Agent } from "./agent.js";
import { agentCapabilities } from "./capabilities.js";
import { parseCli, USAGE } from "./cli-args.js";
import { ConfigError, defaultConfig, parseConfig } from "./config.js";
import { jsonLogger } from "./log.js";
import { AGENT_VERSION } from "./version.js";

function loadConfig(file: string | null) {
  if (file === null) return defaultConfig();
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read the config file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${file} is not JSON: ${(err as Error).message}`);
  }
  return parseConfig(json, file);
}

async function main(): Promise<void> {
  let args;
  let config;
  try {
    args = parseCli(process.argv.slice(2));
    if (args.help) {
      process.stdout.write(USAGE);
      return;
    }
    if (args.version) {
      process.stdout.write(AGENT_VERSION + "\n");
      return;
    }
    config = loadConfig(args.configFile);
    args.apply(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`iopf-agent: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  const log = jsonLogger(config.logLevel);
  process.on("uncaughtException", (err) => {
    log.error("unexpected failure; the agent exits so that it starts clean", { err: err.stack ?? err.message });
    process.exit(1);
  });
  const agent = await Agent.start({ config, log, capabilities: agentCapabilities(config) });
  log.info("started", { port: config.port, credits: config.credits, appSocket: config.appSocket, handlers: config.handlers.length });
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    // A second signal means "now": skip waiting for the goodbye to be written.
    if (++signals > 1) process.exit(1);
    log.info("stopping", { signal: sig });
    void agent.stop(`iopf-agent received ${sig}`).then(async () => {
      if (await agent.released(2000)) process.exit(0);
      // No exit can interrupt a read sleeping on the port; only the relay's
      // data or its leaving can. It stayed connected and silent.
      log.warn("the relay did not answer the goodbye within 2 s; a read on the port cannot be interrupted, so the agent kills itself", {});
      process.kill(process.pid, "SIGKILL");
    });
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

main().catch((err: Error) => {
  process.stderr.write(`iopf-agent: ${err.message}\n`);
  process.exit(1);
});
