// Durable JSON files under state_dir: the epoch (state.json) and the switch journal (switch.json). Each write
// goes to a temp file, is fsynced, renamed over the old one, and the directory fsynced, so a crash at any
// moment leaves either the old or the new content, never half of one. The temp file such a crash leaves behind
// is removed by the next agent's first load.

import {mkdir, open, readdir, readFile, rename, unlink} from 'node:fs/promises';
import {basename, dirname, join} from 'node:path';
import {EPOCH_EXPECTED, isEpoch} from '../epoch.js';
import {BatonError, describeError} from '../errors.js';
import type {JournalStore, PersistentState, StateStore, SwitchJournal} from '../ports.js';

export function createFileStateStore(stateDir: string): StateStore {
  const file = join(stateDir, 'state.json');
  return {
    async load() {
      await removeStaleTemps(file);
      const value = await readJson(file);
      if (value === undefined) return undefined;
      const {epoch, released} = (value ?? {}) as {epoch?: unknown; released?: unknown};
      if (!isEpoch(epoch)) throw new BatonError('STATE_INVALID', `${file}: epoch: expected ${EPOCH_EXPECTED}, got ${JSON.stringify(epoch)}; move the file aside to start afresh`);
      if (released !== undefined && typeof released !== 'boolean') throw new BatonError('STATE_INVALID', `${file}: released: expected true or false, got ${JSON.stringify(released)}`);
      return {epoch, released: released === true};
    },
    save: (state: PersistentState) => writeJsonAtomic(file, state),
  };
}

export function createFileJournalStore(stateDir: string): JournalStore {
  const file = join(stateDir, 'switch.json');
  return {
    async load() {
      await removeStaleTemps(file);
      const value = await readJson(file);
      if (value === undefined) return undefined;
      const journal = parseJournal(value);
      if (typeof journal === 'string') throw new BatonError('STATE_INVALID', `${file}: ${journal}; move the file aside to start afresh`);
      return journal;
    },
    save: (journal: SwitchJournal) => writeJsonAtomic(file, journal),
    async clear() {
      await unlink(file).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    },
  };
}

// writeJsonAtomic's temp name: the target's name, the writer's PID, `.tmp`.
const TEMP_NAME = /^(.+)\.(\d+)\.tmp$/;

/**
 * Removes the temp files of `file` that a writer killed between open and rename left behind; their content never
 * counted. Only one agent writes a state directory, so a temp of any other PID is a dead writer's.
 */
async function removeStaleTemps(file: string): Promise<void> {
  const dir = dirname(file);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new BatonError('STATE_INVALID', `cannot list ${dir}: ${describeError(error)}`, {cause: error});
  }
  for (const name of names) {
    const match = TEMP_NAME.exec(name);
    if (match?.[1] !== basename(file) || Number(match[2]) === process.pid) continue;
    await unlink(join(dir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw new BatonError('STATE_INVALID', `cannot remove the stale temp file ${join(dir, name)}: ${error.message}`, {cause: error});
    });
  }
}

async function readJson(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new BatonError('STATE_INVALID', `cannot read ${file}: ${describeError(error)}`, {cause: error});
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new BatonError('STATE_INVALID', `${file} is corrupt (not JSON); move it aside to start afresh`, {cause: error});
  }
}

export async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  await mkdir(dirname(file), {recursive: true, mode: 0o700});
  const temp = `${file}.${process.pid}.tmp`;
  const handle = await open(temp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(value)}\n`);
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
}

function parseJournal(value: unknown): SwitchJournal | string {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v['switchId'] !== 'string') return 'switchId: expected a string';
  if (v['side'] !== 'giver' && v['side'] !== 'taker') return 'side: expected giver or taker';
  if (typeof v['coordinator'] !== 'boolean') return 'coordinator: expected a boolean';
  if (typeof v['peerBoot'] !== 'string') return 'peerBoot: expected a string';
  if (!isEpoch(v['epoch'])) return `epoch: expected ${EPOCH_EXPECTED}, got ${JSON.stringify(v['epoch'])}`;
  if (!Array.isArray(v['applied']) || !v['applied'].every((s) => typeof s === 'string')) return 'applied: expected a list of step names';
  if (v['pending'] !== undefined && typeof v['pending'] !== 'string') return 'pending: expected a step name';
  if (v['phase'] !== 'forward' && v['phase'] !== 'rollback') return 'phase: expected forward or rollback';
  if (!isCount(v['startedAtWall'])) return 'startedAtWall: expected ms since the epoch';
  return {
    switchId: v['switchId'], side: v['side'], coordinator: v['coordinator'], peerBoot: v['peerBoot'], epoch: v['epoch'],
    applied: v['applied'] as string[], pending: v['pending'] as string | undefined, phase: v['phase'], startedAtWall: v['startedAtWall'],
  };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
