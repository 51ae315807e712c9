#!/usr/bin/env node
// The least a node process can do per message: connect to --connect PATH
// and echo every chunk back. Its CPU per message is the floor for any node
// process woken once per message, the agent and the relay included
// (wake-up-floor.ts measures it).
import { connect } from "node:net";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { connect: { type: "string" } } });
if (!values.connect) throw new Error("node-echo: expected --connect PATH (a Unix socket)");
const socket = connect(values.connect);
socket.on("data", (chunk) => socket.write(chunk));
socket.on("close", () => process.exit(0));
process.on("SIGTERM", () => process.exit(0));
