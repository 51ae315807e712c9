// Installing iopf-relay into temporary prefixes (the npm tarball, and
// scripts/install.mjs) and running the installed commands from there, with a
// PATH and a working directory that lead nowhere near this checkout.
import type { ExecutionContext } from "ava";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { projectRoot } from "../../scripts/vm/paths.js";
import { tempDir } from "./control-harness.js";

export { tempDir };

const execFileAsync = promisify(execFile);

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; a non-zero exit is a result, not an error. */
export async function runTo(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await execFileAsync(file, args, { ...opts, encoding: "utf8", maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== "number") throw err;
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

/** Installs with scripts/install.mjs; returns the prefix. */
export async function installWithScript(t: ExecutionContext, extra: string[] = []): Promise<string> {
  const prefix = join(tempDir(t, "iopf-install-"), "usr");
  const r = await runTo(process.execPath, [join(projectRoot, "scripts", "install.mjs"), "--prefix", prefix, ...extra]);
  if (r.code !== 0) throw new Error(`install.mjs exited ${r.code}: ${r.stderr}`);
  return prefix;
}

/** A long-running installed program; lines() resolves with the first stderr line that matches. */
function start(t: ExecutionContext, file: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): { child: ChildProcess; line(re: RegExp): Promise<string>; exited: Promise<number | null> } {
  const child = spawn(file, args, { env, cwd, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => void child.kill("SIGKILL"));
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  createInterface({ input: child.stderr! }).on("line", (l) => {
    lines.push(l);
    for (const w of waiters.filter((w) => w.re.test(l))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(l);
    }
  });
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child, exited,
    line: (re) => Promise.race([
      new Promise<string>((resolve) => {
        const seen = lines.find((l) => re.test(l));
        if (seen !== undefined) resolve(seen);
        else waiters.push({ re, resolve });
      }),
      exited.then((code) => Promise.reject(new Error(`${file} exited ${code} before a line matching ${re}:\n${lines.slice(-20).join("\n")}`))),
    ]),
  };
}

/**
 * Runs the three installed commands found in binDir: --version, --help, and
 * a real short action each: the relay on its kernel emulator (compiled from
 * the installed C source), the agent connected to it, iopfctl reading the
 * relay's status, and iopfctl's one-line error where no relay is.
 */
export async function exerciseInstalled(t: ExecutionContext, binDir: string): Promise<void> {
  const work = tempDir(t, "iopf-installed-run-");
  const env = { ...process.env, PATH: `${binDir}:/usr/bin:/bin` };
  const cmd = (name: string): string => join(binDir, name);
  const version = (JSON.parse((await runTo("npm", ["pkg", "get", "version"], { cwd: projectRoot })).stdout) as string);
  for (const name of ["iopf-relay", "iopfctl", "iopf-agent"]) {
    const v = await runTo(cmd(name), ["--version"], { env, cwd: work });
    t.deepEqual([v.code, v.stdout], [0, `${version}\n`], `${name} --version: ${v.stderr}`);
    const h = await runTo(cmd(name), ["--help"], { env, cwd: work });
    t.is(h.code, 0, `${name} --help: ${h.stderr}`);
    t.regex(h.stdout, /^usage: /im, `${name} --help prints its usage`);
  }
  const caps = await runTo(cmd("iopf-relay"), ["--print-capabilities"], { env, cwd: work });
  t.like(JSON.parse(caps.stdout), { type: "iopf-relay", features: ["raw-records", "cancels"], version });

  const nobody = await runTo(cmd("iopfctl"), ["--control", `unix:${join(work, "none.ctl")}`, "status"], { env, cwd: work });
  t.is(nobody.code, 1);
  t.regex(nobody.stderr, /^iopfctl: no relay control server at unix:\S+none\.ctl \(ENOENT\): start iopf-relay with --control/);
  t.is(nobody.stderr.trim().split("\n").length, 1, `one line: ${nobody.stderr}`);

  const link = join(work, "link.sock");
  const control = `unix:${join(work, "relay.ctl")}`;
  const relay = start(t, cmd("iopf-relay"), ["--source", "emulator", "--socket-path", link, "--control", control, "--log-format", "json"], env, work);
  await relay.line(/"msg":"relay ready"/);
  const agent = start(t, cmd("iopf-agent"), ["--connect", `unix:${link}`, "--app-socket", "none"], env, work);
  await agent.line(/"msg":"session up"/);
  const status = await runTo(cmd("iopfctl"), ["--control", control, "status", "--json"], { env, cwd: work });
  t.is(status.code, 0, status.stderr);
  t.is((JSON.parse(status.stdout) as { session: { state: string } }).session.state, "up");
  agent.child.kill("SIGTERM");
  t.is(await agent.exited, 0);
  relay.child.kill("SIGTERM");
  t.is(await relay.exited, 0);
}
