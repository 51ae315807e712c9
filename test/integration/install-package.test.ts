// Installing iopf-relay as an operator would: the npm tarball with
// `npm install -g` into a clean prefix, and scripts/install.mjs's
// distribution layout. Each install's three commands run from there.
import test from "ava";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../scripts/vm/paths.js";
import { exerciseInstalled, installWithScript, runTo, tempDir } from "./install-support.js";

interface Packed { filename: string; size: number; files: { path: string }[] }

test("npm pack ships the compiled program, the agent bundle, the emulator's C source, units and docs; no tests or TypeScript", async (t) => {
  const dir = tempDir(t, "iopf-pack-");
  // The build is current (npm test builds first); prepack would only build again.
  const r = await runTo("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: projectRoot });
  t.is(r.code, 0, r.stderr);
  const [packed] = JSON.parse(r.stdout) as Packed[];
  const files = packed!.files.map((f) => f.path);
  for (const want of ["package.json", "build/src/cli/iopf-relay.js", "build/src/cli/iopfctl.js", "dist/iopf-agent.mjs", "build/src/gen/guest_link.js",
    "src/fault/emulator/kernel-emulator.c", "scripts/systemd/iopf-relay@.service", "scripts/systemd/iopf-agent.service",
    "scripts/udev/60-iopf-agent.rules", "scripts/handoff/iopf-handoff.c", "docs/operations.md", "docs/handoff.md", "README.md"]) {
    t.true(files.includes(want), `${want} in the tarball`);
  }
  t.deepEqual(files.filter((f) => /^(build\/)?test\/|\.ts$|\.map$|^build\/scripts\/|^dist\/iopf-agent$/.test(f)), []);
  const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { private?: boolean; scripts: Record<string, string> };
  t.is(pkg.private, undefined, "a private package cannot be published or packed for install");
  t.is(pkg.scripts.prepack, "node scripts/build.mjs");
});

test("npm install -g of the tarball into a clean prefix gives iopf-relay, iopfctl and iopf-agent that work", async (t) => {
  t.timeout(180_000);
  const dir = tempDir(t, "iopf-npm-g-");
  const packed = await runTo("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", dir], { cwd: projectRoot });
  const tgz = join(dir, (JSON.parse(packed.stdout) as Packed[])[0]!.filename);
  const prefix = join(dir, "prefix");
  // Offline first: the dependencies come from npm's cache, which npm ci filled.
  const r = await runTo("npm", ["install", "-g", "--prefix", prefix, "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tgz], { cwd: dir });
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(join(prefix, "lib", "node_modules", "iopf-relay", "node_modules", "ffi-rs")), "ffi-rs installed beside the package");
  await exerciseInstalled(t, join(prefix, "bin"));
});

test("install.mjs --prefix lays out the programs, runtime files, units, rules and docs, and its commands work", async (t) => {
  t.timeout(120_000);
  const prefix = await installWithScript(t);
  for (const f of ["bin/iopf-relay", "bin/iopfctl", "bin/iopf-agent", "lib/iopf-relay/build/src/cli/iopf-relay.js", "lib/iopf-relay/dist/iopf-agent.mjs",
    "lib/iopf-relay/src/fault/emulator/kernel-emulator.c", "lib/iopf-relay/node_modules/ffi-rs/package.json", "lib/iopf-relay/node_modules/ws/package.json",
    "lib/systemd/system/iopf-relay@.service", "lib/systemd/system/iopf-agent.service", "lib/sysusers.d/iopf-relay.conf",
    "lib/udev/rules.d/60-iopf-agent.rules", "lib/udev/rules.d/60-iopf-relay-iommu.rules",
    "share/doc/iopf-relay/README.md", "share/doc/iopf-relay/operations.md", "share/doc/iopf-relay/examples/libvirt-hook-qemu",
    "share/doc/iopf-relay/examples/iopf-handoff.c"]) {
    t.true(existsSync(join(prefix, f)), `${f} installed`);
  }
  t.false(existsSync(join(prefix, "lib", "iopf-relay", "node_modules", "typescript")), "no development packages");
  t.is(statSync(join(prefix, "bin", "iopf-relay")).mode & 0o777, 0o755);
  t.regex(readFileSync(join(prefix, "lib", "systemd", "system", "iopf-relay@.service"), "utf8"), new RegExp(`^ExecStart=${prefix}/bin/iopf-relay --keeper`, "m"));
  await exerciseInstalled(t, join(prefix, "bin"));
});

test("install.mjs --destdir stages the files while the paths inside name the final prefix", async (t) => {
  const dest = tempDir(t, "iopf-destdir-");
  const r = await runTo(process.execPath, [join(projectRoot, "scripts", "install.mjs"), "--prefix", "/usr", "--destdir", dest, "--node", "/usr/bin/node"]);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(dest, "usr", "bin", "iopf-relay"), "utf8").split("\n").at(-2), `exec /usr/bin/node /usr/lib/iopf-relay/build/src/cli/iopf-relay.js "$@"`);
  const unit = readFileSync(join(dest, "usr", "lib", "systemd", "system", "iopf-agent.service"), "utf8");
  t.regex(unit, /^ExecStart=\/usr\/bin\/iopf-agent \$IOPF_AGENT_OPTIONS$/m);
  t.regex(unit, /^Documentation=file:\/usr\/share\/doc\/iopf-relay\/guest-agent\.md$/m);
  const bad = await runTo(process.execPath, [join(projectRoot, "scripts", "install.mjs"), "--prefix", "relative/dir"]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /^install: --prefix: expected an absolute directory, got "relative\/dir"/);
});
