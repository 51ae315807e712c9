// One guest link on one stream: the handshake, heartbeats and resync are the
// GuestLink's; this adds what the agent does with a session: grant credits,
// route each group to its handler under a guard, and answer through the
// batcher, exactly once per group or not at all.
import { GuestLink, GuestLinkHandler, GuestSession } from "../../src/link/guest-link.js";
import type { PageRequestColumns } from "../../src/link/hot-codec.js";
import { pb, WirePageRequest } from "../../src/link/messages.js";
import type { Capabilities } from "../../src/link/negotiation.js";
import type { ResyncTimers } from "../../src/link/resync.js";
import type { ByteStream } from "../../src/link/transport/byte-stream.js";
import { iopf } from "../../src/gen/guest_link.js";
import { answerName, FAILURE, FaultHandler, INVALID, ResponseCode, SUCCESS } from "../handlers/handler.js";
import { answerColumns, GuardedResult, runGuarded } from "../handlers/guard.js";
import { Route, Router } from "../handlers/router.js";
import { Logger } from "../log.js";
import { Counters } from "../stats.js";
import { AnswerBatcher, Pending } from "./answer-batcher.js";

export interface SessionOptions {
  software: string;
  credits: number;
  defaultBudgetUs: number;
  deadlineMarginUs: number;
  capabilities?: Capabilities;
  resyncTimers?: ResyncTimers;
}

export class SessionClient implements GuestLinkHandler {
  readonly link: GuestLink;
  /** Resolves when the stream has closed for good, with its error if it failed. */
  readonly done: Promise<Error | undefined>;
  private readonly batcher: AnswerBatcher;
  private readonly counterNames = new WeakMap<Route, string[]>();
  private resolveDone!: (err: Error | undefined) => void;

  constructor(
    stream: ByteStream,
    private readonly router: Router,
    private readonly options: SessionOptions,
    private readonly log: Logger,
    private readonly counters: Counters,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.link = new GuestLink(stream, this, {
      software: options.software,
      ...(options.capabilities ? { capabilities: options.capabilities } : {}),
      ...(options.resyncTimers ? { resyncTimers: options.resyncTimers } : {}),
    });
    this.batcher = new AnswerBatcher(this.link);
  }

  start(): void {
    this.link.start();
  }

  /** The relay closed this connection because another agent took over: reconnecting at once would take it back. */
  get replaced(): boolean {
    return this.link.peerGoodbye === pb.GoodbyeReason.GOODBYE_REPLACED;
  }

  /** Says goodbye to the relay (if a session is up) and closes the stream once it is written. */
  stop(message: string): void {
    this.link.close(pb.GoodbyeReason.GOODBYE_SHUTDOWN, message);
  }

  sessionUp(session: GuestSession): void {
    const window = Math.min(this.options.credits, session.agreement.limits.maxInFlight);
    this.log.info("session up", { port: this.link.description, epoch: session.epoch, relay: session.relaySoftware, limits: session.agreement.limits, credits: window });
    this.counters.add("sessions");
    this.link.grantCredit(window);
  }

  pageRequests(requests: PageRequestColumns): void {
    for (let i = 0; i < requests.count; i++) {
      this.counters.add("requests");
      const route = this.router.select(requests.endpoint(i), requests.pasidValid(i), requests.pasid(i));
      const handler = route.handler;
      if (handler.handleColumns) {
        // Answered now, from the decoded columns: no request object, no pending entry, no guard timer.
        const answer = answerColumns(handler as Required<FaultHandler>, requests, i);
        let code: ResponseCode;
        if (typeof answer === "number") code = answer;
        else {
          code = answer.code;
          this.report(route, answer, requests.request(i));
        }
        this.batcher.answerNow(requests.tag(i), code);
        this.counters.add(this.answerCounter(route, code));
        continue;
      }
      const req = requests.request(i);
      const pending = this.batcher.hold(req.tag);
      const budgetUs = req.budgetUs > 0 ? req.budgetUs : this.options.defaultBudgetUs;
      const budgetMs = Math.max(0, budgetUs - this.options.deadlineMarginUs) / 1000;
      runGuarded(route.handler, req, budgetMs, pending, (result) => this.settle(pending, req, route, result));
    }
  }

  cancels(tags: number[], reason: iopf.link.v1.CancelReason): void {
    const n = this.batcher.cancel(tags, `cancelled by the relay (${pb.CancelReason[reason] ?? reason})`);
    this.counters.add("cancelled", n);
    this.log.debug("relay cancelled groups", { tags: tags.length, held: n, reason: pb.CancelReason[reason] ?? reason });
  }

  sessionDown(reason: string): void {
    const dropped = this.batcher.dropAll(`the session ended: ${reason}`);
    this.counters.add("dropped.session-ended", dropped);
    this.log.info("session down", { port: this.link.description, reason, unanswered: dropped });
  }

  handshakeRefused(reason: string): void {
    this.log.warn("refused the relay's offer; waiting for a relay that offers something this agent speaks", { reason });
  }

  closed(err?: Error): void {
    this.batcher.dropAll(err ? `the port failed: ${err.message}` : "the port closed");
    this.resolveDone(err);
  }

  private settle(pending: Pending, req: WirePageRequest, route: Route, result: GuardedResult): void {
    // Aborted: cancelled or the session ended; the batcher already forgot it.
    if (result.outcome === "aborted") return;
    if (!this.batcher.answer(pending, result.code)) {
      this.counters.add("dropped.stale");
      return;
    }
    this.counters.add(this.answerCounter(route, result.code));
    if (result.outcome !== "answered") this.report(route, result, req);
  }

  /** A handler that failed: counted and logged; its group was answered INVALID. */
  private report(route: Route, result: GuardedResult, req: WirePageRequest): void {
    this.counters.add(`handler.${result.outcome}`);
    this.log.warn("handler failed; answered INVALID", { handler: route.name, outcome: result.outcome, detail: result.detail, tag: req.tag, endpoint: req.endpoint, pasid: req.pasidValid ? req.pasid : null });
  }

  /** The counter of a route's answers with a code, its name built once per route and code. */
  private answerCounter(route: Route, code: ResponseCode): string {
    let names = this.counterNames.get(route);
    if (!names) {
      names = [SUCCESS, INVALID, FAILURE].map((c) => `answers.${route.name}.${answerName(c)}`);
      this.counterNames.set(route, names);
    }
    return names[code] ?? `answers.${route.name}.${answerName(code)}`;
  }
}
