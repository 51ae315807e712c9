// Installs what the project needs and is missing: npm packages from the
// lock file, and with --for-tests the Debian packages the tests use outside
// the VM (gcc for the C emulator, python3 for the pty test helper, Debian's
// Chromium for the dashboard test), with --for-bench perf for the bench's
// tail section. The VM tests install theirs (QEMU, the kernel source,
// busybox) on first use, from scripts/vm/prerequisites.ts.
// Uses Node built-ins only: it runs before node_modules exists.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const [major] = process.versions.node.split(".").map(Number);
if (major < 20) {
  console.error(`setup: Node ${process.versions.node} found, Node 20 or newer is needed. Install Node 20 (e.g. from Debian's nodejs or NodeSource) and run again.`);
  process.exit(1);
}

const lock = readFileSync(join(root, "package-lock.json"));
const want = createHash("sha256").update(lock).digest("hex");
const stamp = join(root, "node_modules", ".iopf-relay-lock-sha256");
if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== want) {
  console.error("setup: installing npm packages (npm ci)");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
  writeFileSync(stamp, want);
}

// Debian packages, by the file that shows each is installed.
const always = [["gcc", "/usr/bin/gcc"]];
const forTests = [["python3", "/usr/bin/python3"], ["chromium", "/usr/bin/chromium"]];
// The bench's tail section reads the threads' run states from the scheduler's events.
const forBench = [["linux-perf", "/usr/bin/perf"]];
const needed = [
  ...always, ...(process.argv.includes("--for-tests") ? forTests : []), ...(process.argv.includes("--for-bench") ? forBench : []),
].filter(([, file]) => !existsSync(file));
if (needed.length > 0) {
  const names = needed.map(([pkg]) => pkg);
  const command = `apt-get update && apt-get install -y --no-install-recommends ${names.join(" ")}`;
  if (process.getuid?.() !== 0 || spawnSync("apt-get", ["--version"]).status !== 0) {
    console.error(`setup: missing Debian packages ${names.join(", ")}; install them as root with: ${command}`);
    process.exit(1);
  }
  console.error(`setup: installing Debian packages: ${names.join(", ")}`);
  execFileSync("sh", ["-c", command], { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}
