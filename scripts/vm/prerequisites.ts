// The Debian packages the VM tests need on the host: which are missing, and
// installing them when this process may (root with apt-get).
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cachePath, withLock } from "./cache.js";
import { run } from "./exec.js";
import { projectRoot } from "./paths.js";

// Package, and why the VM layer needs it: the "vm" group of the one list
// scripts/setup.mjs also installs from.
const PACKAGES = (JSON.parse(readFileSync(join(projectRoot, "scripts", "debian-packages.json"), "utf8")) as { vm: Record<string, string> }).vm;

/** The Debian packages the VM tests need on the host. */
export const VM_PACKAGES: readonly string[] = Object.keys(PACKAGES);

export type VmPrerequisites = { ok: true } | { ok: false; reason: string; installCommand: string };

function installCommand(packages: string[]): string {
  return `apt-get update && apt-get install -y --no-install-recommends ${packages.join(" ")}`;
}

function missingPackages(): string[] {
  const names = Object.keys(PACKAGES);
  // dpkg-query exits 1 when some name is unknown but still reports the others.
  const q = spawnSync("dpkg-query", ["-W", "-f=${Package} ${db:Status-Status}\\n", ...names], { encoding: "utf8" });
  if (q.error) return names; // no dpkg: not a Debian host, nothing can be confirmed
  const installed = new Set(q.stdout.split("\n").filter((l) => l.endsWith(" installed")).map((l) => l.split(" ")[0]));
  return names.filter((n) => !installed.has(n));
}

/** Says whether every host package the VM tests need is installed, and if not which and how to get them. */
export function vmPrerequisites(): VmPrerequisites {
  const missing = missingPackages();
  if (missing.length === 0) return { ok: true };
  return {
    ok: false,
    reason: `missing Debian packages: ${missing.map((p) => `${p} (${PACKAGES[p]})`).join(", ")}`,
    installCommand: installCommand(missing),
  };
}

/** Whether ensureVmPrerequisites() may install packages here: root, on a host with apt-get. */
export function canInstallPrerequisites(): boolean {
  return process.getuid?.() === 0 && !spawnSync("apt-get", ["--version"]).error;
}

/**
 * Installs what vmPrerequisites() finds missing, when running as root on a
 * host with apt-get; otherwise returns the unmet result unchanged, for the
 * caller to skip (or, under CI, fail) with its install command.
 */
export async function ensureVmPrerequisites(): Promise<VmPrerequisites> {
  const before = vmPrerequisites();
  if (before.ok) return before;
  if (!canInstallPrerequisites()) {
    return { ...before, reason: `${before.reason}; not root (or no apt-get), so not installing them` };
  }
  // One installer at a time across test processes; apt's own lock would make
  // the second one fail instead of wait.
  await withLock(cachePath("apt.lock"), "installing VM prerequisites", async () => {
    const missing = missingPackages();
    if (missing.length === 0) return;
    process.stderr.write(`vm: installing ${missing.join(" ")}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    const wait = ["-o", "DPkg::Lock::Timeout=600"];
    await run("apt-get", [...wait, "update"], { env });
    await run("apt-get", [...wait, "install", "-y", "--no-install-recommends", ...missing], { env });
  });
  const after = vmPrerequisites();
  if (after.ok) return after;
  return { ...after, reason: `${after.reason}; still missing after apt-get install` };
}
