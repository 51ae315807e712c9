// The guest kernel: Linux 6.12 from Debian's linux-source-6.12, configured
// as tinyconfig + kvm_guest.config + scripts/vm/guest-kernel.config, built
// once and cached under ~/.cache/iopf-relay/ by a key over everything that
// decides its bytes.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { cachePath, hashKey, pathSafe, withLock } from "./cache.js";
import { run } from "./exec.js";
import { vmSourceDir } from "./paths.js";

const SOURCE_PACKAGE = "linux-source-6.12";
const SOURCE_TARBALL = "/usr/src/linux-source-6.12.tar.xz";
const SOURCE_TOP = "linux-source-6.12"; // the tarball's single top directory
const FRAGMENT = join(vmSourceDir, "guest-kernel.config");

// The build recipe, as data: it is both what runs and part of the cache key,
// so changing a step rebuilds. ARCH is explicit because tinyconfig would
// otherwise follow the host's uname.
const RECIPE = {
  make: ["ARCH=x86_64"],
  configure: [["tinyconfig"], ["kvm_guest.config"]],
  merge: ["scripts/kconfig/merge_config.sh", "-m"],
  finish: [["olddefconfig"]],
  build: [["bzImage"]],
  image: "arch/x86/boot/bzImage",
};

// Checked in the final .config beyond the fragment's own lines: hidden
// options that must come out selected.
const MUST_HAVE = { CONFIG_IOMMUFD_TEST: "y", CONFIG_IOMMU_IOPF: "y" } as const;

