// The keeper: a small parent process that holds the fault fds (and the
// kernel emulator) and runs the relay as a child with those fds inherited.
// The kernel answers nothing when a reader of a fault fd dies mid-group, and
// a dead relay takes its copy of the fd with it; the keeper's copy keeps the
// fault queue reachable, and the restarted relay answers SUCCESS to every
// cookie the dead one may have held before it reads (the sweep), so each
// device retries its fault. The keeper itself never reads a fault fd: one
// reader per fault queue.
//
// It restarts the relay whenever it exits while the keeper is not stopping,
// backing off. A relay that keeps exiting before it is ready (a bad fd, a
// bad config) is not restarted for ever: the keeper answers what it holds
// (the same sweep) and exits non-zero with the reason.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { KernelEmulator } from "../fault/emulator/kernel-emulator.js";
import { sweepBound } from "../kernel/fault-pump.js";
import { checkEmulatorFd, checkFaultFd } from "../kernel/fd-kind.js";
import { IommuFd } from "../kernel/iommufd.js";
import type { FdKind } from "../kernel/record-reader.js";
import { failpoint } from "../kernel/failpoint.js";
import { sweepCookies } from "../kernel/sweep.js";
import { seqpacketPair } from "../kernel/unix-rights.js";
import * as libc from "../kernel/libc.js";
import { Backoff } from "../link/backoff.js";
import { RelayCli } from "./cli-options.js";
import { LinkEndpointSpec } from "./link-endpoint.js";
import { Logger } from "./log.js";
import { emulatorDemoLoad, SourceError } from "./source-factory.js";
import { ConfigError, parseRelayConfig, readConfigText } from "./config.js";
import { HandoffServer } from "./handoff/handoff-server.js";
import { KeeperChannel } from "./handoff/keeper-link.js";
import { KeeperQueues } from "./handoff/keeper-queues.js";
import { StopSignals } from "./stop-signals.js";

/** Restarts back off from the first delay to the last, doubling; a relay that lived this long starts the count again. */
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 5000;
const STABLE_AFTER_MS = 30_000;
/** This many exits in a row before the relay said it was ready: it cannot start. */
const FAILED_STARTS_ALLOWED = 5;
/** How many times the keeper restarted its relay before this one, for the relay's metrics. */
export const RESTARTS_ENV = "IOPF_KEEPER_RESTARTS";
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
  /** The relay's maxHeld: what the sweep at give-up must cover. */
  maxHeld: number;
  /** Devices the emulator's demo load raises faults on (contiguous ids). */
  devIds: number[];
  log: Logger;
  /** SIGTERM and SIGINT since the program began: a stop asked for while the keeper opens what it holds is carried out once it has. */
  signals: StopSignals;
  announce: (info: object) => void;
  /** The relay (first start or a restart) said it is ready. */
  ready?: () => void;
}

interface Held {
  fd: number;
  kind: FdKind;
  /** The child's flag for it. */
  flag: "--fault-fd" | "--emulator-fd";
}

/** Where the keeper's files live: a tmpfs when there is one. */
function runtimeDir(): string {
  const candidates = [process.env.XDG_RUNTIME_DIR, "/dev/shm"];
  return candidates.find((d): d is string => d !== undefined && d !== "" && existsSync(d)) ?? tmpdir();
}

function heldFd(flag: Held["flag"], fd: number): Held {
  const c = flag === "--fault-fd" ? checkFaultFd(fd) : checkEmulatorFd(fd);
  if (!c.ok) throw new SourceError(`${flag} ${fd}: ${c.why}`);
  return { fd, kind: c.kind, flag };
}

