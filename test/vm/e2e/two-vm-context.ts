// What every scenario of e2e-two-vms.test.ts gets from VM-A's driver, and the
// waits they share.

export interface TwoVmContext {
  /** VM-A's end of the wired port, for --connect chardev:PATH. */
  portPath: string;
}

/** Long enough for a relay restart under TCG with a second VM on the same cores. */
export const DEADLINE_MS = 20_000;
/** For an agent session to come up (again). */
export const SESSION_MS = 60_000;