function sourceVersion(): string {
  try {
    return execFileSync("dpkg-query", ["-W", "-f=${Version}", SOURCE_PACKAGE], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(`Debian package ${SOURCE_PACKAGE} is not installed (dpkg-query found no version); ` +
      `run: apt-get install -y --no-install-recommends ${SOURCE_PACKAGE}`);
  }
}

/** Unpacks the 6.12 source tarball once per package version; returns the tree. */
export async function ensureKernelSource(): Promise<{ srcDir: string; version: string }> {
  const version = sourceVersion();
  const entry = cachePath(`src-${pathSafe(version)}`);
  const srcDir = join(entry, SOURCE_TOP);
  if (existsSync(join(srcDir, "Makefile"))) return { srcDir, version };
  await withLock(`${entry}.lock`, "kernel source", async () => {
    if (existsSync(join(srcDir, "Makefile"))) return;
    const tmp = `${entry}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    process.stderr.write(`vm: unpacking ${SOURCE_TARBALL} (${version}) into ${entry}\n`);
    await run("tar", ["-xJf", SOURCE_TARBALL, "-C", tmp]);
    if (!existsSync(join(tmp, SOURCE_TOP, "Makefile"))) {
      throw new Error(`${SOURCE_TARBALL} did not unpack to ${SOURCE_TOP}/Makefile; the package layout changed, adjust SOURCE_TOP in scripts/vm/kernel.ts`);
    }
    rmSync(entry, { recursive: true, force: true });
    renameSync(tmp, entry);
  });
  return { srcDir, version };
}

function parseConfig(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split("\n")) {
    const set = /^(CONFIG_\w+)=(.*)$/.exec(line);
    if (set) values.set(set[1]!, set[2]!);
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) values.set(unset[1]!, "n");
  }
  return values;
}

/** Fails with every option the fragment (or MUST_HAVE) asked for that Kconfig did not keep. */
function checkConfig(configPath: string): void {
  const want = parseConfig(readFileSync(FRAGMENT, "utf8"));
  for (const [k, v] of Object.entries(MUST_HAVE)) want.set(k, v);
  const got = parseConfig(readFileSync(configPath, "utf8"));
  const wrong = [...want].filter(([k, v]) => (got.get(k) ?? "n") !== v);
  if (wrong.length === 0) return;
  throw new Error(
    `the merged kernel config ${configPath} does not have what scripts/vm/guest-kernel.config asks for:\n` +
    wrong.map(([k, v]) => `  ${k}: expected ${v}, got ${got.get(k) ?? "unset"}`).join("\n") +
    `\nAn option is dropped when its dependencies are unmet or its name is wrong: ` +
    `check its "depends on" in the 6.12 Kconfig files and add what it needs to the fragment.`,
  );
}

function elapsed(since: number): string {
  const s = Math.round((Date.now() - since) / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

async function buildKernel(srcDir: string, outDir: string): Promise<void> {
  const obj = join(outDir, "obj");
  const log = join(outDir, "build.log");
  mkdirSync(obj, { recursive: true });
  const started = Date.now();
  let lastLine = "";
  const heartbeat = setInterval(() => {
    process.stderr.write(`vm: kernel build ${elapsed(started)} elapsed, at: ${lastLine.trim()}\n`);
  }, 30_000);
  const make = (targets: string[]) => run("make", ["-C", srcDir, `O=${obj}`, ...RECIPE.make, ...targets],
    { logFile: log, onLine: (l) => { if (l.trim()) lastLine = l; } });
  try {
    for (const t of RECIPE.configure) await make(t);
    await run(join(srcDir, RECIPE.merge[0]!), [...RECIPE.merge.slice(1), "-O", obj, join(obj, ".config"), FRAGMENT],
      { cwd: srcDir, logFile: log });
    for (const t of RECIPE.finish) await make(t);
    checkConfig(join(obj, ".config"));
    process.stderr.write(`vm: kernel config checked; compiling with ${availableParallelism()} jobs (about 10 minutes on 2 cores); log: ${log}\n`);
    for (const t of RECIPE.build) await make([`-j${availableParallelism()}`, ...t]);
  } finally {
    clearInterval(heartbeat);
  }
  copyFileSync(join(obj, ".config"), join(outDir, "config"));
  // Renamed into place last: its presence means the entry is complete.
  copyFileSync(join(obj, RECIPE.image), join(outDir, "bzImage.tmp"));
  renameSync(join(outDir, "bzImage.tmp"), join(outDir, "bzImage"));
  process.stderr.write(`vm: kernel built in ${elapsed(started)}: ${join(outDir, "bzImage")}\n`);
}

/** Builds the guest kernel once per (source version, fragment, recipe); returns its bzImage. */
export async function ensureKernel(): Promise<{ bzImage: string; srcDir: string }> {
  const { srcDir, version } = await ensureKernelSource();
  const key = hashKey(version, readFileSync(FRAGMENT), JSON.stringify(RECIPE));
  const outDir = cachePath(`kernel-${key}`);
  const bzImage = join(outDir, "bzImage");
  if (!existsSync(bzImage)) {
    await withLock(`${outDir}.lock`, "kernel build", async () => {
      if (existsSync(bzImage)) return;
      rmSync(outDir, { recursive: true, force: true });
      await buildKernel(srcDir, outDir);
    });
  }
  return { bzImage, srcDir };
}

/**
 * Include paths for compiling a C program against the 6.12 uAPI: sanitised
 * headers from `make headers` (the host's linux-libc-dev is 6.1 and
 * has no linux/iommufd.h), and the selftest's iommufd_test.h, which includes
 * <linux/iommufd.h> and <linux/types.h> from them.
 */
export async function kernelHeaderPaths(): Promise<{ uapiIncludeDirs: string[]; iommufdTestHeader: string }> {
  const { srcDir, version } = await ensureKernelSource();
  const outDir = cachePath(`headers-${pathSafe(version)}`);
  const include = join(outDir, "include");
  const iommufdTestHeader = join(srcDir, "drivers", "iommu", "iommufd", "iommufd_test.h");
  if (!existsSync(join(include, "linux", "iommufd.h"))) {
    await withLock(`${outDir}.lock`, "kernel headers", async () => {
      if (existsSync(join(include, "linux", "iommufd.h"))) return;
      const tmp = `${outDir}.tmp`;
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp, { recursive: true });
      process.stderr.write(`vm: installing 6.12 uAPI headers into ${outDir}\n`);
      // `make headers` leaves the same tree headers_install would copy (which
      // needs rsync) in $O/usr/include.
      await run("make", ["-C", srcDir, `O=${join(tmp, "obj")}`, ...RECIPE.make, "headers"],
        { logFile: join(tmp, "headers.log") });
      renameSync(join(tmp, "obj", "usr", "include"), join(tmp, "include"));
      rmSync(join(tmp, "obj"), { recursive: true, force: true });
      rmSync(outDir, { recursive: true, force: true });
      renameSync(tmp, outDir);
    });
  }
  return { uapiIncludeDirs: [include], iommufdTestHeader };
}
