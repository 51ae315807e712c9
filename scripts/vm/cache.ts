// The on-disk cache the VM layer shares between runs and between test
// processes: kernel sources, kernel builds, initramfs images. Entries are
// keyed by a hash of their inputs, written under a temporary name and renamed
// into place, so a reader never sees half an entry.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export const cacheRoot = join(homedir(), ".cache", "iopf-relay");

export function cachePath(...parts: string[]): string {
  mkdirSync(cacheRoot, { recursive: true });
  return join(cacheRoot, ...parts);
}

/** Short hex digest of the given inputs, in order; used as a cache key. */
export function hashKey(...inputs: (string | Buffer)[]): string {
  const h = createHash("sha256");
  for (const input of inputs) {
    // Length-prefix each input so ("ab","c") and ("a","bc") differ.
    h.update(String(Buffer.byteLength(input))).update(":").update(input);
  }
  return h.digest("hex").slice(0, 16);
}

/** Makes a string safe as one path component (Debian versions contain "~" and ":"). */
export function pathSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, "_");
}

function holderIsAlive(lockPath: string): { pid: number; alive: boolean } {
  let pid = NaN;
  try {
    pid = Number(readFileSync(lockPath, "utf8").trim());
  } catch {
    return { pid, alive: true }; // vanished or being written: just retry
  }
  if (!Number.isInteger(pid) || pid <= 0) return { pid, alive: false };
  try {
    process.kill(pid, 0);
    return { pid, alive: true };
  } catch (e) {
    return { pid, alive: (e as NodeJS.ErrnoException).code === "EPERM" };
  }
}

/**
 * Runs fn while holding an exclusive lock file (O_EXCL create, our pid
 * inside), so two test processes never build the same cache entry at once.
 * A lock whose process is gone (a killed build) is taken over.
 */
export async function withLock<T>(lockPath: string, what: string, fn: () => Promise<T>): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      const fh = await open(lockPath, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    const holder = holderIsAlive(lockPath);
    if (!holder.alive) {
      process.stderr.write(`vm: ${what}: removing stale lock ${lockPath} (pid ${holder.pid} is gone)\n`);
      rmSync(lockPath, { force: true });
      continue;
    }
    if (!announced) {
      process.stderr.write(`vm: ${what}: waiting for pid ${holder.pid}, which holds ${lockPath}\n`);
      announced = true;
    }
    await sleep(2000);
  }
  try {
    return await fn();
  } finally {
    rmSync(lockPath, { force: true });
  }
}
