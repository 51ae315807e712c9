// A relay core serving a real Unix socket, fed by the synthetic source (the
// kernel's cookie contract: unknown or repeated cookies are refused), with an
// audit of every group it reads: each must be answered exactly once, and
// guest answers must carry the code the guest chose for that very group.
// Cookies are reused once answered, so counting answers per cookie would not
// catch a second answer landing on the cookie's next group: the audit keys on
// the group object itself.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AnswerOrigin, EndReason, FaultGroup, KernelCode } from "../../src/fault/fault-group.js";
import { DEFAULT_LEDGER_LIMITS, LedgerLimits } from "../../src/fault/ledger.js";
import { SyntheticSource } from "../../src/fault/sources/synthetic-source.js";
import { pb } from "../../src/link/messages.js";
import { DEFAULT_LIMITS, LinkLimits, OUR_CAPABILITIES } from "../../src/link/negotiation.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { connectUnix, UnixListener } from "../../src/link/transport/unix.js";
import { GroupObserver, RelayCore } from "../../src/relay/relay-core.js";
import { createLogger } from "../../src/relay/log.js";
import { FAST_TIMERS } from "./link-peers.js";
import { HostileGuest } from "./hostile-guest.js";
import { until } from "./memory-stream.js";
import { simpleDevices } from "./simple-devices.js";

export interface Answer {
  code: KernelCode;
  origin: AnswerOrigin | EndReason;
}

/** Every group read, with every outcome it got (an answer written, or an end with none), in order. */
export class GroupAudit implements GroupObserver {
  readonly answers = new Map<FaultGroup, Answer[]>();

  read(group: FaultGroup): void {
    this.answers.set(group, []);
  }
  answered(group: FaultGroup, code: KernelCode, origin: AnswerOrigin): void {
    const list = this.answers.get(group);
    if (list) list.push({ code, origin });
    else this.answers.set(group, [{ code, origin: `never-read:${origin}` as AnswerOrigin }]);
  }
  ended(group: FaultGroup, reason: EndReason): void {
    const list = this.answers.get(group);
    if (list) list.push({ code: -1 as KernelCode, origin: reason });
    else this.answers.set(group, [{ code: -1 as KernelCode, origin: `never-read:${reason}` as AnswerOrigin }]);
  }

  /** Problems found: groups with zero or several outcomes, or an outcome without being read. */
  problems(): string[] {
    const out: string[] = [];
    for (const [g, list] of this.answers) {
      if (list.length !== 1) out.push(`group cookie ${g.cookie} addr 0x${g.pages[0]?.addr.toString(16)}: ${list.length} answers ${JSON.stringify(list)}`);
    }
    return out.slice(0, 10);
  }

  byAddress(addr: number): Answer[] {
    for (const [g, list] of this.answers) if (g.pages[0]?.addr === addr) return list;
    return [];
  }

  count(origin: AnswerOrigin | EndReason): number {
    let n = 0;
    for (const list of this.answers.values()) n += list.filter((a) => a.origin === origin).length;
    return n;
  }
}

export interface HostileRelayOptions {
  deadlineMs?: number;
  /** Devices whose deadline is not deadlineMs. */
  deadlineByDevId?: Readonly<Record<number, number>>;
  graceMs?: number;
  limits?: Partial<LinkLimits>;
  ledger?: Partial<LedgerLimits>;
  handshakeTimeoutMs?: number;
  /** Wraps each accepted stream before the relay sees it (e.g. a slow transport). */
  wrap?: (stream: ByteStream) => ByteStream;
}

export class HostileRelay {
  readonly audit = new GroupAudit();
  readonly source = new SyntheticSource(1);
  readonly core: RelayCore<{ endpoint: number }>;
  readonly logs: string[] = [];
  private addrNext = 0x1000_0000;

