// A JournalStore in memory, keeping every version saved so tests can see what was written before each step.

import type {JournalStore, SwitchJournal} from '../../agent/ports.js';

export class MemoryJournalStore implements JournalStore {
  journal: SwitchJournal | undefined;
  readonly history: SwitchJournal[] = [];

  async load(): Promise<SwitchJournal | undefined> {
    return this.journal;
  }

  async save(journal: SwitchJournal): Promise<void> {
    this.journal = journal;
    this.history.push(journal);
  }

  async clear(): Promise<void> {
    this.journal = undefined;
  }
}
