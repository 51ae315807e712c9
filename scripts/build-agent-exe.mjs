// Builds dist/iopf-agent: the guest agent as one executable file, a Node
// single executable application (SEA) for guests without node. The agent,
// bundled by esbuild into one CommonJS script (SEA runs only that), becomes
// a blob (node --experimental-sea-config) that postject injects into a copy
// of this node binary. The result is cached under ~/.cache/iopf-relay/ by a
// hash of the script, the node binary and the injection's settings, since
// it is as large as node itself and takes seconds to write; an unchanged
// agent copies the cached file. Needs build/guest-agent (node
// scripts/build.mjs). Prints the executable's path.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "build", "guest-agent", "cli.js");
const out = join(root, "dist", "iopf-agent");
// Node's fixed marker that says a SEA blob is present (doc/api/single-executable-applications.md).
const FUSE = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";
const SEA_CONFIG = { disableExperimentalSEAWarning: true, useCodeCache: true };
// ws tries these optional native add-ons in a try/catch. A SEA's require()
// loads built-in modules only, and warns on stderr at the first other name,
// which would break the agent's JSON-lines log: bundle them as modules that
// throw, which ws takes as "not installed", as it does without them.
const absentOptional = {
  name: "absent-optional-addons",
  setup(b) {
    b.onResolve({ filter: /^(bufferutil|utf-8-validate)$/ }, (args) => ({ path: args.path, namespace: "absent" }));
    b.onLoad({ filter: /.*/, namespace: "absent" }, (args) => ({ contents: `throw new Error("${args.path} is not part of the single executable");` }));
  },
};

/** Runs a step quietly (node and postject chat on stderr), showing its output only when it fails. */
function quiet(what, args) {
  try {
    execFileSync(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
  } catch (err) {
    throw new Error(`build-agent-exe: ${what} failed:\n${err.stdout ?? ""}${err.stderr ?? err.message}`);
  }
}

if (!existsSync(entry)) {
  console.error(`build-agent-exe: ${entry} is missing; run node scripts/build.mjs first`);
  process.exit(1);
}
const cache = join(homedir(), ".cache", "iopf-relay");
const work = join(cache, `agent-exe-build-${process.pid}`);
mkdirSync(work, { recursive: true });
try {
  const script = join(work, "iopf-agent.cjs");
  const { build } = await import("esbuild");
  await build({ entryPoints: [entry], bundle: true, platform: "node", target: "node20", format: "cjs", outfile: script, plugins: [absentOptional], logLevel: "warning" });

  const postject = JSON.parse(readFileSync(join(root, "node_modules", "postject", "package.json"), "utf8")).version;
  const key = createHash("sha256").update(readFileSync(script)).update(readFileSync(process.execPath))
    .update(JSON.stringify({ SEA_CONFIG, postject, node: process.version })).digest("hex").slice(0, 16);
  const cached = join(cache, `iopf-agent-exe-${key}`);
  if (!existsSync(cached)) {
    const blob = join(work, "sea.blob");
    const config = join(work, "sea-config.json");
    writeFileSync(config, JSON.stringify({ main: script, output: blob, ...SEA_CONFIG }));
    quiet("making the SEA blob", ["--experimental-sea-config", config]);
    const exe = join(work, "iopf-agent");
    copyFileSync(process.execPath, exe);
    chmodSync(exe, 0o755);
    quiet("injecting the blob with postject", [join(root, "node_modules", "postject", "dist", "cli.js"), exe, "NODE_SEA_BLOB", blob, "--sentinel-fuse", FUSE]);
    const version = execFileSync(exe, ["--version"], { encoding: "utf8" }).trim();
    const want = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
    if (version !== want) throw new Error(`the built executable printed "${version}" for --version, expected "${want}"`);
    renameSync(exe, cached);
    // Each is as large as node: keep only the current one.
    for (const old of readdirSync(cache).filter((n) => n.startsWith("iopf-agent-exe-") && join(cache, n) !== cached)) rmSync(join(cache, old), { force: true });
  }
  mkdirSync(dirname(out), { recursive: true });
  copyFileSync(cached, `${out}.tmp`);
  chmodSync(`${out}.tmp`, 0o755);
  renameSync(`${out}.tmp`, out);
  process.stdout.write(`${out}\n`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
