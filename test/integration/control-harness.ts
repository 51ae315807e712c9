// Real processes for the control-plane tests: the iopf-relay CLI with its
// control server on a free loopback port (or a Unix socket), the bundled
// agent, and iopfctl; plus small HTTP helpers. Every process is killed at
// the test's teardown.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { until } from "../support/memory-stream.js";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const RELAY_CLI = join(ROOT, "build", "src", "cli", "iopf-relay.js");
export const IOPFCTL_CLI = join(ROOT, "build", "src", "cli", "iopfctl.js");
export const DEMO_CLI = join(ROOT, "build", "src", "cli", "demo.js");
export const AGENT_BUNDLE = join(ROOT, "dist", "iopf-agent.mjs");

interface Teardown {
  teardown(f: () => void | Promise<void>): void;
}

export function tempDir(t: Teardown, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Proc {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<number | null>;
}

export function run(t: Teardown, file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(process.execPath, [file, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  let err = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

export interface RelayProc extends Proc {
  /** The control address to give iopfctl, with the real port. */
  control: string;
  /** The agent's channel. */
  socketPath: string;
  dir: string;
  stop(): Promise<number | null>;
}

export interface RelayOptions {
  source: "synthetic" | "emulator";
  rate?: number;
  /** A relay config (viommu, devices, limits...) written to a file; the built-in demo map otherwise. */
  config?: object;
  /** "tcp" (a free port on 127.0.0.1) or "unix" (a socket in the test's directory). */
  control?: "tcp" | "unix";
}

export async function startRelay(t: Teardown, o: RelayOptions): Promise<RelayProc> {
  const dir = tempDir(t, "iopf-control-");
  const socketPath = join(dir, "relay.sock");
  const args = ["--source", o.source, "--socket-path", socketPath, "--log-format", "json", "--rate", String(o.rate ?? 0)];
  args.push("--control", o.control === "unix" ? `unix:${join(dir, "control.sock")}` : "tcp:127.0.0.1:0");
  if (o.config) {
    writeFileSync(join(dir, "relay.json"), JSON.stringify(o.config));
    args.push("--config", join(dir, "relay.json"));
  }
  const p = run(t, RELAY_CLI, args);
  let control = "";
  await until(() => {
    const m = /"msg":"control server listening","on":"([^"]+)"/.exec(p.stderr());
    if (m) control = m[1] as string;
    return control !== "" || p.child.exitCode !== null;
  }, 20_000, "the relay's control server");
  if (!control) throw new Error(`the relay exited before serving its control server:\n${p.stderr()}`);
  return {
    ...p, control, socketPath, dir,
    stop: async () => {
      p.child.kill("SIGTERM");
      return p.exited;
    },
  };
}

/** An agent answering SUCCESS for every address below 0x4000000000 on any PASID (after the handlers given first). */
export function startAgent(t: Teardown, relay: RelayProc, credits = 256, handlers: object[] = [], more: object = {}): Proc {
  const config = join(relay.dir, "agent.json");
  writeFileSync(config, JSON.stringify({
    credits, appSocket: "none", ...more,
    handlers: [...handlers, { handler: "policy", rules: [{ start: "0x0", end: "0x4000000000", perm: "rwx", answer: "success" }] }],
  }));
  return run(t, AGENT_BUNDLE, ["--connect", `unix:${relay.socketPath}`, "--config", config]);
}

export function httpGet(control: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: NodeJS.Dict<string | string[]> }> {
  const where = control.startsWith("unix:") ? { socketPath: control.slice(5) } : { host: "127.0.0.1", port: Number(control.split(":").pop()) };
  return new Promise((resolve, reject) => {
    const req = request({ ...where, path, headers }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

export async function status(control: string): Promise<import("../../src/relay/control/status.js").RelayStatus> {
  const r = await httpGet(control, "/api/status");
  if (r.status !== 200) throw new Error(`GET /api/status: HTTP ${r.status}: ${r.body}`);
  return JSON.parse(r.body);
}

export async function inject(control: string, body: object): Promise<void> {
  const port = Number(control.split(":").pop());
  const payload = JSON.stringify(body);
  await new Promise<void>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/api/inject", method: "POST", headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => (res.statusCode === 200 ? resolve() : reject(new Error(`inject: HTTP ${res.statusCode}: ${text}`))));
    });
    req.on("error", reject);
    req.end(payload);
  });
}

/** The value of one sample of the exposition, e.g. sample(text, 'iopf_relay_answers_total{origin="guest",code="success"}'). */
export function sample(text: string, series: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

export { until };

type Status = Awaited<ReturnType<typeof status>>;

/** Polls /api/status every 20 ms until pred holds; throws naming what was awaited and the last status. */
export async function waitStatus(control: string, pred: (s: Status) => boolean, what: string, timeoutMs = 10_000): Promise<Status> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(control);
    if (pred(s)) return s;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status: ${JSON.stringify({ session: s.session, counters: s.counters })}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
