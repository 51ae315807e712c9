// The fault queues a VMM handed over, as the relay serves them: what attach
// and detach do (docs/handoff.md). An attach is checked whole before
// anything changes; a detach answers what the relay holds of the devices
// before it returns (the reply goes out after), so that the VMM's own
// detach, which follows, finds nothing of theirs left for the relay to
// answer.
import { FaultSource } from "../../fault/fault-source.js";
import { FdSourceSet } from "../../fault/sources/fd-sources.js";
import { checkEmulatorFd, checkFaultFd } from "../../kernel/fd-kind.js";
import * as libc from "../../kernel/libc.js";
import { DeviceMapConfigError } from "../../viommu/config-problem.js";
import { parseDeviceMap } from "../../viommu/device-config.js";
import type { DeviceEntry } from "../../viommu/device-map.js";
import { GuestDevices } from "../../viommu/guest-devices.js";
import { Logger } from "../log.js";
import { RelayCore } from "../relay-core.js";
import { AttachQueue, HandoffError } from "./handoff-message.js";
import { HandoffHandler } from "./handoff-server.js";

interface HandedQueue {
  faultId: number;
  fd: number;
  source: FaultSource;
  devIds: Set<number>;
}

export interface HandedQueuesOptions {
  core: RelayCore<unknown>;
  devices: GuestDevices;
  /** The pump the queues' fds are read by. */
  fds: FdSourceSet;
  log: Logger;
}

export class HandedQueues implements HandoffHandler {
  private readonly queues = new Map<number, HandedQueue>();

  constructor(private readonly o: HandedQueuesOptions) {}

  /** The devices handed over, on every queue. */
  devIds(): Set<number> {
    return new Set([...this.queues.values()].flatMap((q) => [...q.devIds]));
  }

  /** Every queue handed over, for status. */
  list(): { faultId: number; fd: number; devIds: number[] }[] {
    return [...this.queues.values()].map((q) => ({ faultId: q.faultId, fd: q.fd, devIds: [...q.devIds] }));
  }

  async attach(queues: AttachQueue[], fds: number[]): Promise<{ faultId: number; devices: number }[]> {
    const map = this.o.devices.map;
    const added: { queue: AttachQueue; entries: DeviceEntry[]; fd: number | null; kind: "kernel" | "stream" }[] = [];
    const mapped = new Set(map.entries.map((e) => e.devId));
    const newDevIds = new Set<number>();
    const usedEndpoints = new Map(map.entries.map((e) => [e.endpoint, e.devId]));
    for (const [i, q] of queues.entries()) {
      const where = `attach.queues[${i}]`;
      if (q.viommu !== null && q.viommu !== map.viommu) {
        throw new HandoffError(`${where}.viommu: this relay shows the guest a ${map.viommu}, not a ${q.viommu}; start the VM's relay with the model its guest has`);
      }
      const existing = this.queues.get(q.faultId);
      let fd: number | null = null;
      let kind: "kernel" | "stream" = "kernel";
      if (q.fd !== null) {
        if (existing) throw new HandoffError(`${where}.faultId: fault ${q.faultId} was handed over already; to add devices, attach without an fd`);
        fd = fds[q.fd]!;
        const check = q.emulator ? checkEmulatorFd(fd) : checkFaultFd(fd);
        if (!check.ok) throw new HandoffError(`${where}.fd: ${check.why.replace(/^fd \d+/, "the fd sent")}; send the fault queue's fd (IOMMU_FAULT_QUEUE_ALLOC's out_fault_fd)`);
        kind = check.kind;
      } else if (!existing) {
        throw new HandoffError(`${where}: fault ${q.faultId} has not been handed over; send its fd with the first attach`);
      }
      let entries: DeviceEntry[];
      try {
        entries = [...parseDeviceMap({ viommu: map.viommu, devices: q.devices }).entries];
      } catch (err) {
        if (err instanceof DeviceMapConfigError) throw new HandoffError(err.problems.map((p) => `${where}.${p.path}: ${p.message}`).join("; "));
        throw err;
      }
      const mine = new Set(entries.map((e) => e.devId));
      for (const d of mine) {
        if (mapped.has(d) || newDevIds.has(d)) throw new HandoffError(`${where}.devices: device ${d} is in the relay's map already; detach it first`);
      }
      for (const e of entries) {
        const holder = usedEndpoints.get(e.endpoint);
        if (holder !== undefined && holder !== e.devId) throw new HandoffError(`${where}.devices: guest endpoint ${e.endpoint} of device ${e.devId} is device ${holder}'s already`);
        usedEndpoints.set(e.endpoint, e.devId);
      }
      for (const d of mine) newDevIds.add(d);
      added.push({ queue: q, entries, fd, kind });
    }
    // Checked: now change things. Devices first, so that the queue's first groups resolve.
    this.o.devices.replace(map.with(added.flatMap((a) => a.entries)));
    const result: { faultId: number; devices: number }[] = [];
    for (const a of added) {
      let q = this.queues.get(a.queue.faultId);
      if (!q) {
        const source = this.o.fds.add({ fd: a.fd!, kind: a.kind, description: `handoff fault ${a.queue.faultId} (fd ${a.fd})`, sweep: true });
        q = { faultId: a.queue.faultId, fd: a.fd!, source, devIds: new Set() };
        this.queues.set(q.faultId, q);
        this.o.core.addSource(source);
      }
      for (const e of a.entries) q.devIds.add(e.devId);
      result.push({ faultId: q.faultId, devices: q.devIds.size });
      this.o.log("fault queue handed over", { faultId: q.faultId, fd: q.fd, devices: [...q.devIds] });
    }
    return result;
  }

