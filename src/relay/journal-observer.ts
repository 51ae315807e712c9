// Connects the relay core to the journal: answers are journaled when about
// to be written and once written, and the file is compacted once it grows
// past its bound. Reads are not journaled here: the pump's worker journals
// each read() itself before the core sees its records, so a crash cannot
// fall between a read and its record.
import { ResponseEntry } from "../fault/fault-source.js";
import { Journal, PauseAppenders } from "../fault/journal.js";
import { AnswerObserver } from "./answer-writer.js";
import { Logger } from "./log.js";

export function journalObserver(journal: Journal, pauseReads: PauseAppenders, log: Logger): AnswerObserver {
  const cookies = (answers: ResponseEntry[]): number[] => answers.map((a) => a.cookie);
  return {
    groupsRead: () => undefined,
    beforeWrite: (sourceId, answers) => {
      // An in-process source dies with the relay, and its groups with it: nothing to journal.
      if (journal.covers(sourceId)) journal.recordAnswering(sourceId, cookies(answers));
    },
    afterWrite: (sourceId, answers) => {
      if (journal.covers(sourceId)) journal.recordAnswered(sourceId, cookies(answers));
      if (!journal.needsCompaction) return;
      journal.compact(pauseReads).then(
        (report) => log.level("debug", "journal compacted", report),
        (err: Error) => log.level("error", "journal compaction failed; the journal keeps growing until the next try", { path: journal.path, error: err.message }),
      );
    },
    answered: () => undefined,
  };
}
