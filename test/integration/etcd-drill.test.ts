// `baton lab run --hosts 3 --coordination etcd`, once, end to end: three hosts in etcd mode with three real etcd
// members, the drill passes on what happened (the switch to b and back done, a's death taken over by another host,
// a's return without preemption, never two holders by the kernels' events) and leaves no namespace behind. Its
// figures (unheld windows, gaps) are the drill's report, never this test's verdict.

import {mkdtemp, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {fileURLToPath} from 'node:url';
import test from 'ava';
import {execa} from 'execa';
import type {EtcdDrillReport} from '../../cli/drill/etcd-drill.js';
import {labDown} from '../../cli/lab/lab.js';
import {skipUnlessIntegration} from './helpers.js';
import {runner} from './lab-helpers.js';

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
let dir = '';
let available = false;

test.before(async (t) => {
  available = await skipUnlessIntegration(t);
  dir = await mkdtemp(join(tmpdir(), 'baton-etcd-drill-'));
});

test.after.always(async () => {
  if (dir !== '') await rm(dir, {recursive: true, force: true});
});

/** The CLI's lab name starts with "bl" (so `baton lab down` finds it); BATON_TEST_PREFIX fixes more of it when it does. */
function prefixStem(): string {
  const start = process.env['BATON_TEST_PREFIX'] ?? '';
  return /^bl[0-9a-z]{0,4}$/.test(start) ? start : 'bl';
}

async function namespacesOf(prefix: string): Promise<string[]> {
  const {stdout} = await execa('ip', ['netns', 'list']);
  return stdout.split('\n').filter((line) => line.startsWith(`${prefix}-`));
}

test('lab run --hosts 3 --coordination etcd: the switches, the failover and the return happen, never two holders, nothing left', async (t) => {
  if (!available) return t.pass();
  t.timeout(170_000);
  const result = await execa(process.execPath, [CLI, 'lab', 'run', '--hosts', '3', '--coordination', 'etcd', '--prefix', prefixStem(), '--json',
    '--report', join(dir, 'etcd.html')], {reject: false, timeout: 160_000});
  const prefix = /lab (bl[0-9a-z]{6}): building/.exec(String(result.stderr))?.[1];
  try {
    t.truthy(prefix, String(result.stderr));
    const report = JSON.parse(String(result.stdout)) as EtcdDrillReport;
    const phase = (name: string) => report.phases.find((p) => p.name === name);
    t.deepEqual(report.phases.map((p) => p.name), ['start', 'switchover', 'switchback', 'failure', 'return', 'never-two-holders'], String(result.stderr));
    t.like(phase('start'), {ok: true, holder: 'a'});
    t.like(phase('switchover'), {ok: true, outcome: 'done', holder: 'b'});
    t.true((phase('switchover')?.confirmedRequests ?? 0) >= 3);
    t.like(phase('switchback'), {ok: true, outcome: 'done', holder: 'a'});
    const failure = phase('failure');
    t.true(failure?.ok, failure?.problem);
    t.true(failure?.holder === 'b' || failure?.holder === 'c', `after a's death: ${failure?.holder ?? 'nobody'}`);
    // A new holder has a new epoch: the key's revision grows.
    t.true((failure?.epoch ?? 0) > (phase('switchback')?.epoch ?? Infinity));
    t.like(phase('return'), {ok: true, holder: failure?.holder});
    t.deepEqual(report.overlaps, []);
    t.true(phase('never-two-holders')?.ok);
    t.true(report.ok);
    t.is(result.exitCode, 0);
    t.deepEqual(await namespacesOf(prefix ?? 'none'), [], 'the lab is removed');
  } finally {
    if (prefix !== undefined) await labDown(runner, prefix).catch(() => undefined);
  }
});
