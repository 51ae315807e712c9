// Where the benchmark finds what it runs, from its compiled place
// (build/scripts/bench/) back to the repository.
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const RELAY_CLI = join(ROOT, "build/src/cli/iopf-relay.js");
export const AGENT_BUNDLE = join(ROOT, "dist/iopf-agent.mjs");
export const BENCH_AGENT = join(ROOT, "build/scripts/bench/bench-agent.js");
export const NODE_ECHO = join(ROOT, "build/scripts/bench/node-echo.js");
/** tsc does not copy .c files, so the C source is read from the source tree. */
export const BASELINE_SOURCE = join(ROOT, "scripts/bench/baseline-responder.c");
/** Preloaded with `node --import` into the relay and the agent by the tail section: their collections with timestamps. */
export const GC_PROBE = join(ROOT, "build/scripts/bench/tail/gc-probe.js");