/** Runs until SIGTERM/SIGINT, or until the relay cannot start; resolves with the exit code. */
export async function runKeeper(opts: KeeperOptions): Promise<number> {
  const { cli, log } = opts;
  // Checked before anything starts: a relay given a bad fd would fail at every restart.
  const held: Held[] = [...cli.faultFds.map((fd) => heldFd("--fault-fd", fd)), ...cli.emulatorFds.map((fd) => heldFd("--emulator-fd", fd))];
  const work = mkdtempSync(join(runtimeDir(), "iopf-relay-keeper-"));
  const configPath = join(work, "config.json");
  writeFileSync(configPath, opts.configJson, { mode: 0o600 });

  let iommu: IommuFd | null = null;
  if (cli.iommufd) {
    iommu = IommuFd.open();
    const { faultId, faultFd } = iommu.faultQueueAlloc();
    opts.announce({ iommufd: iommu.fd, faultId, faultFd });
    held.push({ fd: faultFd, kind: "kernel", flag: "--fault-fd" });
  }
  failpoint("keeper-starting");
  let emulator: KernelEmulator | null = null;
  if (cli.sources.includes("emulator")) {
    emulator = await KernelEmulator.start();
    held.push({ fd: emulator.faultFd, kind: "stream", flag: "--emulator-fd" });
    if (cli.rate > 0) emulator.load(emulatorDemoLoad(opts.devIds, cli.rate)).catch((err: Error) => log.level("debug", "emulator load ended", { error: err.message }));
  }

  // Handoffs come to the keeper, which holds their fds and passes them on to each relay it runs.
  const channel = cli.handoff === null ? null : await KeeperChannel.start();
  const handed = channel === null ? null : new KeeperQueues(channel, sweepBound(opts.maxHeld), log);
  const handoff = handed === null ? null : await HandoffServer.listen(cli.handoff!, handed, { group: cli.handoffGroup, log });
  const channelFd = FIRST_CHILD_FD + held.length;

  const childArgs = [
    opts.script, ...linkArgs(cli.link), "--config", configPath,
    ...held.flatMap((h, i) => [h.flag, String(FIRST_CHILD_FD + i)]),
    ...(channel ? ["--keeper-channel", String(channelFd)] : []),
    ...(cli.sources.includes("synthetic") ? ["--source", "synthetic"] : []),
    ...(cli.rate > 0 && cli.sources.includes("synthetic") ? ["--rate", String(cli.rate)] : []),
    ...(cli.control ? ["--control", cli.control] : []),
    ...(cli.logFormat ? ["--log-format", cli.logFormat] : []),
    "--log-level", cli.logLevel,
  ];

  let child: ChildProcess | null = null;
  let stopping = false;
  let failedStarts = 0;
  let restarts = 0;
  let lastExitClean = true;
  /** The last line the relay wrote on stderr: the reason it gives when it cannot start. */
  let lastLine = "";
  const backoff = new Backoff(RESTART_MIN_MS, RESTART_MAX_MS);
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (resolveDone = resolve));

  /** Answers SUCCESS to what a relay that did not stop in order may have held: each device retries. */
  const sweepHeld = (): void => {
    const bound = sweepBound(opts.maxHeld);
    handed?.sweepAll();
    for (const h of held) {
      try {
        const { accepted } = sweepCookies(h.fd, h.kind, bound);
        log("answered SUCCESS to the groups the relay left", { fd: h.fd, cookies: `1..${bound}`, answered: accepted ?? "unknown (a stream cannot tell)" });
      } catch (err) {
        log.level("error", "could not answer the groups the relay left", { fd: h.fd, error: (err as Error).message });
      }
    }
  };

  const finish = async (code: number): Promise<void> => {
    await handoff?.close();
    await channel?.close();
    if (emulator) {
      const s = await emulator.quit();
      log("kernel emulator final stats", { delivered: s.deliveredGroups, success: s.answeredSuccess, invalid: s.answeredInvalid, outstanding: s.outstanding, violations: s.violationCount });
      await emulator.close();
    }
    iommu?.close();
    rmSync(work, { recursive: true, force: true });
    resolveDone(code);
  };

  const startChild = (): void => {
    const startedAt = Date.now();
    let ready = false;
    const pair = channel ? seqpacketPair() : null;
    const c = spawn(process.execPath, childArgs, {
      stdio: ["ignore", "inherit", "pipe", ...held.map((h) => h.fd), ...(pair ? [pair[1]] : []), "ipc"],
      // The relay reports it (iopf_relay_keeper_restarts_total): its own counters start again at every restart.
      env: { ...process.env, [RESTARTS_ENV]: String(restarts) },
    });
    child = c;
    if (pair) {
      libc.close(pair[1]);
      channel!.connect(pair[0]);
    }
    log("relay started", { pid: c.pid, restarts, fds: held.map((h) => h.fd) });
    createInterface({ input: c.stderr! }).on("line", (line) => {
      process.stderr.write(line + "\n");
      // Its reason, not the frames of a stack trace under it.
      if (line.trim() !== "" && !/^\s/.test(line)) lastLine = line;
    });
    c.on("message", (m: unknown) => {
      if ((m as { ready?: boolean }).ready !== true || ready) return;
      ready = true;
      failedStarts = 0;
      // Every queue handed over goes to the new relay before anything else the VMM asks.
      if (channel) void channel.ready((send) => handed!.resend(send));
      opts.ready?.();
    });
    c.on("exit", (code, signal) => {
      child = null;
      channel?.disconnect();
      const clean = code === 0 && signal === null;
      lastExitClean = clean;
      if (stopping) {
        if (!clean) sweepHeld();
        void finish(0);
        return;
      }
      if (!ready) failedStarts++;
      if (failedStarts >= FAILED_STARTS_ALLOWED) {
        log.level("error", `the relay exited ${failedStarts} times in a row before it was ready; the keeper answers what it holds and gives up`, { code, signal, lastLine });
        sweepHeld();
        void finish(1);
        return;
      }
      if (Date.now() - startedAt > STABLE_AFTER_MS) backoff.reset();
      const delayMs = Math.round(backoff.delay());
      restarts++;
      log.level(clean ? "warn" : "error", "relay exited; restarting it with the same fault fds", { code, signal, restartInMs: delayMs, restarts });
      setTimeout(() => {
        if (!stopping) startChild();
      }, delayMs);
    });
  };

  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log("stopping: the relay answers what it has read, then the keeper exits", { signal });
    if (child) child.kill("SIGTERM");
    else {
      // Between a relay's death and its restart: what it held is still unanswered.
      if (!lastExitClean) sweepHeld();
      void finish(0);
    }
  };
  opts.signals.handle((signal) => stop(signal));
  // A reload reads the operator's file again; the relay reloads the keeper's copy of it.
  if (cli.config !== null) {
    const source = cli.config;
    process.on("SIGHUP", () => {
      try {
        const text = readConfigText(source);
        parseRelayConfig(text, source);
        writeFileSync(configPath, text, { mode: 0o600 });
        child?.kill("SIGHUP");
      } catch (err) {
        log.level("error", "the config was not reloaded; the relay keeps the map in force", { path: source, error: err instanceof ConfigError ? err.message : (err as Error).message });
      }
    });
  }
  if (!stopping) startChild();
  return done;
}
