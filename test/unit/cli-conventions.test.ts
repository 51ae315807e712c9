// The conventions a management tool relies on: --print-capabilities in the
// top-level shape of QEMU's vhost-user backends ({"type", "features"}), and
// --version on all three commands.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCli } from "../../guest-agent/cli-args.js";
import { AGENT_VERSION } from "../../guest-agent/version.js";
import { parseCtlCli } from "../../src/ctl/ctl-options.js";
import { ALL_FEATURES, Feature } from "../../src/link/negotiation.js";
import { capabilities } from "../../src/relay/capabilities.js";
import { parseRelayCli } from "../../src/relay/cli-options.js";
import { VERSION } from "../../src/relay/version.js";
import { projectRoot } from "../../scripts/vm/paths.js";

test("--print-capabilities has type and features at the top level, the rest beside them", (t) => {
  const caps = capabilities() as Record<string, unknown>;
  t.is(caps.type, "iopf-relay");
  t.deepEqual(caps.features, ["raw-records", "cancels"]);
  t.is(Object.keys(Feature).length, ALL_FEATURES.toString(2).replaceAll("0", "").length, "every feature bit has a name");
  t.is(caps.version, VERSION);
  t.false("features" in (caps.protocol as object), "features are not nested under protocol any more");
  t.deepEqual(Object.keys(caps).slice(0, 2), ["type", "features"]);
});

test("--version is an option of iopf-relay, iopfctl and iopf-agent", (t) => {
  t.is(parseRelayCli(["--version"]).kind, "version");
  t.is(parseCtlCli(["--version"], {}).command.cmd, "version");
  t.true(parseCli(["--version"]).version);
});

test("the agent's version is the package's", (t) => {
  // The agent ships as one bundled file with no package.json beside it, so it carries its own copy.
  const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { version: string };
  t.is(AGENT_VERSION, pkg.version);
  t.is(VERSION, pkg.version);
});
