// Runs one handler on one group so that nothing it does can stop the agent
// or leave the group unanswered: a throw, a rejected promise, an answer that
// is not a response code, or running past the group's budget all become
// INVALID, with an outcome the caller counts and logs.
import type { PageRequestColumns } from "../../src/link/hot-codec.js";
import { WirePageRequest } from "../../src/link/messages.js";
import { FaultHandler, INVALID, isResponseCode, ResponseCode } from "./handler.js";

/** What tells runGuarded the answer is no longer wanted; its signal is read only by a pending answer. */
export interface Cancellable {
  /** Why the answer is no longer wanted, or null while it is. */
  readonly cancelReason: string | null;
  /** Aborts on cancel. */
  readonly signal: AbortSignal;
}

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
  cancel: Cancellable,
  done: (result: GuardedResult) => void,
): void {
  if (cancel.cancelReason !== null) return done({ code: INVALID, outcome: "aborted", detail: cancel.cancelReason });
  // The handler's own signal exists only if it asks for it: most handlers
  // answer at once, and a controller per group showed in the profile.
  let inner: AbortController | null = null;
  const context = {
    get signal(): AbortSignal {
      inner ??= new AbortController();
      return inner.signal;
    },
  };
  let answer: unknown;
  try {
    answer = handler.handle(request, context);
  } catch (err) {
    return done(threwResult(err));
  }
  // A synchronous answer needs no timer, no listener and nothing to abort.
  if (!isThenable(answer)) return done(checked(answer));

  let settled = false;
  const finish = (result: GuardedResult): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    signal.removeEventListener("abort", onCancel);
    // Tell a handler still working (an app, a pending read) to stop.
    if (inner && !inner.signal.aborted) inner.abort(result.detail ?? "answered");
    done(result);
  };
  const signal = cancel.signal;
  const onCancel = (): void => finish({ code: INVALID, outcome: "aborted", detail: cancel.cancelReason ?? "cancelled" });
  const timer = setTimeout(() => finish({ code: INVALID, outcome: "overran", detail: `no answer within the budget of ${budgetMs.toFixed(1)} ms` }), budgetMs);
  signal.addEventListener("abort", onCancel, { once: true });
  answer.then((code) => finish(checked(code)), (err) => finish(threwResult(err)));
}

/**
 * A handler's synchronous answer for request i of a decoded batch
 * (handleColumns): its code; or, when it threw or returned no response
 * code, the INVALID result with its outcome. Nothing is allocated when it
 * answers.
 */
export function answerColumns(handler: Required<Pick<FaultHandler, "handleColumns">>, requests: PageRequestColumns, i: number): ResponseCode | GuardedResult {
  let answer: unknown;
  try {
    answer = handler.handleColumns(requests, i);
  } catch (err) {
    return threwResult(err);
  }
  return isResponseCode(answer) ? answer : checked(answer);
}

function checked(code: unknown): GuardedResult {
  if (isResponseCode(code)) return { code, outcome: "answered" };
  return { code: INVALID, outcome: "bad-answer", detail: `the handler returned ${JSON.stringify(code)}, expected a response code 0, 1 or 2` };
}

function threwResult(err: unknown): GuardedResult {
  return { code: INVALID, outcome: "threw", detail: err instanceof Error ? err.message : String(err) };
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as PromiseLike<unknown> | null)?.then === "function";
}
