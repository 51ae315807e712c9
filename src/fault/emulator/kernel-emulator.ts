// The TypeScript side of the kernel emulator (kernel-emulator.c), in one of
// its two front ends:
// - stream: creates the socketpair, hands one end to the emulator as its fd 3
//   (and a copy of the other as fd 4, so it can tell what the relay has not
//   read yet), keeps the other as the relay's fault fd (O_NONBLOCK: the
//   emulator's reads return EAGAIN when empty, which the kernel layer treats
//   as the kernel's 0);
// - kernel-exact: the emulator mounts a FUSE file that behaves as the fault
//   fd itself (cookies given at read, whole groups, EINVAL as the kernel
//   gives it); the relay's fault fd is that file, opened read-write.
// Either way it drives the emulator over its stdin/stdout line protocol.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import * as libc from "../../kernel/libc.js";
import { SyscallError } from "../../kernel/errno.js";
import { compileC, emulatorSource } from "./compile-c.js";

export interface RaiseGroup {
  dev: number;
  /** Non-zero sets PASID_VALID, as the kernel's TRIGGER_IOPF does. */
  pasid?: number;
  grpid?: number;
  perm?: number;
  addr?: number;
  /** Records in the group (LAST_PAGE on the last); default 1. */
  records?: number;
  /** Raise this many groups, grpid and addr stepping; default 1. */
  count?: number;
}

export interface LoadOptions {
  devices: number;
  records: number;
  /** Groups per second; 0 delivers as fast as they are answered. */
  rate: number;
  durationMs: number;
  /** Delivered-but-unanswered plus waiting groups never exceed this. */
  maxOutstanding: number;
  devBase?: number;
  pasid?: number;
}

export interface EmulatorViolation {
  /** unread-cookie: an answer for a group the relay has not read yet (stream only; the kernel gives no cookie before the read). */
  kind: "unknown-cookie" | "repeated-cookie" | "unread-cookie" | "bad-code" | "partial-answer" | "unanswered-group";
  cookie?: number;
  code?: number;
  dev?: number;
  bytes?: number;
  detail?: string;
}

export interface EmulatorStats {
  deliveredGroups: number;
  deliveredRecords: number;
  answeredSuccess: number;
  answeredInvalid: number;
  /** Groups answered INVALID by a detach, read or not. */
  autoAnswered: number;
  /** Delivered (stream: written into the socket; kernel-exact: read), not yet answered. */
  outstanding: number;
  /** Raised, not yet delivered: the kernel's list of unread groups. */
  queued: number;
  /** The highest cookie ever given: in kernel-exact mode at most the peak of groups read and unanswered. */
  maxCookie: number;
  peerClosed: boolean;
  latencyNs: { count: number; p50: number; p99: number; p999: number; max: number };
  violationCount: number;
  /** Every violation, counted by kind. */
  violationKinds: Record<EmulatorViolation["kind"], number>;
  /** The first 100. */
  violations: EmulatorViolation[];
}

export interface SlowAnswer {
  /** CLOCK_MONOTONIC nanoseconds when the group was delivered (stream: written into the socket). */
  deliveredNs: number;
  latencyNs: number;
}

type Reply = Record<string, unknown> & { id: number; ok: boolean; error?: string };

function toStats(r: Reply): EmulatorStats {
  const n = (k: string): number => r[k] as number;
  return {
    deliveredGroups: n("delivered_groups"),
    deliveredRecords: n("delivered_records"),
    answeredSuccess: n("answered_success"),
    answeredInvalid: n("answered_invalid"),
    autoAnswered: n("auto_answered"),
    outstanding: n("outstanding"),
    queued: n("queued"),
    maxCookie: n("max_cookie"),
    peerClosed: r["peer_closed"] as boolean,
    latencyNs: r["latency_ns"] as EmulatorStats["latencyNs"],
    violationCount: n("violation_count"),
    violationKinds: r["violation_kinds"] as EmulatorStats["violationKinds"],
    violations: r["violations"] as EmulatorViolation[],
  };
}

export interface StartOptions {
  /** "stream" (default) or "kernel-exact" (a FUSE file; needs root and /dev/fuse). */
  mode?: "stream" | "kernel-exact";
  /**
   * Give the other end to the trivial C responder instead of the relay, to
   * measure the emulator's own throughput; faultFd is then unavailable.
   */
  responder?: boolean;
}

export class KernelEmulator {
  readonly #child: ChildProcess;
  readonly #responder: ChildProcess | undefined;
  #relayFd: number;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  readonly #exited: Promise<number | null>;

  readonly #mountDir: string | null;

