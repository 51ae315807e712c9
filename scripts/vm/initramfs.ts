// The guest's root filesystem: a base cpio (busybox, the host's node with its
// shared libraries, the project's build output and runtime node_modules, and
// /init), cached by a hash of its contents, plus a tiny per-run job cpio
// appended to it (the kernel unpacks concatenated archives in order).
import { existsSync, lstatSync, readdirSync, readlinkSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { join, relative } from "node:path";
import { cachePath, cacheRoot, withLock } from "./cache.js";
import { hostFile, writeCpio, type CpioEntry } from "./cpio.js";
import { run } from "./exec.js";
import { projectRoot, vmSourceDir } from "./paths.js";

/** Where the project sits inside the guest. */
export const GUEST_PROJECT_DIR = "/opt/iopf-relay";
const GUEST_PROJECT = GUEST_PROJECT_DIR.slice(1);
/** The single-file agent executable's name in dist/. */
export const AGENT_EXE = "iopf-agent";
const BUSYBOX = "/bin/busybox";
// A base image older than this is no longer used by a VM still starting
// (QEMU reads the initrd whole at start-up), so it can be pruned.
const PRUNE_AFTER_MS = 60 * 60_000;

export interface JobFile {
  /** Relative paths land under /job; absolute ones where they say. */
  path: string;
  data: string | Buffer;
  mode?: number;
}

function baseSkeleton(): CpioEntry[] {
  return [
    ...["proc", "sys", "dev", "tmp", "run", "root", "job", "etc"].map((path): CpioEntry => ({ kind: "dir", path })),
    // The kernel opens /dev/console for /init's stdio before /init can mount devtmpfs.
    { kind: "chardev", path: "dev/console", mode: 0o600, major: 5, minor: 1 },
    { kind: "file", path: "etc/passwd", data: Buffer.from("root:x:0:0:root:/root:/bin/sh\n") },
    { kind: "file", path: "etc/group", data: Buffer.from("root:x:0:\n") },
    hostFile("init", join(vmSourceDir, "init.sh"), 0o755),
  ];
}

async function busyboxEntries(): Promise<CpioEntry[]> {
  const applets = (await run(BUSYBOX, ["--list-full"])).split("\n").filter((a) => a && a !== "bin/busybox");
  return [
    hostFile("bin/busybox", BUSYBOX, 0o755),
    ...applets.map((path): CpioEntry => ({ kind: "symlink", path, target: "/bin/busybox" })),
  ];
}

/** Shared libraries (and the dynamic loader) that ldd says the given ELF files load. */
async function sharedLibraries(elfs: string[]): Promise<string[]> {
  const libs = new Set<string>();
  for (const elf of elfs) {
    for (const line of (await run("ldd", [elf])).split("\n")) {
      // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
      const m = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
      if (m) libs.add(m[1]!);
    }
  }
  return [...libs].sort();
}

/** Every file and symlink under dir (host path), placed under guestDir; nested node_modules left out. */
function treeEntries(dir: string, guestDir: string, skip: (name: string) => boolean): CpioEntry[] {
  const out: CpioEntry[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (skip(name)) continue;
    const host = join(dir, name);
    const path = `${guestDir}/${name}`;
    const st = lstatSync(host);
    if (st.isSymbolicLink()) out.push({ kind: "symlink", path, target: readlinkSync(host) });
    else if (st.isDirectory()) out.push(...treeEntries(host, path, skip));
    else if (st.isFile()) out.push(hostFile(path, host, st.mode & 0o777));
  }
  return out;
}

/** The runtime dependencies exactly as `npm ls --omit=dev` lists them (paths of installed packages). */
async function runtimePackageDirs(): Promise<string[]> {
  const listed = (await run("npm", ["ls", "--omit=dev", "--all", "--parseable"], { cwd: projectRoot }))
    .split("\n").filter((p) => p && p !== projectRoot);
  if (listed.length === 0) {
    throw new Error(`npm ls --omit=dev in ${projectRoot} listed no runtime packages, expected ffi-rs, protobufjs, ws...; run npm ci first`);
  }
  return listed;
}

async function projectEntries(): Promise<{ entries: CpioEntry[]; nativeAddons: string[] }> {
  const build = join(projectRoot, "build");
  if (!existsSync(build)) throw new Error(`${build} does not exist; run \`node scripts/build.mjs\` before booting a VM`);
  const entries: CpioEntry[] = [hostFile(`${GUEST_PROJECT}/package.json`, join(projectRoot, "package.json"), 0o644)];
  const noStampOrMaps = (n: string) => n === ".tsc-stamp" || n.endsWith(".map");
  entries.push(...treeEntries(build, `${GUEST_PROJECT}/build`, noStampOrMaps));
  const dist = join(projectRoot, "dist");
  // dist/iopf-agent (npm run build:agent-exe) is as large as node: only the
  // scenario that runs it carries it, in its job archive.
  if (existsSync(dist)) entries.push(...treeEntries(dist, `${GUEST_PROJECT}/dist`, (n) => noStampOrMaps(n) || n === AGENT_EXE));
  for (const pkg of await runtimePackageDirs()) {
    // Each listed package is copied without its nested node_modules: the
    // runtime ones among those are listed (and copied) on their own.
    entries.push(...treeEntries(pkg, `${GUEST_PROJECT}/${relative(projectRoot, pkg)}`, (n) => n === "node_modules"));
  }
  const nativeAddons = entries.filter((e) => e.kind === "file" && e.path.endsWith(".node"))
    .map((e) => join(projectRoot, e.path.slice(GUEST_PROJECT.length + 1)));
  return { entries, nativeAddons };
}

function contentKey(entries: CpioEntry[]): string {
  const h = createHash("sha256");
  for (const e of entries) {
    h.update(`${e.kind}\0${e.path}\0`);
    if (e.kind === "file") h.update(`${e.mode ?? 0o644}\0`).update(createHash("sha256").update(e.data).digest());
    if (e.kind === "symlink") h.update(e.target);
    if (e.kind === "chardev") h.update(`${e.mode} ${e.major} ${e.minor}`);
    h.update("\n");
  }
  return h.digest("hex").slice(0, 16);
}

function pruneOldBases(keep: string): void {
  for (const name of readdirSync(cacheRoot)) {
    const path = join(cacheRoot, name);
    if (!/^initramfs-[0-9a-f]+\.cpio$/.test(name) || path === keep) continue;
    if (Date.now() - statSync(path).mtimeMs > PRUNE_AFTER_MS) rmSync(path, { force: true });
  }
}

// Hashing the inputs reads ~100 MiB; once per process is enough, since the
// build output does not change under a running test process.
let basePromise: Promise<string> | undefined;

/** Builds (or finds cached) the base initramfs for the current build output; returns its path. */
export function ensureBaseInitramfs(): Promise<string> {
  basePromise ??= buildBaseInitramfs();
  basePromise.catch(() => { basePromise = undefined; }); // let a later call retry after a failure
  return basePromise;
}

async function buildBaseInitramfs(): Promise<string> {
  const node = realpathSync(process.execPath);
  const { entries: project, nativeAddons } = await projectEntries();
  const libs = await sharedLibraries([node, ...nativeAddons]);
  const entries = [
    ...baseSkeleton(),
    ...(await busyboxEntries()),
    hostFile("usr/bin/node", node, 0o755),
    // At the paths ldd resolved, which is where the loader will look.
    ...libs.map((lib) => hostFile(lib.slice(1), lib, 0o755)),
    ...project,
  ];
  const out = cachePath(`initramfs-${contentKey(entries)}.cpio`);
  if (!existsSync(out)) {
    await withLock(`${out}.lock`, "initramfs", async () => {
      if (existsSync(out)) return;
      writeCpio(`${out}.tmp`, entries);
      renameSync(`${out}.tmp`, out);
      process.stderr.write(`vm: wrote ${out} (${(statSync(out).size / 2 ** 20).toFixed(1)} MiB)\n`);
    });
  }
  pruneOldBases(out);
  return out;
}

/** Writes the per-run archive: /job/run.sh (the job script) and the test's files. */
export function writeJobCpio(outFile: string, script: string, files: JobFile[] = []): void {
  const entries: CpioEntry[] = [{ kind: "file", path: "job/run.sh", mode: 0o755, data: Buffer.from(script) }];
  for (const f of files) {
    const path = f.path.startsWith("/") ? f.path.slice(1) : `job/${f.path}`;
    entries.push({ kind: "file", path, mode: f.mode ?? 0o644, data: Buffer.from(f.data) });
  }
  writeCpio(outFile, entries);
}
