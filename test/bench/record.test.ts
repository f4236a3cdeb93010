// The bench's record of figures: a part replaces its own figures and leaves the others with their runs; a run no
// figure names any more is dropped; an interrupted write leaves the old record.

import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {median, mergeFigures, readFigureRecord, recordFigures, type BenchRun} from '../../bench/record.js';

const RUN: BenchRun = {date: '2026-12-06', commit: 'abc1234', command: 'npm run bench -- --only failover', machine: 'quiet'};

test('a part replaces only its own figures, rounds to a tenth, and drops the runs nothing names', (t) => {
  const before = {about: '', runs: {old: {...RUN, commit: 'old'}, kept: {...RUN, commit: 'kept'}},
    figures: {'failover.defaults.gap.median': {value: 900, run: 'old'}, 'failover.tuned.gap.max': {value: 300, run: 'old'},
      'clients.idle.baton.moves': {value: 20, run: 'kept'}}};
  const after = mergeFigures(before, ['failover.defaults.'], 'new', RUN, {'failover.defaults.gap.median': 888.44, 'failover.defaults.runs': 5});
  t.deepEqual(after.figures, {
    'clients.idle.baton.moves': {value: 20, run: 'kept'},
    'failover.defaults.gap.median': {value: 888.4, run: 'new'},
    'failover.defaults.runs': {value: 5, run: 'new'},
    'failover.tuned.gap.max': {value: 300, run: 'old'},
  });
  t.deepEqual(Object.keys(after.runs).sort(), ['kept', 'new', 'old']);
  const all = mergeFigures(after, ['failover.'], 'newer', RUN, {'failover.defaults.gap.median': 1000});
  t.deepEqual(Object.keys(all.runs).sort(), ['kept', 'newer'], 'old is named by no figure any more');
  t.false('failover.tuned.gap.max' in all.figures, 'a figure of the part that was not measured again goes');
});

test('a figure that could not be measured (NaN) is left out, not recorded as null', (t) => {
  const after = mergeFigures({about: '', runs: {}, figures: {}}, ['clients.idle.'], 'r', RUN, {'clients.idle.baton.drain.max': Number.NaN, 'clients.idle.baton.moves': 0});
  t.deepEqual(after.figures, {'clients.idle.baton.moves': {value: 0, run: 'r'}});
});

test('the record is written whole and read back; a file that is not a record is refused by name', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-record-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const file = join(dir, 'figures.json');
  t.deepEqual((await readFigureRecord(file)).figures, {}, 'no file yet: an empty record');
  await recordFigures(file, ['rest.'], 'rest-1', RUN, {'rest.primary.rss-mb': 61.23});
  t.deepEqual((await readFigureRecord(file)).figures, {'rest.primary.rss-mb': {value: 61.2, run: 'rest-1'}});
  t.true((await readFile(file, 'utf8')).endsWith('}\n'));
  await writeFile(file, '{"figures": {}}');
  await t.throwsAsync(readFigureRecord(file), {message: `${file}: not a bench figure record (no "runs" and "figures")`});
});

test('median: the middle value, or the mean of the middle two', (t) => {
  t.is(median([5, 1, 3]), 3);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.true(Number.isNaN(median([])));
});
