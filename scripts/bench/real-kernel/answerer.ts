// What the guest driver needs of either answering side (the C responder, the
// relay path): to be ready for a run of faults before they are raised, and
// to say when each one's answer reached the kernel.

export interface ArmedRun {
  /**
   * Answer times in microseconds (CLOCK_REALTIME) by PASID, once every fault
   * of the run is answered: every fault's when armed with `each`, else at
   * least the last answer's.
   */
  answered: Promise<Map<number, number>>;
}

export interface Answerer {
  /** Resolves when the answerer is ready for faults with PASIDs pasidBase..pasidBase+count-1; `each`: time every answer. */
  arm(pasidBase: number, count: number, each: boolean): Promise<ArmedRun>;
  /** Stops every process it started; resolves with what it reports at its end (null: nothing), throws if one did not end cleanly. */
  stop(): Promise<unknown>;
}

/** Rejects after ms, naming what was awaited; for a run that would otherwise hang the VM until its timeout. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`expected ${what} within ${ms} ms, but it did not come`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