  private constructor(child: ChildProcess, responder: ChildProcess | undefined, relayFd: number, mountDir: string | null) {
    this.#child = child;
    this.#responder = responder;
    this.#relayFd = relayFd;
    this.#mountDir = mountDir;
    this.#exited = new Promise((resolve) => child.once("exit", (code) => {
      const err = new Error(`kernel emulator exited (code ${code}) with a command unanswered`);
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
      resolve(code);
    }));
    // A write to the stdin of an emulator that died fails with EPIPE; the exit handler above reports it.
    child.stdin!.on("error", () => undefined);
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const reply = JSON.parse(line) as Reply;
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if (reply.ok) p.resolve(reply);
      else p.reject(new Error(`kernel emulator refused a command: ${reply.error}`));
    });
  }

  static async start(opts: StartOptions = {}): Promise<KernelEmulator> {
    if (opts.mode === "kernel-exact") return KernelEmulator.#startKernelExact();
    const [emulatorBin, responderBin] = await Promise.all([
      compileC(emulatorSource("kernel-emulator.c")),
      opts.responder ? compileC(emulatorSource("responder.c")) : Promise.resolve(undefined),
    ]);
    const [emuEnd, relayEnd] = libc.socketpair();
    let child: ChildProcess | undefined;
    let responder: ChildProcess | undefined;
    try {
      // Node dup2()s each stdio entry into the child at its index: emuEnd becomes fd 3, the copy of relayEnd fd 4.
      // Its own process group: a terminal's Ctrl-C is SIGINT to the whole foreground group, and the emulator,
      // like the kernel, must outlive the relay's orderly stop (which writes its last answers to it); it exits
      // when its stdin, our pipe, ends, however we end.
      child = spawn(emulatorBin, [], { stdio: ["pipe", "pipe", "inherit", emuEnd, relayEnd], detached: true });
      if (responderBin) responder = spawn(responderBin, [], { stdio: ["ignore", "ignore", "inherit", relayEnd] });
    } finally {
      libc.close(emuEnd);
      if (responderBin) libc.close(relayEnd);
    }
    if (!responderBin) libc.setNonBlocking(relayEnd, true);
    await spawned(child, emulatorBin);
    return new KernelEmulator(child, responder, responderBin ? -1 : relayEnd, null);
  }

  static async #startKernelExact(): Promise<KernelEmulator> {
    const bin = await compileC(emulatorSource("kernel-emulator.c"));
    const dir = mkdtempSync(join(tmpdir(), "iopf-kernel-emulator-"));
    // Its own process group, as in start().
    const child = spawn(bin, ["--fuse", dir], { stdio: ["pipe", "pipe", "inherit"], detached: true });
    await spawned(child, bin);
    const emulator = new KernelEmulator(child, undefined, -1, dir);
    try {
      // A reply means the emulator's loop runs, so it serves the open below.
      await emulator.stats();
      emulator.#relayFd = libc.open(join(dir, "fault"), libc.O_RDWR, "the kernel-exact emulator needs root and /dev/fuse");
    } catch (err) {
      await emulator.close();
      throw err;
    }
    return emulator;
  }

  /** The relay's end: read 40-byte records, write 8-byte answers, as on a kernel fault fd. Closed by close(). */
  get faultFd(): number {
    if (this.#relayFd < 0) throw new Error("KernelEmulator.faultFd: not available (closed, or started with a responder)");
    return this.#relayFd;
  }

  #command(verb: string, args: Record<string, number | undefined> = {}): Promise<Reply> {
    const id = this.#nextId++;
    const kv = Object.entries(args).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`);
    return new Promise<Reply>((resolve, reject) => {
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) {
        reject(new Error(`kernel emulator: cannot send "${verb}", the emulator has exited`));
        return;
      }
      this.#pending.set(id, { resolve, reject });
      this.#child.stdin!.write(`${id} ${[verb, ...kv].join(" ")}\n`);
    });
  }

  async raise(g: RaiseGroup): Promise<void> {
    await this.#command("raise", {
      dev: g.dev, pasid: g.pasid, grpid: g.grpid, perm: g.perm, addr: g.addr, records: g.records, count: g.count,
    });
  }

  /** Generates load and resolves when it ends. */
  async load(o: LoadOptions): Promise<{ generated: number; elapsedNs: number }> {
    const r = await this.#command("load", {
      devices: o.devices, records: o.records, rate: o.rate, duration_ms: o.durationMs,
      max_outstanding: o.maxOutstanding, dev_base: o.devBase, pasid: o.pasid,
    });
    return { generated: r["generated"] as number, elapsedNs: r["elapsed_ns"] as number };
  }

  /** Counters after reading every answer already written to the socket. */
  async stats(): Promise<EmulatorStats> {
    return toStats(await this.#command("stats"));
  }

  /** The slowest answers so far (at most 4096), unordered: when each group was delivered (CLOCK_MONOTONIC ns) and its latency (ns). */
  async slowest(): Promise<SlowAnswer[]> {
    const r = await this.#command("slowest");
    return (r["slowest"] as [number, number][]).map(([deliveredNs, latencyNs]) => ({ deliveredNs, latencyNs }));
  }

  /** The emulator's process id (a benchmark watches its scheduling). */
  get pid(): number {
    if (this.#child.pid === undefined) throw new Error("KernelEmulator.pid: the emulator did not start");
    return this.#child.pid;
  }

  /** Answers INVALID for the device's waiting groups, as the kernel does on detach; drops its undelivered ones. */
  async detach(dev: number): Promise<{ answered: number; dropped: number }> {
    const r = await this.#command("detach", { dev });
    return { answered: r["answered"] as number, dropped: r["dropped"] as number };
  }

  /** Final stats (every group never answered becomes a violation), then the emulator exits. */
  async quit(): Promise<EmulatorStats> {
    const stats = toStats(await this.#command("quit"));
    await this.#exited;
    return stats;
  }

  /** Closes the relay's end and ends the emulator (and the responder); safe after quit(). */
  async close(): Promise<void> {
    if (this.#relayFd >= 0) {
      try {
        libc.close(this.#relayFd);
      } catch (err) {
        // The kernel-exact file of an emulator that already quit: close() frees the fd all the same.
        if (!(err instanceof SyscallError && err.code === "ENOTCONN")) throw err;
      }
      this.#relayFd = -1;
    }
    this.#child.stdin!.end();
    await this.#exited;
    if (this.#responder && this.#responder.exitCode === null) {
      await new Promise((resolve) => this.#responder!.once("exit", resolve));
    }
    if (this.#mountDir !== null) {
      // The emulator unmounts when it quits; one that was killed leaves its mount behind.
      libc.unmountLazily(this.#mountDir);
      rmdirSync(this.#mountDir);
    }
  }
}

function spawned(child: ChildProcess, bin: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (e) => reject(new Error(`starting the kernel emulator ${bin} failed: ${e.message}`)));
  });
}
