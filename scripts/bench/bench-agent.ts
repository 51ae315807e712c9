#!/usr/bin/env node
// The guests the shipped agent cannot play alone, as separate processes:
//   hold   a guest program on the shipped agent's app socket (--app-socket)
//          that registers HOLD_PASID and holds every group of it until told
//          to release; the agent (dist/iopf-agent.mjs) runs in a process of
//          its own, so its memory is measured without the program's.
//   silent a guest link that grants credit and never answers, so every
//          group ends by the relay's deadline.
// Commands on stdin, one a line: "count" prints "held N"; "release" answers
// every held group and prints "released N". SIGTERM stops it.
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { AgentClient } from "../../guest-agent/app/client.js";
import { GuestLink } from "../../src/link/guest-link.js";
import { Capabilities, OUR_CAPABILITIES } from "../../src/link/negotiation.js";
import { connect } from "../../src/link/transport/connect.js";
import { HOLD_PASID } from "./configs.js";

const { values } = parseArgs({
  options: { mode: { type: "string" }, connect: { type: "string" }, "app-socket": { type: "string" }, "max-in-flight": { type: "string" } },
});
const maxInFlight = Number(values["max-in-flight"] ?? 4096);
const capabilities: Capabilities = { ...OUR_CAPABILITIES, limits: { ...OUR_CAPABILITIES.limits, maxInFlight } };
const say = (line: string): void => void process.stdout.write(line + "\n");

/** A guest program on the agent's app socket that holds every HOLD_PASID group. */
async function hold(appSocket: string): Promise<void> {
  const client = await AgentClient.connect(appSocket);
  const held: (() => void)[] = [];
  client.onPageRequest(() => new Promise((resolve) => held.push(() => resolve("success"))));
  await client.register(HOLD_PASID);
  say("registered");
  process.on("SIGTERM", () => process.exit(0));
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

if (values.mode === "hold") {
  if (!values["app-socket"]) throw new Error("bench-agent: --mode hold expects --app-socket PATH (the agent's app socket)");
  await hold(values["app-socket"]);
} else if (values.mode === "silent") {
  if (!values.connect) throw new Error("bench-agent: --mode silent expects --connect unix:PATH");
  await silent(values.connect);
} else throw new Error(`bench-agent: --mode: expected hold or silent, got ${values.mode}`);
