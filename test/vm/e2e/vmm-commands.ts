// What the handoff-hotplug scenario asks of the VMM stand-in (vmm-stand-in.ts),
// a guest program in VM-A, over its stdin and stdout (control-channel.ts).

/** Where e2e-two-vms.test.ts puts the compiled reference client (scripts/handoff/iopf-handoff.c) in VM-A. */
export const GUEST_HANDOFF_CLIENT = "/job/iopf-handoff";

/** The relay's reply to a request the C client sent, as the client printed it. */
export type RelayReply = Record<string, unknown> & { ok: boolean };

export type VmmCommands = {
  /**
   * A new fault queue and a mock device whose HWPT names it, handed over to
   * the relay with the C client (attach, with this process as the VMM).
   */
  plug: { args: { endpointId: number; name: string; deadlineMs: number }; result: { faultId: number; devId: number; reply: RelayReply } };
  /** Faults of the device, each a group of one, at addresses a page apart from addr. */
  raise: { args: { devId: number; pasid: number; perm: number; addr: number; count: number }; result: Record<string, never> };
  /** The detach handshake with the C client, for the device or (whole) for its whole queue: the relay's reply. */
  handshake: { args: { devId: number; whole: boolean }; result: RelayReply };
  /** The VMM's own detach, once the handshake is done: the device leaves the HWPT that names its fault queue. */
  unplug: { args: { devId: number }; result: Record<string, never> };
  /**
   * Once the relay let go of the queue: INVALID to every cookie from 1 to
   * its peak (the groups raised on it: the kernel gives each group read the
   * lowest free cookie) through this process's copy of the fault fd, then
   * the device, its HWPTs and the fault object destroyed. How many writes
   * the kernel refused (EINVAL: answered already) and took.
   */
  "close-queue": { args: { devId: number }; result: { peak: number; refused: number; accepted: number; other: string[] } };
};
