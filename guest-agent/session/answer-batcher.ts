// Exactly one answer per request, or none: each request the host sends
// becomes a Pending entry; an answer counts only while its own entry is the
// one held for its tag. A cancel or a session end removes entries, so a late
// answer of an old session can never be sent as the answer of a new request
// that reuses the tag. Answers completing in the same event-loop turn leave
// together, in one PAGE_RESPONSES frame, when the turn's I/O is done.
import type { Cancellable } from "../handlers/guard.js";
import { ResponseCode } from "../handlers/handler.js";

/**
 * One held request. Its abort signal is made on first use: most answers come
 * in the turn that asked, before anything listens, and a controller per group
 * showed in the profile.
 */
export class Pending implements Cancellable {
  private controller: AbortController | null = null;
  private reason: string | null = null;

  constructor(readonly tag: number) {}

  get cancelReason(): string | null {
    return this.reason;
  }

  /** Aborted when the answer is no longer wanted (cancel, session end, close). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason !== null) this.controller.abort(new Error(this.reason));
    }
    return this.controller.signal;
  }

  abort(reason: string): void {
    if (this.reason !== null) return;
    this.reason = reason;
    this.controller?.abort(new Error(reason));
  }
}

export interface ResponseSink {
  /** Answers tags[i] with codes[i]; returns how many were sent. */
  sendResponses(tags: number[], codes: ResponseCode[]): number;
}

export class AnswerBatcher {
  private readonly pending = new Map<number, Pending>();
  private readonly batch = new Map<number, ResponseCode>();
  private flushScheduled = false;

  constructor(private readonly sink: ResponseSink) {}

  get inFlight(): number {
    return this.pending.size;
  }

  /** Starts holding a request; the caller answers through answer(). */
  hold(tag: number): Pending {
    // The link refuses a tag it still holds, so no live entry is replaced here.
    const p = new Pending(tag);
    this.pending.set(tag, p);
    return p;
  }

  /** Queues p's answer; returns false (and queues nothing) when p is no longer held. */
  answer(p: Pending, code: ResponseCode): boolean {
    if (this.pending.get(p.tag) !== p) return false;
    this.pending.delete(p.tag);
    this.answerNow(p.tag, code);
    return true;
  }

  /**
   * Queues the answer of a request answered in the turn it arrived, which
   * was never held here: nothing could have cancelled it yet, and a cancel
   * or session end before the frame leaves withdraws it like any other.
   */
  answerNow(tag: number, code: ResponseCode): void {
    this.batch.set(tag, code);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** The host answered these itself: stop their work and never answer them. Returns how many were held. */
  cancel(tags: number[], reason: string): number {
    let n = 0;
    for (const tag of tags) {
      this.batch.delete(tag);
      const p = this.pending.get(tag);
      if (!p) continue;
      this.pending.delete(tag);
      p.abort(reason);
      n++;
    }
    return n;
  }

  /** The session ended: nothing held or queued may be answered any more. */
  dropAll(reason: string): number {
    const n = this.pending.size + this.batch.size;
    this.batch.clear();
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.abort(reason);
    return n;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.batch.size === 0) return;
    const tags: number[] = [], codes: ResponseCode[] = [];
    this.batch.forEach((code, tag) => {
      tags.push(tag);
      codes.push(code);
    });
    this.batch.clear();
    this.sink.sendResponses(tags, codes);
  }
}
