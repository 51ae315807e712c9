// Host side of e2e-guest.test.ts: the real relay (startRelay, as the CLI
// builds it) run inside the test process on a kernel emulator's fault fd.
// In-process rather than the CLI because a scenario must raise exactly the
// faults it checks (the CLI's emulator only makes load) and see the relay's
// counters while it runs. The emulator keeps the kernel's contract on a real
// fd through the real pump, and counts violations (unknown, repeated and
// never-answered cookies) on its own; a tap on the source records which
// answer the relay wrote for which group, which the emulator's totals cannot say.
import { createWriteStream, type WriteStream } from "node:fs";
import { KernelEmulator, type EmulatorStats } from "../../../src/fault/emulator/kernel-emulator.js";
import { type FaultAnswer, type FaultSource, type SourceListener, type WriteOutcome } from "../../../src/fault/fault-source.js";
import { FdSourceSet } from "../../../src/fault/sources/fd-sources.js";
import { parseRelayConfig } from "../../../src/relay/config.js";
import { startRelay, type RunningRelay } from "../../../src/relay/daemon.js";
import { createLogger } from "../../../src/relay/log.js";

export interface Fault {
  dev: number;
  pasid: number;
  addr: number;
  perm: number;
  /** Records (pages) in the group, addresses stepping by 4 KiB. */
  records?: number;
}

/** A group's identity for the test: its device, PASID and first page. */
const faultKey = (f: { dev: number; pasid: number; addr: number }): string => `${f.dev}/${f.pasid}/0x${f.addr.toString(16)}`;

/** Passes everything through and records, per group, each code the relay wrote. */
class TapSource implements FaultSource {
  readonly id: number;
  readonly description: string;
  private readonly open = new Map<number, string>();
  readonly written = new Map<string, number[]>();
  /** Answers for cookies not waiting for one (already answered, or never read). */
  strays: FaultAnswer[] = [];

  constructor(private readonly inner: FaultSource) {
    this.id = inner.id;
    this.description = inner.description;
  }

  start(listener: SourceListener): void {
    this.inner.start({
      ...listener,
      records: (records) => {
        // A group is known by its first record; a cookie is reused only after its answer is written.
        for (const r of records) {
          if (!this.open.has(r.cookie)) this.open.set(r.cookie, faultKey({ dev: r.devId, pasid: r.pasid, addr: r.addr }));
        }
        listener.records(records);
      },
    });
  }

  setReadLimit(groups: number): void {
    this.inner.setReadLimit(groups);
  }

  forget(groups: number): void {
    this.inner.forget(groups);
  }

  writeAnswers(answers: FaultAnswer[]): WriteOutcome {
    for (const a of answers) {
      const key = this.open.get(a.cookie);
      this.open.delete(a.cookie);
      if (key === undefined) this.strays.push(a);
      else this.written.set(key, [...(this.written.get(key) ?? []), a.code]);
    }
    return this.inner.writeAnswers(answers);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export interface HostRelayOptions {
  /** The relay's channel: a unix: address it connects to (QEMU's server socket, or a proxy of it). */
  connect: string;
  /** The relay config file's JSON (viommu, devices, limits). */
  config: object;
  /** Where the relay's JSON log lines go. */
  logPath: string;
}

export class HostRelay {
  private stopped: Promise<EmulatorStats> | null = null;

  private constructor(
    private readonly relay: RunningRelay,
    private readonly emulator: KernelEmulator,
    private readonly tap: TapSource,
    private readonly fds: FdSourceSet,
    private readonly log: WriteStream,
  ) {}

  static async start(opts: HostRelayOptions): Promise<HostRelay> {
    const log = createWriteStream(opts.logPath);
    const emulator = await KernelEmulator.start();
    const config = parseRelayConfig(JSON.stringify(opts.config), "(e2e host relay config)");
    const fds = await FdSourceSet.start({ maxHeld: config.maxHeld });
    const tap = new TapSource(fds.add({ fd: emulator.faultFd, kind: "stream", description: "kernel emulator", sweep: false }));
    const relay = await startRelay({
      config,
      link: { connect: opts.connect },
      sources: [tap],
      log: createLogger("iopf-relay", "json", "debug", (line) => log.write(line)),
      software: "iopf-relay e2e host",
    });
    return new HostRelay(relay, emulator, tap, fds, log);
  }

  get metrics() {
    return this.relay.core.metrics;
  }

  /** Raises each group in the emulator; returns their keys. */
  async raise(faults: Fault[]): Promise<string[]> {
    for (const f of faults) await this.emulator.raise({ dev: f.dev, pasid: f.pasid, addr: f.addr, perm: f.perm, records: f.records ?? 1, grpid: 1 });
    return faults.map(faultKey);
  }

  /** The codes the relay wrote for a group, in order (exactly one is right). */
  written(key: string): number[] {
    return this.tap.written.get(key) ?? [];
  }

  get strays(): FaultAnswer[] {
    return this.tap.strays;
  }

  /** Resolves once every key has an answer written and the emulator has read them all. */
  async waitAnswered(keys: string[], timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const missing = keys.filter((k) => this.written(k).length === 0);
      if (missing.length === 0 && (await this.emulator.stats()).outstanding === 0) return;
      if (Date.now() > until) {
        throw new Error(`expected answers for ${keys.length} groups within ${timeoutMs} ms, ${missing.length} have none: ${missing.join(" ")}; ` +
          `relay in flight ${this.relay.core.inFlight}, metrics ${JSON.stringify(this.metrics.summary())}`);
      }
      await sleep(50);
    }
  }

  /** Resolves once the relay has sent `count` more page requests than `before`. */
  async waitSent(before: number, count: number, timeoutMs: number): Promise<void> {
    await waitFor(() => this.metrics.groupsSent >= before + count, timeoutMs,
      () => `expected the relay to send ${count} page requests within ${timeoutMs} ms, it sent ${this.metrics.groupsSent - before}`);
  }

  /** Resolves once an agent session is up. */
  async waitSession(timeoutMs: number): Promise<void> {
    await waitFor(() => this.relay.core.currentSession !== null, timeoutMs,
      () => `expected an agent session within ${timeoutMs} ms; the relay's state is ${this.metrics.sessionState} (last down: ${this.metrics.lastSessionDownReason || "never"})`);
  }

  emulatorStats(): Promise<EmulatorStats> {
    return this.emulator.stats();
  }

  /** Stops the relay (it answers what it holds) and then the emulator; returns the emulator's final account. Once. */
  stop(): Promise<EmulatorStats> {
    this.stopped ??= (async () => {
      await this.relay.stop();
      await this.fds.stop();
      const final = await this.emulator.quit();
      await this.emulator.close();
      await new Promise((resolve) => this.log.end(resolve));
      return final;
    })();
    return this.stopped;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(ok: () => boolean, timeoutMs: number, why: () => string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(why());
    await sleep(25);
  }
}
