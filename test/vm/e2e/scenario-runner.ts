// Runs end-to-end scenarios one after another in one VM boot (TCG boots are
// too slow for one each), on the host or inside a guest, and reports each as
// one JSON line. A scenario collects failed checks instead of throwing, so
// one bad answer does not hide the others; a throw fails it with the stack.
// IOPF_E2E_SCENARIO=name[,name] runs only the scenarios named.
// RESULT_PREFIX and PLAN_PREFIX lines carry a guest's results to the host.

/** The prefix of a scenario's result line on a guest console. */
export const RESULT_PREFIX = "E2E-RESULT ";
/** The prefix of the line, before the first result, listing the scenarios a guest will run (JSON array). */
export const PLAN_PREFIX = "E2E-PLAN ";

export interface ScenarioResult {
  name: string;
  ok: boolean;
  ms: number;
  failures: string[];
  /** What happened, for the test log: counts, origins, timings. */
  notes: string[];
}

export class Checks {
  readonly failures: string[] = [];
  readonly notes: string[] = [];

  /** Records a failure unless ok: "expected <what>, got <got>". */
  expect(ok: boolean, what: string, got?: unknown): void {
    if (!ok) this.failures.push(got === undefined ? `expected ${what}` : `expected ${what}, got ${JSON.stringify(got)}`);
  }

  note(text: string): void {
    this.notes.push(text);
  }
}

export interface Scenario<Ctx> {
  name: string;
  run(ctx: Ctx, checks: Checks): Promise<void>;
}

/**
 * The scenarios IOPF_E2E_SCENARIO names, or all when it is unset. Several
 * test files read it, so a name another file has is not an error here: a
 * file with none of the names runs none and says which names it has.
 */
export function selectedScenarios<Ctx>(all: Scenario<Ctx>[], wanted = process.env.IOPF_E2E_SCENARIO): Scenario<Ctx>[] {
  if (!wanted) return all;
  const names = wanted.split(",").map((n) => n.trim());
  return all.filter((s) => names.includes(s.name));
}

/** Runs each scenario in order; emit gets each result as soon as it is known. */
export async function runScenarios<Ctx>(scenarios: Scenario<Ctx>[], ctx: Ctx, emit: (r: ScenarioResult) => void): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = [];
  for (const s of scenarios) {
    const checks = new Checks();
    const started = Date.now();
    try {
      await s.run(ctx, checks);
    } catch (err) {
      checks.failures.push(`threw: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    }
    const r = { name: s.name, ok: checks.failures.length === 0, ms: Date.now() - started, failures: checks.failures, notes: checks.notes };
    results.push(r);
    emit(r);
  }
  return results;
}

/** One line for a person: "PASS name (1234 ms)", with the failures under a FAIL. */
export function describeResult(r: ScenarioResult): string {
  const head = `${r.ok ? "PASS" : "FAIL"} ${r.name} (${r.ms} ms)`;
  return [head, ...r.failures.map((f) => `    failed: ${f}`), ...r.notes.map((n) => `    ${n}`)].join("\n");
}
