// Guest side: the processes an end-to-end scenario starts inside a VM (the
// agent from the image's bundle or as the single-file executable, the C
// test program) and what it reads of
// them. Their output goes to the console with a prefix, so a failing run's
// console log shows the agent's own account next to the kernel's.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, readFileSync, readlinkSync, readSync, closeSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const AGENT_BUNDLE = "/opt/iopf-relay/dist/iopf-agent.mjs";
/** Where the host test puts the compiled guest-app.c in the job archive. */
export const GUEST_APP = "/job/guest-app";
/** Where the host test puts dist/iopf-agent, the agent as a single executable, in the job archive. */
export const GUEST_AGENT_EXE = "/job/iopf-agent";
/** The guest's node, which the single executable must not need. */
const GUEST_NODE = "/usr/bin/node";
const PAGE = 4096;

/** Prints each line of a child's stream to the console as "[label] line" and hands it to onLine. */
export function echoLines(stream: NodeJS.ReadableStream, label: string, onLine: (line: string) => void = () => undefined): void {
  createInterface({ input: stream }).on("line", (line) => {
    process.stdout.write(`[${label}] ${line}\n`);
    onLine(line);
  });
}

export interface GuestProcess {
  child: ChildProcess;
  pid: number;
  /** "code N" or "signal S", once it has exited. */
  exited: Promise<string>;
}

function track(child: ChildProcess): GuestProcess {
  if (child.pid === undefined) throw new Error("spawn gave no pid: the program could not be started");
  const exited = new Promise<string>((resolve) => child.once("exit", (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`)));
  return { child, pid: child.pid, exited };
}

/** Waits for a line that matches, or fails naming what was awaited and how the process ended. */
function lineOrExit(proc: GuestProcess, matched: Promise<string>, what: string, timeoutMs: number): Promise<string> {
  return Promise.race([
    matched,
    proc.exited.then((how) => Promise.reject(new Error(`expected ${what}, but the process ended (${how}); its output is on the console`))),
    new Promise<string>((_, reject) => setTimeout(() => reject(new Error(`expected ${what} within ${timeoutMs} ms; its output is on the console`)), timeoutMs).unref()),
  ]);
}

/**
 * Starts the agent with this config (written to configPath): dist/iopf-agent.mjs
 * under the guest's node, or with exe the single executable, with a PATH
 * that holds no node. Resolves once it logged "started".
 */
export async function startAgent(config: object, configPath: string, label = "agent", exe = false): Promise<GuestProcess> {
  writeFileSync(configPath, JSON.stringify(config));
  const child = exe
    ? spawn(GUEST_AGENT_EXE, ["--config", configPath], { stdio: ["ignore", "inherit", "pipe"], env: { PATH: "/bin" } })
    : spawn(process.execPath, [AGENT_BUNDLE, "--config", configPath], { stdio: ["ignore", "inherit", "pipe"] });
  const proc = track(child);
  let started: (line: string) => void = () => undefined;
  const matched = new Promise<string>((resolve) => { started = resolve; });
  echoLines(child.stderr!, label, (line) => {
    if (line.includes(`"msg":"started"`)) started(line);
  });
  await lineOrExit(proc, matched, `the agent's "started" log line`, 30_000);
  return proc;
}

/** What runs as a process: the file its /proc/PID/exe names, and whether the guest's node is mapped into it. */
export function processImage(pid: number): { exe: string; nodeMapped: boolean; pathHasNode: boolean } {
  return {
    exe: readlinkSync(`/proc/${pid}/exe`),
    nodeMapped: readFileSync(`/proc/${pid}/maps`, "utf8").includes(GUEST_NODE),
    pathHasNode: readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").filter((v) => v.startsWith("PATH="))
      .some((v) => v.slice(5).split(":").some((dir) => existsSync(join(dir, "node")))),
  };
}

export interface GuestApp extends GuestProcess {
  /** First read-write page, and how many. */
  rw: number;
  rwPages: number;
  /** First read-only page, and how many. */
  ro: number;
  roPages: number;
}

/** Starts the C test program and reads where it mapped its pages. It runs until its stdin closes. */
export async function startGuestApp(): Promise<GuestApp> {
  const child = spawn(GUEST_APP, [], { stdio: ["pipe", "pipe", "inherit"] });
  const proc = track(child);
  let report: (line: string) => void = () => undefined;
  const matched = new Promise<string>((resolve) => { report = resolve; });
  echoLines(child.stdout!, "guest-app", (line) => {
    if (line.startsWith("GUEST-APP ")) report(line);
  });
  const line = await lineOrExit(proc, matched, `a "GUEST-APP pid=.. rw=.." line from ${GUEST_APP}`, 10_000);
  const field = (k: string): number => Number(new RegExp(`${k}=(0x[0-9a-f]+|\\d+)`).exec(line)?.[1]);
  return { ...proc, rw: field("rw"), rwPages: field("rwPages"), ro: field("ro"), roPages: field("roPages") };
}

/** For each of `pages` pages from addr: is it present in the process's page table (pagemap bit 63)? */
export function pagesPresent(pid: number, addr: number, pages: number): boolean[] {
  const fd = openSync(`/proc/${pid}/pagemap`, "r");
  try {
    const buf = Buffer.alloc(8 * pages);
    const n = readSync(fd, buf, 0, buf.length, (addr / PAGE) * 8);
    if (n !== buf.length) throw new Error(`/proc/${pid}/pagemap: expected ${buf.length} bytes at page ${addr / PAGE}, read ${n}`);
    return Array.from({ length: pages }, (_, i) => (buf.readBigUInt64LE(i * 8) >> 63n) === 1n);
  } finally {
    closeSync(fd);
  }
}
