// Installs what the project needs and is missing: npm packages from the
// lock file. Debian packages for the VM tests are installed by scripts/vm
// on first use. Uses Node built-ins only: it runs before node_modules exists.
import { execFileSync } from "node:child_process";
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
