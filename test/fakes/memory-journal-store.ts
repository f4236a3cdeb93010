// A JournalStore in memory, keeping every version saved so tests can see what was written before each step.
// It can be made read-only, at once or from the first save that matches, to play a state_dir whose filesystem
// was remounted read-only: every later save and clear then fails as the file store would (EROFS).

import type {JournalStore, SwitchJournal} from '../../agent/ports.js';

export class MemoryJournalStore implements JournalStore {
  journal: SwitchJournal | undefined;
  readonly history: SwitchJournal[] = [];
  /** While set, save and clear throw EROFS. */
  readOnly = false;
  /** When set, the first save it matches succeeds and then makes the store read-only. */
  readOnlyAfter: ((journal: SwitchJournal) => boolean) | undefined;

  async load(): Promise<SwitchJournal | undefined> {
    return this.journal;
  }

  async save(journal: SwitchJournal): Promise<void> {
    this.#failIfReadOnly('open', 'switch.json.tmp');
    this.journal = journal;
    this.history.push(journal);
    if (this.readOnlyAfter?.(journal) === true) {
      this.readOnly = true;
      this.readOnlyAfter = undefined;
    }
  }

  async clear(): Promise<void> {
    this.#failIfReadOnly('unlink', 'switch.json');
    this.journal = undefined;
  }

  #failIfReadOnly(syscall: string, file: string): void {
    if (!this.readOnly) return;
    throw Object.assign(new Error(`EROFS: read-only file system, ${syscall} '/var/lib/baton/${file}'`), {code: 'EROFS', syscall});
  }
}
