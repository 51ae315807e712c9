// Guest side (VM-A): the figures handoff-hotplug prints for each of its
// steps, from the kernel's side: groups raised; groups answered, the calls of
// iopf_group_response() the step made (kernel-responses.ts: one per group,
// whoever answered it: the relay, its sweep, or the kernel itself at a
// detach); and answers refused, EINVAL for the relay's writes (its
// counters) and for the writes of an INVALID pass. Every step must answer
// exactly the groups it raised.
import type { RelayStatus } from "../../../src/relay/control/status.js";
import type { KernelResponseCounter } from "./kernel-responses.js";
import type { Checks } from "./scenario-runner.js";

export interface StepFigures {
  step: string;
  raised: number;
  answered: number;
  refused: number;
}

export class KernelTally {
  readonly steps: StepFigures[] = [];
  private raisedInStep = 0;
  private countAtStepStart = 0;
  /** The relay's own count of refused answers at the last look, by relay process (a restarted one counts from 0). */
  private relayRefused = { pid: 0, refused: 0 };

  constructor(private readonly counter: KernelResponseCounter, private readonly c: Checks) {
    this.countAtStepStart = counter.count();
  }

  /** The kernel's answers so far in this step. */
  get answered(): number {
    return this.counter.count() - this.countAtStepStart;
  }

  raised(groups: number): void {
    this.raisedInStep += groups;
  }

  /** Waits until the kernel has answered at least `groups` in this step; fails naming what was awaited. */
  async awaitAnswered(groups: number, what: string, timeoutMs: number): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (this.answered < groups) {
      if (Date.now() > until) throw new Error(`expected the kernel to answer ${groups} groups (${what}) within ${timeoutMs} ms; it answered ${this.answered}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Answers the relay wrote and the kernel refused since the last look; each is a failure (a group answered twice, or by someone else). */
  refusedByKernel(status: RelayStatus): number {
    const before = status.pid === this.relayRefused.pid ? this.relayRefused.refused : 0;
    this.relayRefused = { pid: status.pid, refused: status.counters.refused };
    const refused = status.counters.refused - before;
    this.c.expect(refused === 0, `the kernel to refuse none of the relay's answers in step ${this.steps.length + 1}`, refused);
    return refused;
  }

  /** Ends the step: notes its figures (and what else happened) and checks it answered each group it raised once. */
  end(step: string, refused: number, detail = ""): StepFigures {
    const figures = { step, raised: this.raisedInStep, answered: this.answered, refused };
    this.steps.push(figures);
    this.c.note(`step ${this.steps.length}: ${step}: raised ${figures.raised}, answered ${figures.answered}, refused ${refused}${detail ? `; ${detail}` : ""}`);
    this.c.expect(figures.answered === figures.raised, `step ${this.steps.length} (${step}): the kernel to answer each group raised once: ${figures.raised}`, figures.answered);
    this.countAtStepStart += figures.answered;
    this.raisedInStep = 0;
    return figures;
  }
}
