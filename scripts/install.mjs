// Installs iopf-relay the way a distribution package lays it out, from a
// built checkout (node scripts/build.mjs first):
//   PREFIX/bin/iopf-relay, iopfctl, iopf-agent    wrappers that run node on the files below
//   PREFIX/lib/iopf-relay/                         the files `npm pack` ships, and the runtime node_modules
//   PREFIX/lib/systemd/system/                     iopf-relay@.service (host), iopf-agent.service (guest)
//   PREFIX/lib/sysusers.d/iopf-relay.conf          the system user the host unit runs as
//   PREFIX/lib/udev/rules.d/                       60-iopf-agent.rules (guest), 60-iopf-relay-iommu.rules (host)
//   PREFIX/share/doc/iopf-relay/                   README.md, docs/*, examples/libvirt-hook-qemu, examples/iopf-handoff.c
// Paths written into the wrappers and units are under PREFIX; with
// --destdir D the files land under D/PREFIX (for building a package).
//
//   node scripts/install.mjs --prefix /usr [--destdir D] [--node /usr/bin/node]
//
// Uses Node built-ins and npm only, like setup.mjs.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = "usage: node scripts/install.mjs --prefix DIR [--destdir DIR] [--node PATH]";

function fail(message, code = 1) {
  process.stderr.write(`install: ${message}\n`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({ options: { prefix: { type: "string" }, destdir: { type: "string" }, node: { type: "string" }, help: { type: "boolean", short: "h" } } }));
} catch (err) {
  fail(`${err.message}\n${USAGE}`, 2);
}
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const prefix = values.prefix;
if (prefix === undefined || !isAbsolute(prefix)) fail(`--prefix: expected an absolute directory, got ${prefix === undefined ? "none" : `"${prefix}"`}\n${USAGE}`, 2);
const node = values.node ?? process.execPath;
if (!isAbsolute(node)) fail(`--node: expected the absolute path of node, got "${node}"`, 2);
const destdir = values.destdir ?? "";
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
for (const file of Object.values(pkg.bin)) {
  if (!existsSync(join(root, file))) fail(`${file} is missing: run \`node scripts/build.mjs\` first`);
}

const at = (...parts) => join(prefix, ...parts);
const out = (path) => join(destdir, path);
const libDir = at("lib", "iopf-relay");
const docDir = at("share", "doc", "iopf-relay");
const installed = [];

function put(from, to, mode) {
  mkdirSync(dirname(out(to)), { recursive: true });
  copyFileSync(from, out(to));
  chmodSync(out(to), mode ?? (statSync(from).mode & 0o777));
  installed.push(to);
}

function write(to, text, mode) {
  mkdirSync(dirname(out(to)), { recursive: true });
  writeFileSync(out(to), text, { mode });
  chmodSync(out(to), mode);
  installed.push(to);
}

// The runtime files: what the npm tarball holds (package.json "files"), less
// the docs, units and rules, which get their own places below.
const packed = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts", "--loglevel=error"], { cwd: root, encoding: "utf8" }))[0].files
  .map((f) => f.path).filter((f) => !/^(docs|scripts)\/|^README\.md$/.test(f));
for (const file of packed) put(join(root, file), join(libDir, file));

// The runtime dependencies as npm lists them, each without its nested
// node_modules (the runtime ones among those are listed on their own).
const deps = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: root, encoding: "utf8" }).split("\n").filter((p) => p && p !== root);
for (const dir of deps) {
  cpSync(dir, out(join(libDir, relative(root, dir))), { recursive: true, filter: (src) => !relative(dir, src).split("/").includes("node_modules") });
}
installed.push(`${join(libDir, "node_modules")}/ (${deps.length} packages)`);

for (const [name, file] of Object.entries(pkg.bin)) {
  write(at("bin", name), `#!/bin/sh\n# ${name}, installed by iopf-relay's scripts/install.mjs\nexec ${node} ${join(libDir, file)} "$@"\n`, 0o755);
}

// Units and rules name the programs and docs as installed under /usr; point them at this prefix.
const rewrite = (text) => text.replaceAll("/usr/bin/", `${at("bin")}/`).replaceAll("/usr/share/doc/iopf-relay", docDir);
for (const unit of ["iopf-relay@.service", "iopf-agent.service"]) {
  write(at("lib", "systemd", "system", unit), rewrite(readFileSync(join(root, "scripts", "systemd", unit), "utf8")), 0o644);
}
put(join(root, "scripts", "systemd", "iopf-relay.sysusers"), at("lib", "sysusers.d", "iopf-relay.conf"), 0o644);
for (const rule of readdirSync(join(root, "scripts", "udev"))) put(join(root, "scripts", "udev", rule), at("lib", "udev", "rules.d", rule), 0o644);

put(join(root, "README.md"), join(docDir, "README.md"), 0o644);
cpSync(join(root, "docs"), out(docDir), { recursive: true });
installed.push(`${docDir}/ (docs/)`);
put(join(root, "scripts", "libvirt", "qemu-hook"), join(docDir, "examples", "libvirt-hook-qemu"), 0o755);
// The reference handoff client, for a VMM developer to copy (docs/handoff.md).
put(join(root, "scripts", "handoff", "iopf-handoff.c"), join(docDir, "examples", "iopf-handoff.c"), 0o644);

process.stdout.write(`installed iopf-relay ${pkg.version} under ${destdir ? `${destdir} (as ${prefix})` : prefix}:\n${installed.filter((p) => !p.startsWith(libDir + "/") || p.includes("node_modules")).map((p) => `  ${p}\n`).join("")}  ${libDir}/ (${packed.length} files)\n`);