  async detach(faultId: number, devIds: number[] | null): Promise<{ answered: number; closed: boolean }> {
    const q = this.queues.get(faultId);
    if (!q) throw new HandoffError(`detach.faultId: fault ${faultId} was not handed over to this relay (handed over: ${[...this.queues.keys()].join(", ") || "none"})`);
    const unknown = (devIds ?? []).filter((d) => !q.devIds.has(d));
    if (unknown.length > 0) throw new HandoffError(`detach.devIds: device${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} not on fault ${faultId} (its devices: ${[...q.devIds].join(", ")})`);
    const gone = new Set(devIds ?? q.devIds);
    // Out of the map first: a group of theirs read from now on is answered INVALID at once.
    this.o.devices.replace(this.o.devices.map.without(gone));
    let answered = 0;
    for (const devId of gone) {
      answered += this.o.core.removeDevice(devId);
      q.devIds.delete(devId);
    }
    this.o.core.flushAnswers();
    if (devIds !== null) {
      this.o.log("devices detached from a handed-over fault queue", { faultId, devices: [...gone], answered });
      return { answered, closed: false };
    }
    answered += await this.o.core.removeSource(q.source, "answer");
    await this.release(q);
    this.o.log("fault queue detached and closed", { faultId, answered });
    return { answered, closed: true };
  }

  async vmmGone(pid: number): Promise<void> {
    for (const q of [...this.queues.values()]) {
      this.o.devices.replace(this.o.devices.map.without(q.devIds));
      const dropped = await this.o.core.removeSource(q.source, "drop");
      await this.release(q);
      this.o.log.level("warn", "let go of a fault queue of a VMM that exited: the kernel answered its groups", { pid, faultId: q.faultId, dropped });
    }
  }

  private async release(q: HandedQueue): Promise<void> {
    this.queues.delete(q.faultId);
    const unsent = await this.o.fds.release(q.source);
    if (unsent > 0) this.o.log.level("error", "answers to a detached fault queue could not be written", { faultId: q.faultId, unsent });
    libc.close(q.fd);
  }
}
