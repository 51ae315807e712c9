// Collects the answers decided in one turn of the event loop and writes them
// to each source in one call: an FFI call costs microseconds, so never one
// write per answer.
import { AnswerOrigin, FaultGroup, KernelCode } from "../fault/fault-group.js";
import { FaultSource, ResponseEntry } from "../fault/fault-source.js";
import { AnswerSink } from "../fault/ledger.js";
import { RelayMetrics } from "./relay-metrics.js";

/** Sees groups before anything happens to them and answers before they are written: the journal. */
export interface AnswerObserver {
  /** Groups just read, with the wall-clock time by which each must be answered. */
  groupsRead(groups: { group: FaultGroup; deadlineWallMs: number }[]): void;
  beforeWrite(sourceId: number, answers: ResponseEntry[]): void;
  /** The write returned: the source has these answers (or refused some). */
  afterWrite(sourceId: number, answers: ResponseEntry[]): void;
  answered(group: FaultGroup, code: KernelCode, origin: AnswerOrigin): void;
}

export class AnswerWriter implements AnswerSink {
  private readonly pending = new Map<number, ResponseEntry[]>();
  private scheduled = false;

  constructor(
    private readonly sources: Map<number, FaultSource>,
    private readonly metrics: RelayMetrics,
    private readonly observer: AnswerObserver,
    private readonly log: (msg: string, fields: object) => void,
  ) {}

  answer(group: FaultGroup, code: KernelCode, origin: AnswerOrigin): void {
    let list = this.pending.get(group.sourceId);
    if (!list) {
      list = [];
      this.pending.set(group.sourceId, list);
    }
    list.push({ cookie: group.cookie, code });
    const us = (performance.now() - group.readAtMs) * 1000;
    this.metrics.latency.record(us);
    if (origin === "guest") this.metrics.guestLatency.record(us);
    this.metrics.countAnswer(origin, code);
    this.observer.answered(group, code, origin);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Writes everything pending now (also called at shutdown). */
  flush(): void {
    this.scheduled = false;
    for (const [sourceId, answers] of this.pending) {
      this.pending.delete(sourceId);
      const source = this.sources.get(sourceId);
      if (!source) {
        this.log("answers for a source that is gone were dropped", { sourceId, count: answers.length });
        continue;
      }
      this.observer.beforeWrite(sourceId, answers);
      const { refused } = source.writeAnswers(answers);
      this.observer.afterWrite(sourceId, answers);
      if (refused.length > 0) {
        this.metrics.refused += refused.length;
        this.log("the fault source refused answers", { source: source.description, count: refused.length, first: refused[0] });
      }
    }
  }
}
