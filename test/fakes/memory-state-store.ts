// A StateStore in memory, with a switch to make saving fail like a read-only disk.

import {BatonError} from '../../agent/errors.js';
import type {PersistentState, StateStore} from '../../agent/ports.js';

export class MemoryStateStore implements StateStore {
  state: PersistentState | undefined;
  readOnly = false;
  readonly saves: PersistentState[] = [];

  constructor(state?: PersistentState) {
    this.state = state;
  }

  async load(): Promise<PersistentState | undefined> {
    return this.state;
  }

  async save(state: PersistentState): Promise<void> {
    if (this.readOnly) throw new BatonError('STATE_INVALID', 'state directory is read-only (injected)');
    this.state = state;
    this.saves.push(state);
  }
}
