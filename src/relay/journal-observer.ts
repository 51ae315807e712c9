// Connects the relay core to the journal: groups are journaled when read,
// answers when about to be written, and the file is compacted to the live
// groups once it grows past its bound.
import { FaultGroup } from "../fault/fault-group.js";
import { ResponseEntry } from "../fault/fault-source.js";
import { Journal } from "../fault/journal.js";
import { AnswerObserver } from "./answer-writer.js";

export function journalObserver(journal: Journal, liveGroups: () => { group: FaultGroup; deadlineWallMs: number }[]): AnswerObserver {
  return {
    groupsRead: (groups) => journal.recordRead(groups),
    beforeWrite: (sourceId: number, answers: ResponseEntry[]) => {
      journal.recordAnswering(answers.map((a) => ({ sourceId, cookie: a.cookie })));
    },
    afterWrite: (sourceId: number, answers: ResponseEntry[]) => {
      journal.recordAnswered(answers.map((a) => ({ sourceId, cookie: a.cookie })));
      if (journal.needsCompaction) journal.compact(liveGroups());
    },
    answered: () => undefined,
  };
}
