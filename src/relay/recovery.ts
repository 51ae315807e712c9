// What a relay restarted with the same fault fds does before its first read:
// answer INVALID every cookie whose answer may or may not have been written
// (a duplicate then gets EINVAL, harmless: no cookie can have been reused,
// since nothing has read since), and hand the certainly-unanswered groups to
// the core, which forwards them again while their deadline allows.
import { FaultSource } from "../fault/fault-source.js";
import { JournalContents } from "../fault/journal-format.js";
import { KernelCode } from "../fault/fault-group.js";

export interface RecoveryReport {
  reanswered: number;
  refusedAsAlreadyAnswered: number;
  readopted: number;
  unknownSource: number;
}

export function answerMaybeAnswered(recovered: JournalContents, sources: Map<number, FaultSource>): Omit<RecoveryReport, "readopted"> {
  const bySource = new Map<number, number[]>();
  let unknownSource = 0;
  for (const a of recovered.maybeAnswered) {
    if (!sources.has(a.sourceId)) {
      unknownSource++;
      continue;
    }
    const list = bySource.get(a.sourceId) ?? [];
    list.push(a.cookie);
    bySource.set(a.sourceId, list);
  }
  let reanswered = 0;
  let refused = 0;
  for (const [id, cookies] of bySource) {
    const outcome = (sources.get(id) as FaultSource).writeAnswers(cookies.map((cookie) => ({ cookie, code: KernelCode.INVALID })));
    refused += outcome.refused.length;
    reanswered += cookies.length - outcome.refused.length;
  }
  return { reanswered, refusedAsAlreadyAnswered: refused, unknownSource };
}