  private constructor(readonly path: string, private readonly dir: string, private readonly listener: UnixListener, opts: HostileRelayOptions) {
    this.core = new RelayCore({
      devices: simpleDevices(opts.deadlineMs ?? 200, opts.deadlineByDevId),
      link: {
        capabilities: { ...OUR_CAPABILITIES, limits: { ...DEFAULT_LIMITS, ...opts.limits } },
        model: pb.ViommuModel.VIRTIO_IOMMU,
        endpoints: [{ endpointId: 1, name: "dev1", deadlineMs: opts.deadlineMs ?? 200, pasidCapable: true }],
        software: "hostile-test-relay",
        resyncTimers: FAST_TIMERS,
        handshakeTimeoutMs: opts.handshakeTimeoutMs ?? 1000,
      },
      ledger: { ...DEFAULT_LEDGER_LIMITS, ...opts.ledger },
      sessionGraceMs: opts.graceMs ?? 2000,
      observer: this.audit,
      log: createLogger("hostile-test-relay", "json", "debug", (line) => this.logs.push(line)),
    });
    this.core.addSource(this.source);
    listener.on("connection", (stream: ByteStream) => this.core.attach(opts.wrap ? opts.wrap(stream) : stream));
  }

  static async start(opts: HostileRelayOptions = {}): Promise<HostileRelay> {
    const dir = mkdtempSync(join(tmpdir(), "iopf-hostile-"));
    const path = join(dir, "link.sock");
    const relay = new HostileRelay(path, dir, await UnixListener.listen(path), opts);
    HostileRelay.live.add(relay);
    return relay;
  }

  /** A hostile guest on a fresh connection, resynced and (by default) handshaking. */
  async connect(): Promise<HostileGuest> {
    const guest = new HostileGuest(await connectUnix(this.path)).start();
    this.guests.push(guest);
    return guest;
  }

  /** A hostile guest on a fresh connection, once its session is up. */
  async connectInSession(): Promise<HostileGuest> {
    const guest = await this.connect();
    await until(() => this.core.currentSession !== null, 10_000, "a session");
    return guest;
  }

  /** Raises n groups (as raise) and waits until the guest has been sent every one; returns their addresses. */
  async raiseSent(guest: HostileGuest, n: number): Promise<number[]> {
    const want = guest.requests.length + n;
    const addrs = this.raise(n);
    await until(() => guest.requests.length === want, 10_000, `${want} requests`);
    return addrs;
  }

  private static readonly live = new Set<HostileRelay>();
  private readonly guests: HostileGuest[] = [];
  private finished: ReturnType<HostileRelay["finish"]> | null = null;

  /**
   * Closes every relay a test left open, with its guests: for
   * test.after.always, so that a failed assertion cannot leave sockets
   * that keep the test worker from exiting.
   */
  static async closeAll(): Promise<void> {
    const open = [...HostileRelay.live];
    HostileRelay.live.clear();
    for (const relay of open) {
      for (const g of relay.guests) g.close();
      await relay.finish();
    }
  }

  /** Raises n one-page groups on device 1, each at its own address; returns the addresses. */
  raise(n: number, devId = 1): number[] {
    const addrs: number[] = [];
    for (let i = 0; i < n; i++) {
      const addr = (this.addrNext += 0x1000);
      this.source.raise({ devId, pasid: 1, grpid: i % 512, perm: 1, addr });
      addrs.push(addr);
    }
    return addrs;
  }

  /**
   * Shuts the relay down and returns what must hold whatever the guest did:
   * nothing refused by the source, nothing outstanding, one answer per group.
   */
  finish(): Promise<{ refused: number; outstanding: number; problems: string[]; delivered: number; answered: number }> {
    HostileRelay.live.delete(this);
    this.finished ??= this.shutdown();
    return this.finished;
  }

  private async shutdown(): Promise<{ refused: number; outstanding: number; problems: string[]; delivered: number; answered: number }> {
    await this.core.shutdown();
    await this.listener.close();
    rmSync(this.dir, { recursive: true, force: true });
    const s = this.source.snapshot();
    return { refused: s.refused, outstanding: s.outstanding, problems: this.audit.problems(), delivered: s.delivered, answered: s.answered };
  }
}

/** The answer every adversarial test expects from finish(), with the counts the test chose. */
export function clean(delivered: number): { refused: number; outstanding: number; problems: string[]; delivered: number; answered: number } {
  return { refused: 0, outstanding: 0, problems: [], delivered, answered: delivered };
}
