// Compiles the emulator's C programs with gcc on first use and caches the
// binary under ~/.cache/iopf-relay/bin/, keyed by a hash of the source and
// the compiler command, so an edit or a flag change rebuilds and nothing else
// does. The source is read from src/ (tsc does not copy .c files to build/).
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const COMPILER = "gcc";
const FLAGS = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11"];

/** The path of a C source of this folder, from src/fault/emulator or its compiled twin build/src/fault/emulator. */
export function emulatorSource(file: string): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  return join(here.replace(/\/build\/src\//, "/src/"), file);
}

/** Compiles under way in this process, by binary: concurrent callers share one. */
const building = new Map<string, Promise<string>>();

/** The cached binary built from source (compiling it if needed). */
export function compileC(source: string): Promise<string> {
  const text = readFileSync(source);
  const key = createHash("sha256").update(text).update("\0").update([COMPILER, ...FLAGS].join(" ")).digest("hex").slice(0, 16);
  const name = source.split("/").pop()!.replace(/\.c$/, "");
  const dir = join(homedir(), ".cache", "iopf-relay", "bin");
  const bin = join(dir, `${name}-${key}`);
  if (existsSync(bin)) return Promise.resolve(bin);
  let done = building.get(bin);
  if (!done) {
    done = build(source, dir, bin).finally(() => building.delete(bin));
    building.set(bin, done);
  }
  return done;
}

async function build(source: string, dir: string, bin: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  // Build beside the target and rename: parallel test workers never see half a binary.
  const tmp = `${bin}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await run(COMPILER, [...FLAGS, "-o", tmp, source]);
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    const why = e.code === "ENOENT" ? `${COMPILER} is not installed (apt-get install gcc)` : e.stderr ?? String(err);
    throw new Error(`compiling ${source} failed: ${why}`);
  }
  renameSync(tmp, bin);
  return bin;
}
