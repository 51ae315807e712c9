// Runs one handler on one group so that nothing it does can stop the agent
// or leave the group unanswered: a throw, a rejected promise, an answer that
// is not a response code, or running past the group's budget all become
// INVALID, with an outcome the caller counts and logs.
import { WirePageRequest } from "../../src/link/messages.js";
import { FaultHandler, INVALID, isResponseCode, ResponseCode } from "./handler.js";

export type Outcome = "answered" | "threw" | "bad-answer" | "overran" | "aborted";

export interface GuardedResult {
  code: ResponseCode;
  outcome: Outcome;
  /** Why the outcome is not "answered", for the log. */
  detail?: string;
}

/**
 * Calls handler.handle and reports exactly once through done: with the
 * handler's code, with INVALID when it failed or overran budgetMs, or with
 * outcome "aborted" when `cancel` fired first (the answer is then unwanted).
 */
export function runGuarded(
  handler: FaultHandler,
  request: WirePageRequest,
  budgetMs: number,
  cancel: AbortSignal,
  done: (result: GuardedResult) => void,
): void {
  const inner = new AbortController();
  let settled = false;
  const finish = (result: GuardedResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    cancel.removeEventListener("abort", onCancel);
    // Tell a handler still working (an app, a pending read) to stop.
    if (!inner.signal.aborted) inner.abort(new Error(result.detail ?? "answered"));
    done(result);
  };
  const onCancel = (): void => finish({ code: INVALID, outcome: "aborted", detail: String(cancel.reason ?? "cancelled") });
  const timer = setTimeout(() => finish({ code: INVALID, outcome: "overran", detail: `no answer within the budget of ${budgetMs.toFixed(1)} ms` }), budgetMs);
  if (cancel.aborted) return onCancel();
  cancel.addEventListener("abort", onCancel, { once: true });

  const accept = (code: unknown): void => {
    if (isResponseCode(code)) finish({ code, outcome: "answered" });
    else finish({ code: INVALID, outcome: "bad-answer", detail: `the handler returned ${JSON.stringify(code)}, expected a response code 0, 1 or 2` });
  };
  const reject = (err: unknown): void => {
    finish({ code: INVALID, outcome: "threw", detail: err instanceof Error ? err.message : String(err) });
  };
  try {
    const answer = handler.handle(request, { signal: inner.signal });
    if (isThenable(answer)) answer.then(accept, reject);
    else accept(answer);
  } catch (err) {
    reject(err);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === "function";
}
