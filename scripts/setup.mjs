// Installs what the project needs and is missing: npm packages from the
// lock file, and the Debian packages of scripts/debian-packages.json: the
// "run" group always, and with --for-tests every group (the tests outside
// the VM and the QEMU tests alike), so that no phase of `npm test` depends on
// another having run first; with --for-bench also the "bench" group (perf
// for the bench's tail section). --list prints the Debian packages it would
// ensure, one a line, and changes nothing.
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

const groups = JSON.parse(readFileSync(join(root, "scripts", "debian-packages.json"), "utf8"));
const forTests = process.argv.includes("--for-tests");
const forBench = process.argv.includes("--for-bench");
const wanted = [...new Set(["run", ...(forTests ? ["tests", "vm"] : []), ...(forBench ? ["bench"] : [])].flatMap((g) => Object.keys(groups[g])))].sort();
if (process.argv.includes("--list")) {
  process.stdout.write(wanted.map((p) => `${p}\n`).join(""));
  process.exit(0);
}

const lock = readFileSync(join(root, "package-lock.json"));
const want = createHash("sha256").update(lock).digest("hex");
const stamp = join(root, "node_modules", ".iopf-relay-lock-sha256");
if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== want) {
  console.error("setup: installing npm packages (npm ci)");
  execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: root, stdio: "inherit" });
  writeFileSync(stamp, want);
}

/** The wanted packages dpkg does not list as installed; null when there is no dpkg to ask. */
function missingPackages(names) {
  // dpkg-query exits 1 when some name is unknown but still reports the others.
  const q = spawnSync("dpkg-query", ["-W", "-f=${Package} ${db:Status-Status}\\n", ...names], { encoding: "utf8" });
  if (q.error) return null;
  const installed = new Set(q.stdout.split("\n").filter((l) => l.endsWith(" installed")).map((l) => l.split(" ")[0]));
  return names.filter((n) => !installed.has(n));
}

const needed = missingPackages(wanted);
if (needed === null) {
  console.error(`setup: no dpkg here, so the Debian packages cannot be checked; make sure these (or your system's equivalents) are installed: ${wanted.join(" ")}`);
} else if (needed.length > 0) {
  const command = `apt-get update && apt-get install -y --no-install-recommends ${needed.join(" ")}`;
  if (process.getuid?.() !== 0 || spawnSync("apt-get", ["--version"]).status !== 0) {
    console.error(`setup: missing Debian packages ${needed.join(", ")}; install them as root with: ${command}`);
    process.exit(1);
  }
  console.error(`setup: installing Debian packages: ${needed.join(", ")}`);
  // Wait for apt's lock rather than fail when another installer holds it.
  const wait = "-o DPkg::Lock::Timeout=600";
  execFileSync("sh", ["-c", `apt-get ${wait} update && apt-get ${wait} install -y --no-install-recommends ${needed.join(" ")}`],
    { stdio: "inherit", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}
