// The state files on disk: a write killed between open and rename leaves a temp file, which the next agent's
// first load removes, while the last complete content is what it reads.

import {mkdtemp, readdir, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {createFileJournalStore, createFileStateStore} from '../../agent/adapters/file-journal.js';
import type {SwitchJournal} from '../../agent/ports.js';

// A PID no live process has: Linux PIDs stop at 2^22.
const DEAD_PID = 9_999_999;

const JOURNAL: SwitchJournal = {
  switchId: 'k3F9', side: 'giver', coordinator: true, peerBoot: 'b1', epoch: 4, applied: [], pending: 'primary-net-down', phase: 'forward', startedAtWall: 1,
};

async function stateDir(t: {teardown(fn: () => Promise<void>): void}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-state-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

test('a journal write killed before its rename: the next load reads the last complete journal and removes the temp file', async (t) => {
  const dir = await stateDir(t);
  const journal = createFileJournalStore(dir);
  await journal.save(JOURNAL);
  await writeFile(join(dir, `switch.json.${DEAD_PID}.tmp`), '{"switchId":"k3F9","side":"gi');
  t.deepEqual(await journal.load(), JOURNAL);
  t.deepEqual((await readdir(dir)).sort(), ['switch.json']);
});

test('each store removes only its own file\'s temp files of other PIDs; its own PID\'s and other files stay', async (t) => {
  const dir = await stateDir(t);
  const kept = [`switch.json.${process.pid}.tmp`, 'notes.12.tmp', 'switch.json.tmp', `state.json.${DEAD_PID}.tmp`];
  for (const name of [...kept, `switch.json.${DEAD_PID}.tmp`, 'switch.json.1.tmp']) await writeFile(join(dir, name), '{');
  t.is(await createFileJournalStore(dir).load(), undefined);
  t.deepEqual((await readdir(dir)).sort(), [...kept].sort());
  t.is(await createFileStateStore(dir).load(), undefined);
  t.deepEqual((await readdir(dir)).sort(), kept.filter((name) => !name.startsWith('state.json')).sort());
});

test('a state directory that does not exist yet loads as empty', async (t) => {
  const dir = join(await stateDir(t), 'not-yet');
  t.is(await createFileJournalStore(dir).load(), undefined);
  t.is(await createFileStateStore(dir).load(), undefined);
});

test('an epoch above 2^31 − 1 in the state file or the journal is refused with the file, the value and the fix', async (t) => {
  const dir = await stateDir(t);
  await writeFile(join(dir, 'state.json'), `{"epoch":${2 ** 53 - 1}}`);
  await t.throwsAsync(createFileStateStore(dir).load(), {code: 'STATE_INVALID',
    message: `${join(dir, 'state.json')}: epoch: expected an integer 0..2147483647, got 9007199254740991; move the file aside to start afresh`});
  await writeFile(join(dir, 'switch.json'), JSON.stringify({...JOURNAL, epoch: 2 ** 31}));
  await t.throwsAsync(createFileJournalStore(dir).load(), {code: 'STATE_INVALID',
    message: `${join(dir, 'switch.json')}: epoch: expected an integer 0..2147483647, got 2147483648; move the file aside to start afresh`});
  await writeFile(join(dir, 'state.json'), `{"epoch":${2 ** 31 - 1}}`);
  t.deepEqual(await createFileStateStore(dir).load(), {epoch: 2 ** 31 - 1, released: false});
});
