// The keeper: a small parent process that holds the fault fds (and the
// kernel emulator) and runs the relay as a child with those fds inherited.
// The kernel answers nothing when the last reader of a fault fd goes away
// mid-group, and a crashed relay takes its copy of the fd with it; the
// keeper's copy keeps the fault queue and its read-but-unanswered groups
// reachable, and the journal tells the restarted relay which ones to answer.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KernelEmulator } from "../fault/emulator/kernel-emulator.js";
import { IommuFd } from "../kernel/iommufd.js";
import { RelayCli } from "./cli-options.js";
import { LinkEndpointSpec } from "./link-endpoint.js";
import { Logger } from "./log.js";

/** A restart this soon after the previous one backs off, doubling up to the maximum. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
const STABLE_AFTER_MS = 30_000;
/** The child's first inherited fd: 0-2 are stdio. */
const FIRST_CHILD_FD = 3;

function linkArgs(link: LinkEndpointSpec): string[] {
  if ("listen" in link) return ["--listen", link.listen, ...(link.socketMode !== undefined ? ["--socket-mode", `0${link.socketMode.toString(8)}`] : [])];
  if ("connect" in link) return ["--connect", link.connect];
  return ["--fd", String(link.fd)];
}

export interface KeeperOptions {
  cli: RelayCli;
  /** The relay entry script the child runs (this same program). */
  script: string;
  /** The config the child uses, as JSON text (the user's file or the built-in demo map). */
  configJson: string;
  /** Devices the emulator's demo load raises faults on (contiguous ids). */
  devIds: number[];
  log: Logger;
  announce: (info: object) => void;
}

/**
 * Where the keeper's files (the journal by default) live: a tmpfs when there
 * is one. Journal appends then cost a memory copy, and they survive the
 * relay's crash all the same: the page cache belongs to the kernel.
 */
function runtimeDir(): string {
  const candidates = [process.env.XDG_RUNTIME_DIR, "/dev/shm"];
  return candidates.find((d): d is string => d !== undefined && d !== "" && existsSync(d)) ?? tmpdir();
}

/** Runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runKeeper(opts: KeeperOptions): Promise<number> {
  const { cli, log } = opts;
  const work = mkdtempSync(join(runtimeDir(), "iopf-relay-keeper-"));
  const journal = cli.journal ?? join(work, "journal");
  const configPath = join(work, "config.json");
  writeFileSync(configPath, opts.configJson, { mode: 0o600 });

  // The fds the keeper holds, in the order the child sees them (fd 3, 4, ...).
  const held: number[] = [...cli.faultFds];
  let iommu: IommuFd | null = null;
  if (cli.iommufd) {
    iommu = IommuFd.open();
    const { faultId, faultFd } = iommu.faultQueueAlloc();
    opts.announce({ iommufd: iommu.fd, faultId, faultFd });
    held.push(faultFd);
  }
  let emulator: KernelEmulator | null = null;
  if (cli.sources.includes("emulator")) {
    emulator = await KernelEmulator.start();
    held.push(emulator.faultFd);
    if (cli.rate > 0) {
      emulator.load({ devices: opts.devIds.length, devBase: Math.min(...opts.devIds), records: 1, rate: cli.rate, durationMs: 24 * 3600_000, maxOutstanding: 4096, pasid: 1 })
        .catch((err: Error) => log.level("warn", "emulator load ended", { error: err.message }));
    }
  }

  const childArgs = [
    opts.script, ...linkArgs(cli.link), "--config", configPath, "--journal", journal,
    ...held.flatMap((_, i) => ["--fault-fd", String(FIRST_CHILD_FD + i)]),
    ...(cli.sources.includes("synthetic") ? ["--source", "synthetic"] : []),
    ...(cli.rate > 0 && cli.sources.includes("synthetic") ? ["--rate", String(cli.rate)] : []),
    ...(cli.control ? ["--control", cli.control] : []),
    ...(cli.logFormat ? ["--log-format", cli.logFormat] : []),
    "--log-level", cli.logLevel,
  ];

  let child: ChildProcess | null = null;
  let stopping = false;
  let delayMs = RESTART_MIN_MS;
  let restarts = 0;
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  const startChild = (): void => {
    const startedAt = Date.now();
    const c = spawn(process.execPath, childArgs, { stdio: ["ignore", "inherit", "inherit", ...held] });
    child = c;
    log("relay started", { pid: c.pid, restarts, journal, fds: held });
    c.on("exit", (code, signal) => {
      child = null;
      if (stopping || (code === 0 && signal === null)) {
        void finish(code ?? 1);
        return;
      }
      delayMs = Date.now() - startedAt > STABLE_AFTER_MS ? RESTART_MIN_MS : Math.min(delayMs * 2, RESTART_MAX_MS);
      restarts++;
      log.level("error", "relay exited; restarting it with the same fault fds", { code, signal, restartInMs: delayMs, restarts });
      setTimeout(() => {
        if (!stopping) startChild();
      }, delayMs);
    });
  };

  const finish = async (code: number): Promise<void> => {
    if (emulator) {
      const s = await emulator.quit();
      log("kernel emulator final stats", { delivered: s.deliveredGroups, success: s.answeredSuccess, invalid: s.answeredInvalid, outstanding: s.outstanding, violations: s.violationCount });
      await emulator.close();
    }
    iommu?.close();
    rmSync(work, { recursive: true, force: true });
    resolveDone(code === 0 ? 0 : 1);
  };

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log("stopping: the relay answers what it has read, then the keeper exits", { signal });
    if (child) child.kill("SIGTERM");
    else void finish(0);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  startChild();
  return done;
}
