// Writes the ledger's answers: collects those decided in one turn of the
// event loop and writes them to each source in one call (an FFI call costs
// microseconds, so never one write per answer). An answer counts as written,
// and its group as no longer held, only once its source took it; one whose
// group the kernel ended meanwhile (its cookie was read again) is never
// written.
import { AnswerOrigin, FaultGroup, KernelCode } from "../fault/fault-group.js";
import { FaultSource } from "../fault/fault-source.js";
import { failpoint } from "../kernel/failpoint.js";
import { AnswerSink, Ledger, LedgerEntry } from "../fault/ledger.js";
import { EndReason } from "../fault/fault-group.js";
import { RelayMetrics } from "./relay-metrics.js";

export interface WriterEvents {
  /** An answer reached its source (written or queued for a full stream). */
  answered(group: FaultGroup, code: KernelCode, origin: AnswerOrigin): void;
  /** A group ended with no answer written. */
  ended(group: FaultGroup, reason: EndReason): void;
  /** A source went away while answers were written to it. */
  sourceGone(source: FaultSource, err: Error, unsent: number): void;
  log(msg: string, fields: object): void;
}

export class AnswerWriter implements AnswerSink {
  private readonly pending = new Map<number, LedgerEntry[]>();
  private scheduled = false;
  /** Set once the ledger exists: the ledger and its writer point at each other. */
  ledger: Ledger | null = null;

  constructor(
    private readonly sources: Map<number, FaultSource>,
    private readonly metrics: RelayMetrics,
    private readonly events: WriterEvents,
  ) {}

  answer(entry: LedgerEntry): void {
    let list = this.pending.get(entry.group.sourceId);
    if (!list) {
      list = [];
      this.pending.set(entry.group.sourceId, list);
    }
    list.push(entry);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  ended(entry: LedgerEntry, reason: EndReason): void {
    this.metrics.countEnd(reason);
    this.sources.get(entry.group.sourceId)?.forget(1);
    this.events.ended(entry.group, reason);
  }

  /** Writes everything pending now (also called at shutdown). */
  flush(): void {
    this.scheduled = false;
    for (const [sourceId, all] of this.pending) {
      this.pending.delete(sourceId);
      const entries = all.filter((e) => e.state === "answering");
      if (entries.length === 0) continue;
      const source = this.sources.get(sourceId);
      if (!source) {
        this.events.log("answers for a source that is gone were dropped", { sourceId, count: entries.length });
        for (const e of entries) this.ledger?.written(e);
        continue;
      }
      failpoint("writer-before-write");
      const outcome = source.writeAnswers(entries.map((e) => ({ cookie: e.group.cookie, code: e.code })));
      failpoint("writer-after-write");
      const refused = new Set(outcome.refused.map((r) => r.cookie));
      // With the source gone, the answers past those it took or queued went nowhere.
      const reached = outcome.gone ? outcome.written + outcome.refused.length + outcome.queued : entries.length;
      const now = performance.now();
      entries.forEach((e, i) => {
        this.ledger?.written(e);
        if (i >= reached) return;
        if (refused.has(e.group.cookie)) {
          // The kernel had answered it already (a detach or replace): its answer, not ours, ended the group.
          this.metrics.countEnd("kernel-ended");
          this.events.ended(e.group, "kernel-ended");
          return;
        }
        const us = (now - e.group.readAtMs) * 1000;
        this.metrics.latency.record(us);
        if (e.origin === "guest") this.metrics.guestLatency.record(us);
        this.metrics.countAnswer(e.origin!, e.code);
        this.events.answered(e.group, e.code, e.origin!);
      });
      if (refused.size > 0) {
        this.metrics.refused += refused.size;
        this.events.log("the fault source refused answers (the kernel answered those groups itself, at a detach)", { source: source.description, count: refused.size, first: outcome.refused[0] });
      }
      if (outcome.gone) {
        const unsent = entries.length - reached;
        source.forget(unsent);
        this.events.sourceGone(source, outcome.gone, unsent);
      }
    }
  }
}
