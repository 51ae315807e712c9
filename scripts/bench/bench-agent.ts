#!/usr/bin/env node
// The guests the shipped agent cannot play, as a separate process like the
// real one:
//   hold   the real Agent (router, guard, batcher, app socket) with a
//          credit window above the 4096 its build offers, and an app client
//          in the same process that holds every HOLD_PASID group until told
//          to release; all other groups are answered at once by policy.
//   silent a guest link that grants credit and never answers, so every
//          group ends by the relay's deadline.
// Commands on stdin, one a line: "count" prints "held N"; "release" answers
// every held group and prints "released N". SIGTERM stops it.
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { Agent } from "../../guest-agent/agent.js";
import { AgentClient } from "../../guest-agent/app/client.js";
import { parseConfig } from "../../guest-agent/config.js";
import { jsonLogger } from "../../guest-agent/log.js";
import { GuestLink } from "../../src/link/guest-link.js";
import { Capabilities, OUR_CAPABILITIES } from "../../src/link/negotiation.js";
import { connect } from "../../src/link/transport/connect.js";
import { HOLD_PASID } from "./configs.js";

const { values } = parseArgs({
  options: { mode: { type: "string" }, connect: { type: "string" }, config: { type: "string" }, "max-in-flight": { type: "string" } },
});
const maxInFlight = Number(values["max-in-flight"] ?? 4096);
const capabilities: Capabilities = { ...OUR_CAPABILITIES, limits: { ...OUR_CAPABILITIES.limits, maxInFlight } };
const say = (line: string): void => void process.stdout.write(line + "\n");

/** The real Agent; with an app socket in its config, an app client that holds every HOLD_PASID group. */
async function agent(address: string, configFile: string): Promise<void> {
  const config = parseConfig(JSON.parse(readFileSync(configFile, "utf8")), configFile);
  config.port.connect = address;
  const log = jsonLogger("info");
  const agent = await Agent.start({ config, log, capabilities });
  process.on("SIGTERM", () => void agent.stop("bench agent stopping").then(() => process.exit(0)));
  if (config.appSocket === null) return;
  const client = await AgentClient.connect(config.appSocket!);
  const held: (() => void)[] = [];
  client.onPageRequest(() => new Promise((resolve) => held.push(() => resolve("success"))));
  await client.register(HOLD_PASID);
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line === "count") say(`held ${held.length}`);
    if (line === "release") {
      const n = held.length;
      for (const answer of held.splice(0)) answer();
      say(`released ${n}`);
    }
  });
}

async function silent(address: string): Promise<void> {
  const stream = await connect(address);
  let requests = 0;
  const link: GuestLink = new GuestLink(stream, {
    sessionUp: () => {
      link.grantCredit(maxInFlight);
      // The same line the agent logs, so the driver waits for both alike.
      process.stderr.write(JSON.stringify({ level: "info", msg: "session up" }) + "\n");
    },
    pageRequests: (r) => void (requests += r.count),
    cancels: () => undefined,
    sessionDown: () => undefined,
    handshakeRefused: (reason) => process.stderr.write(`bench-agent: the relay's offer was refused: ${reason}\n`),
    closed: () => process.exit(0),
  }, { software: "iopf-bench-silent", capabilities });
  link.start();
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line === "count") say(`held ${requests}`);
  });
  process.on("SIGTERM", () => process.exit(0));
}

const address = values.connect;
if (!address) throw new Error("bench-agent: expected --connect unix:PATH");
if (values.mode === "hold") await agent(address, values.config ?? "");
else if (values.mode === "silent") await silent(address);
else throw new Error(`bench-agent: --mode: expected hold or silent, got ${values.mode}`);
