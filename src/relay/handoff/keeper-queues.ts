// What the keeper does with a handoff (docs/handoff.md, section 6): it
// checks the fds, holds them, and passes each request on to its relay over
// their channel; the relay's reply is the VMM's. After a restart it hands
// every queue it holds to the new relay again. The keeper never reads a
// fault fd: when no relay is there to take back a whole queue, it answers
// what a dead relay may have held (the sweep) before it lets go.
import { checkEmulatorFd, checkFaultFd } from "../../kernel/fd-kind.js";
import * as libc from "../../kernel/libc.js";
import type { FdKind } from "../../kernel/record-reader.js";
import { sweepCookies } from "../../kernel/sweep.js";
import { Logger } from "../log.js";
import { AttachQueue, HANDOFF_VERSION, HandoffError, HandoffReply } from "./handoff-message.js";
import { HandoffHandler } from "./handoff-server.js";
import { KeeperChannel } from "./keeper-link.js";

interface HeldQueue {
  fd: number;
  kind: FdKind;
  emulator: boolean;
  viommu: string | null;
  /** The device entries handed over, as sent (each with its devId). */
  devices: unknown[];
}

function devIdOf(entry: unknown): number | undefined {
  return (entry as { devId?: number }).devId;
}

export class KeeperQueues implements HandoffHandler {
  private readonly held = new Map<number, HeldQueue>();

  constructor(
    private readonly channel: KeeperChannel,
    /** The cookies a sweep answers: 1 to this. */
    private readonly sweepBound: number,
    private readonly log: Logger,
  ) {}

  /** The fds held, with how they read: what a keeper that gives up sweeps. */
  fds(): { fd: number; kind: FdKind }[] {
    return [...this.held.values()].map((h) => ({ fd: h.fd, kind: h.kind }));
  }

  async attach(queues: AttachQueue[], fds: number[]): Promise<{ faultId: number; devices: number }[]> {
    const kinds = new Map<number, FdKind>();
    for (const [i, q] of queues.entries()) {
      if (q.fd === null) continue;
      const check = q.emulator ? checkEmulatorFd(fds[q.fd]!) : checkFaultFd(fds[q.fd]!);
      if (!check.ok) throw new HandoffError(`attach.queues[${i}].fd: ${check.why.replace(/^fd \d+/, "the fd sent")}; send the fault queue's fd (IOMMU_FAULT_QUEUE_ALLOC's out_fault_fd)`);
      kinds.set(q.faultId, check.kind);
    }
    const reply = this.settled(await this.channel.request({ v: HANDOFF_VERSION, op: "attach", queues: queues.map(wire) }, fds), "attach");
    if (reply.op !== "attach") throw new HandoffError("the relay answered another request");
    for (const q of queues) {
      const h = this.held.get(q.faultId);
      if (h) h.devices.push(...q.devices);
      else this.held.set(q.faultId, { fd: fds[q.fd!]!, kind: kinds.get(q.faultId)!, emulator: q.emulator, viommu: q.viommu, devices: [...q.devices] });
    }
    return reply.queues;
  }

  async detach(faultId: number, devIds: number[] | null): Promise<{ answered: number; closed: boolean }> {
    const h = this.held.get(faultId);
    if (!h) throw new HandoffError(`detach.faultId: fault ${faultId} was not handed over to this relay (handed over: ${[...this.held.keys()].join(", ") || "none"})`);
    const reply = this.settled(await this.channel.request({ v: HANDOFF_VERSION, op: "detach", faultId, ...(devIds ? { devIds } : {}) }), "detach");
    if (reply.op !== "detach") throw new HandoffError("the relay answered another request");
    if (devIds) h.devices = h.devices.filter((d) => !devIds.includes(devIdOf(d)!));
    if (reply.closed) {
      this.held.delete(faultId);
      libc.close(h.fd);
    }
    return { answered: reply.answered, closed: reply.closed };
  }

  async vmmGone(pid: number): Promise<void> {
    await this.channel.request({ v: HANDOFF_VERSION, op: "drop", vmmPid: pid });
    for (const h of this.held.values()) libc.close(h.fd);
    this.log.level("warn", "the VMM exited: the keeper closed the fault fds it had handed over", { pid, queues: this.held.size });
    this.held.clear();
  }

  /** A relay (re)started: every queue held goes to it again; it sweeps each before reading. */
  async resend(send: (body: object, fds: readonly number[]) => Promise<HandoffReply | null>): Promise<void> {
    for (const [faultId, h] of this.held) {
      const queue = { fd: 0, faultId, devices: h.devices, ...(h.viommu ? { viommu: h.viommu } : {}), ...(h.emulator ? { emulator: true } : {}) };
      const reply = await send({ v: HANDOFF_VERSION, op: "attach", queues: [queue] }, [h.fd]);
      if (!reply?.ok) this.log.level("error", "the restarted relay did not take a fault queue back", { faultId, error: reply && !reply.ok ? reply.error : "it went away" });
    }
  }

  /** Answers what the dead relays may have held on every fd: before the keeper exits without a relay. */
  sweepAll(): void {
    for (const [faultId, h] of this.held) {
      try {
        const { accepted } = sweepCookies(h.fd, h.kind, this.sweepBound);
        this.log("answered SUCCESS to the groups a relay left on a handed-over queue", { faultId, answered: accepted ?? "unknown" });
      } catch (err) {
        this.log.level("error", "could not answer the groups a relay left on a handed-over queue", { faultId, error: (err as Error).message });
      }
    }
  }

  private settled(reply: HandoffReply | null, op: string): Exclude<HandoffReply, { ok: false }> {
    if (reply === null) throw new HandoffError(`the relay went away while carrying out the ${op}; try again once it is back`);
    if (!reply.ok) throw new HandoffError(reply.error);
    return reply;
  }
}

/** A queue as the relay is to get it: the same message, the fd index unchanged. */
function wire(q: AttachQueue): object {
  return { ...(q.fd !== null ? { fd: q.fd } : {}), faultId: q.faultId, devices: q.devices, ...(q.viommu ? { viommu: q.viommu } : {}), ...(q.emulator ? { emulator: true } : {}) };
}
