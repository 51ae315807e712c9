// What a relay restarted with the same fault fds does before its first read:
// replay the journal; answer INVALID every cookie whose answer may or may not
// have been written (a duplicate then gets EINVAL, harmless: no cookie can
// have been reused, since nothing has read since); and keep the groups
// certainly unanswered, and the bytes read but not yet whole groups, for the
// pump and the core. Only fds that outlive a relay are journaled: the
// inherited ones. A built-in emulator or an iommufd the relay opened itself
// dies with it, and so do their groups.
import { FaultQueue } from "../kernel/fault-queue.js";
import { KernelCode } from "../fault/fault-group.js";
import { Journal, PauseAppenders } from "../fault/journal.js";
import { RecoveredGroup } from "../fault/journal-replay.js";
import { Logger } from "./log.js";

/** What the daemon needs of the journal: it, the groups to forward again, and how to pause the pump for a compaction. */
export interface OpenedJournal {
  journal: Journal;
  pending: RecoveredGroup[];
  pauseReads: PauseAppenders;
}

/** An open journal and what a previous run left in it. */
export interface RecoveredJournal {
  journal: Journal;
  /** Groups read by a previous run and never answered: the core forwards them again while their deadline allows. */
  pending: RecoveredGroup[];
  /** Per fd, bytes a previous run read but that form no whole group yet: the pump hands them out first. */
  carry: Map<number, Buffer>;
}

export interface RecoveryReport {
  pending: number;
  reanswered: number;
  refusedAsAlreadyAnswered: number;
  unknownSource: number;
  tornBytes: number;
  carriedBytes: number;
}

/** Opens the journal for the inherited fault fds and settles the answers in doubt; before the pump reads. */
export function recoverJournal(path: string, fds: readonly number[], log: Logger): RecoveredJournal {
  const { journal, recovered } = Journal.open(path, fds);
  let reanswered = 0;
  let refused = 0;
  const byFd = new Map<number, number[]>();
  for (const a of recovered.inDoubt) byFd.set(a.sourceId, [...(byFd.get(a.sourceId) ?? []), a.cookie]);
  for (const [fd, cookies] of byFd) {
    const queue = new FaultQueue(fd);
    const result = queue.writeAnswers(cookies.map((cookie) => ({ cookie, code: KernelCode.INVALID })));
    queue.dispose();
    refused += result.rejected.length;
    reanswered += cookies.length - result.rejected.length;
    journal.recordAnswered(fd, cookies);
  }
  const report: RecoveryReport = {
    pending: recovered.pending.length, reanswered, refusedAsAlreadyAnswered: refused, unknownSource: recovered.unknownSource,
    tornBytes: recovered.tornBytes, carriedBytes: [...recovered.carry.values()].reduce((n, b) => n + b.length, 0),
  };
  log("journal replayed", { path, ...report });
  return { journal, pending: recovered.pending, carry: recovered.carry };
}
