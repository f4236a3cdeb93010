// Several clients.js summaries as one: what a dual-stack drill reports from its clients over each address.

import test from 'ava';
import {mergeClientsSummaries, type ClassSummary, type ClientsSummary} from '../../../cli/lab/clients.js';

const part = (attempts: number, failed: number, longestGapMs: number, servedBy: Record<string, number>, failureAt?: number): ClassSummary => ({
  attempts, ok: attempts - failed, failed, longestGapMs, servedBy,
  failures: failureAt === undefined ? [] : [{atMs: failureAt, error: `failed at ${failureAt}`}],
});
const summary = (durationMs: number, keepAlive: ClassSummary, downloads: ClassSummary): ClientsSummary => ({
  durationMs, classes: {fresh: part(0, 0, 0, {}), keepAlive, downloads, uploads: part(0, 0, 0, {})},
});

test('counts add up, who served adds up per host, failures stay in time order, and the longest gap is the worst of any run', (t) => {
  const v4 = summary(9000, part(300, 1, 120, {'web-primary': 150, 'web-backup': 149}, 4000), part(9, 0, 2000, {'web-primary': 9}));
  const v6 = summary(9100, part(280, 2, 300, {'web-primary': 100, 'web-backup': 178}, 3000), part(8, 1, 1800, {'web-backup': 7}, 5000));
  const merged = mergeClientsSummaries([v4, v6]);
  t.is(merged.durationMs, 9100);
  t.deepEqual(merged.classes.keepAlive, {
    attempts: 580, ok: 577, failed: 3, longestGapMs: 300, servedBy: {'web-primary': 250, 'web-backup': 327},
    failures: [{atMs: 3000, error: 'failed at 3000'}, {atMs: 4000, error: 'failed at 4000'}],
  });
  t.deepEqual(merged.classes.downloads, {attempts: 17, ok: 16, failed: 1, longestGapMs: 2000, servedBy: {'web-primary': 9, 'web-backup': 7},
    failures: [{atMs: 5000, error: 'failed at 5000'}]});
  t.deepEqual(mergeClientsSummaries([v4]), v4, 'one summary is itself');
});
