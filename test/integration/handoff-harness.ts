// A real relay process with a handoff socket (docs/handoff.md) for the
// handoff tests: its control address, its log, the fds it holds, and the
// small request builders those tests share.
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import type { EmulatorStats, EmulatorViolation } from "../../src/fault/emulator/kernel-emulator.js";
import type { HandoffReply } from "../../src/relay/handoff/handoff-message.js";
import { RELAY_CLI, ROOT, tempDir, until, waitStatus } from "./control-harness.js";
import { reconnectingAgent, type AnswerPolicy } from "../support/reconnecting-agent.js";

type Test = Parameters<typeof tempDir>[0];

export interface Relay {
  child: ChildProcess;
  dir: string;
  handoff: string;
  control: string;
  logs: () => string;
  /** What the relay process has open, fd -> target. */
  fds: () => string[];
}

/** The uid and gid of user nobody, for processes that are neither root nor anyone in particular. */
export const NOBODY = 65534;

/** The command line that runs `argv` as user nobody, with no supplementary groups. */
export function asNobody(argv: string[]): [string, string[]] {
  return ["setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", ...argv]];
}

let readableRoot: string | null = null;
/**
 * `path`, a file of this checkout, where user nobody can read it: in the
 * checkout when nobody can reach it, else in a copy of what runs (built code,
 * runtime modules) made once per test process. A clone in root's home, as
 * the README's fresh machine has it, is out of nobody's reach (/root is 0700
 * on Debian).
 */
export function nobodyReadable(path: string): string {
  if (readableRoot === null) {
    const [file, args] = asNobody(["test", "-r", RELAY_CLI]);
    if (spawnSync(file, args).status === 0) {
      readableRoot = ROOT;
    } else {
      const copy = mkdtempSync(join(tmpdir(), "iopf-for-nobody-"));
      process.once("exit", () => rmSync(copy, { recursive: true, force: true }));
      for (const part of ["package.json", "build", "node_modules"]) cpSync(join(ROOT, part), join(copy, part), { recursive: true, verbatimSymlinks: true });
      execFileSync("chmod", ["-R", "a+rX", copy]);
      readableRoot = copy;
    }
  }
  return join(readableRoot, relative(ROOT, path));
}

export interface RelayStart {
  answer?: AnswerPolicy;
  extra?: string[];
  /** Run the relay as user nobody (its directory given to nobody), not as root. */
  nobody?: boolean;
}

export async function startRelay(t: Test, o: RelayStart = {}): Promise<Relay> {
  const dir = tempDir(t, "iopf-handoff-");
  writeFileSync(join(dir, "relay.json"), JSON.stringify({ viommu: "virtio-iommu", devices: [] }));
  if (o.nobody) chownSync(dir, NOBODY, NOBODY);
  // Other users' processes reach the socket inside.
  chmodSync(dir, 0o755);
  const handoff = join(dir, "handoff.sock");
  const socket = join(dir, "link.sock");
  const argv = [process.execPath, o.nobody ? nobodyReadable(RELAY_CLI) : RELAY_CLI, "--handoff", `unix:${handoff}`, "--config", join(dir, "relay.json"), "--socket-path", socket,
    "--control", "tcp:127.0.0.1:0", "--log-format", "json", "--log-level", "debug", ...(o.extra ?? [])];
  const [file, args] = o.nobody ? asNobody(argv) : [argv[0]!, argv.slice(1)];
  const child = spawn(file, args, { stdio: ["ignore", "ignore", "pipe"] });
  let logs = "";
  child.stderr!.on("data", (b: Buffer) => (logs += b.toString()));
  t.teardown(() => void child.kill("SIGKILL"));
  await until(() => /"msg":"handoff socket listening"/.test(logs) && /"msg":"control server listening"/.test(logs), 20_000, "the relay").catch((err: Error) => {
    throw new Error(`${err.message}\n${logs}`);
  });
  const control = /"msg":"control server listening","on":"([^"]+)"/.exec(logs)![1]!;
  const agent = reconnectingAgent(socket, 0, o.answer ?? (() => 0));
  t.teardown(() => agent.stop());
  await waitStatus(control, (s) => s.session.state === "up", "the agent's session");
  return {
    child, dir, handoff, control, logs: () => logs,
    fds: () => fdsOf(child.pid!),
  };
}

/** What a process has open, fd -> target. */
export function fdsOf(pid: number): string[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    try {
      return [`${fd} -> ${readlinkSync(`/proc/${pid}/fd/${fd}`)}`];
    } catch {
      return [];
    }
  });
}

/** Answers the emulator refused, but for the sweep's cookies that were not outstanding (unknown-cookie). */
export const refusals = (s: EmulatorStats): EmulatorViolation[] => s.violations.filter((v) => v.kind !== "unknown-cookie");

/** An attach of one emulator fd (index `fd` of the message's fds) as fault queue `faultId`. */
export const attach = (faultId: number, devices: object[], fd = 0, more: object = {}): object =>
  ({ v: 1, op: "attach", queues: [{ fd, faultId, devices, emulator: true }], ...more });

export function ok<T extends HandoffReply>(reply: T): T {
  if (!reply.ok) throw new Error(`the relay refused: ${reply.error}`);
  return reply;
}

/** The error of a refusal; fails the caller's expectation loudly when the relay accepted. */
export function refused(reply: HandoffReply): string {
  if (reply.ok) throw new Error(`expected a refusal, the relay accepted: ${JSON.stringify(reply)}`);
  return reply.error;
}
