// StateStore in a JSON file under state_dir: write a temp file, fsync it, rename over the old one, fsync the
// directory, so a crash at any moment leaves either the old or the new state, never half of one.

import {mkdir, open, readFile, rename} from 'node:fs/promises';
import {dirname, join} from 'node:path';
import {BatonError, describeError} from '../errors.js';
import type {PersistentState, StateStore} from '../ports.js';

export function createFileStateStore(stateDir: string, fileName = 'state.json'): StateStore {
  const file = join(stateDir, fileName);
  return {
    async load() {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw new BatonError('STATE_INVALID', `cannot read ${file}: ${describeError(error)}`, {cause: error});
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        throw new BatonError('STATE_INVALID', `${file} is corrupt (not JSON); move it aside to start afresh`, {cause: error});
      }
      const epoch = (value as {epoch?: unknown} | null)?.epoch;
      if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
        throw new BatonError('STATE_INVALID', `${file}: epoch: expected a non-negative integer, got ${JSON.stringify(epoch)}`);
      }
      return {epoch};
    },
    async save(state) {
      await mkdir(dirname(file), {recursive: true, mode: 0o700});
      const temp = `${file}.${process.pid}.tmp`;
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify(state satisfies PersistentState)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, file);
      const dir = await open(dirname(file), 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    },
  };
}
