// Build: protobuf static code from proto/, TypeScript to build/, and the
// guest agent bundled into dist/iopf-agent.mjs. Skips steps whose inputs are
// unchanged since their output was written.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join, dirname, basename } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: "inherit" });

function newestMtime(paths) {
  let newest = 0;
  for (const p of paths) {
    if (!existsSync(p)) continue;
    const st = statSync(p);
    if (st.isDirectory()) {
      newest = Math.max(newest, newestMtime(readdirSync(p).map((n) => join(p, n))));
    } else {
      newest = Math.max(newest, st.mtimeMs);
    }
  }
  return newest;
}

function generateProtobuf() {
  const outDir = join(root, "src", "gen");
  mkdirSync(outDir, { recursive: true });
  for (const file of readdirSync(join(root, "proto")).filter((f) => f.endsWith(".proto"))) {
    const src = join(root, "proto", file);
    const out = join(outDir, basename(file, ".proto") + ".js");
    if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) continue;
    run(bin("pbjs"), ["-t", "static-module", "-w", "esm", "--dependency", "../link/protobuf-runtime.js",
      "--no-verify", "--no-convert", "--no-delimited", "--no-typeurl", "-o", out, src]);
    run(bin("pbts"), ["--no-comments", "-o", out.replace(/\.js$/, ".d.ts"), out]);
    // pbts names the runtime by its import path; point the types at protobufjs.
    const dts = out.replace(/\.js$/, ".d.ts");
    writeFileSync(dts, readFileSync(dts, "utf8").replaceAll('"../link/protobuf-runtime.js"', '"protobufjs"'));
  }
}

/** Compiled files whose TypeScript source is gone: a stale test would still run, against modules that no longer exist. */
function removeStaleOutputs(dir) {
  if (!existsSync(dir)) return;
  for (const name of readdirSync(dir)) {
    const out = join(dir, name);
    if (statSync(out).isDirectory()) {
      if (out !== join(root, "build", "src", "gen")) removeStaleOutputs(out);
      continue;
    }
    if (!/\.js(\.map)?$/.test(out)) continue;
    const source = join(root, out.slice(join(root, "build").length + 1)).replace(/\.js(\.map)?$/, ".ts");
    if (!existsSync(source)) rmSync(out);
  }
}

function compileTypeScript() {
  removeStaleOutputs(join(root, "build"));
  run(bin("tsc"), ["-p", "."]);
  const genOut = join(root, "build", "src", "gen");
  mkdirSync(genOut, { recursive: true });
  for (const f of readdirSync(join(root, "src", "gen")).filter((n) => n.endsWith(".js"))) {
    copyFileSync(join(root, "src", "gen", f), join(genOut, f));
  }
}

async function bundleAgent() {
  const entry = join(root, "build", "guest-agent", "cli.js");
  if (!existsSync(entry)) return;
  const { build } = await import("esbuild");
  await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node18",
    format: "esm",
    outfile: join(root, "dist", "iopf-agent.mjs"),
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: "warning",
  });
}

const started = Date.now();
generateProtobuf();
const tsInputs = ["src", "guest-agent", "test", "scripts", "tsconfig.json"].map((p) => join(root, p));
const stamp = join(root, "build", ".tsc-stamp");
if (!existsSync(stamp) || newestMtime(tsInputs) > statSync(stamp).mtimeMs) {
  compileTypeScript();
  writeFileSync(stamp, String(Date.now()));
}
await bundleAgent();
console.error(`build: done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
