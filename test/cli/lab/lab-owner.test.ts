// Who built a lab: `baton lab down` removes a lab only when its builder has gone, so the owner must be recognised
// while it runs and never confused with a process that has exited or a PID reused by another one.

import {spawn} from 'node:child_process';
import {mkdtemp, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import test from 'ava';
import {parseCommandLine, UsageError} from '../../../cli/args.js';
import {claimLab, liveOwner, processStartTicks, releaseLab} from '../../../cli/lab/lab-owner.js';

async function ownersDir(t: {teardown: (fn: () => Promise<void>) => void}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-owners-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

test('the running builder owns its lab until it releases it', async (t) => {
  const dir = await ownersDir(t);
  await claimLab('bltest01', dir);
  const owner = await liveOwner('bltest01', dir);
  t.is(owner?.pid, process.pid);
  t.is(owner?.startTicks, processStartTicks(process.pid));
  await releaseLab('bltest01', dir);
  t.is(await liveOwner('bltest01', dir), undefined);
  await t.notThrowsAsync(releaseLab('bltest01', dir));
});

test('a builder that has exited owns nothing', async (t) => {
  const dir = await ownersDir(t);
  const child = spawn(process.execPath, ['-e', '0']);
  const pid = child.pid ?? 0;
  const started = processStartTicks(pid);
  await new Promise((resolve) => child.once('exit', resolve));
  t.is(processStartTicks(pid), undefined);
  await writeFile(join(dir, 'bltest02'), JSON.stringify({pid, startTicks: started ?? 1, command: 'node -e 0'}));
  t.is(await liveOwner('bltest02', dir), undefined);
});

test('a PID now used by another process (another start time) owns nothing', async (t) => {
  const dir = await ownersDir(t);
  const ticks = processStartTicks(process.pid) ?? 0;
  await writeFile(join(dir, 'bltest03'), JSON.stringify({pid: process.pid, startTicks: ticks + 1, command: 'gone'}));
  t.is(await liveOwner('bltest03', dir), undefined);
});

test('an unreadable or foreign owner record owns nothing', async (t) => {
  const dir = await ownersDir(t);
  await writeFile(join(dir, 'bltest04'), 'not json');
  await writeFile(join(dir, 'bltest05'), JSON.stringify({pid: -1, startTicks: 0, command: ''}));
  t.is(await liveOwner('bltest04', dir), undefined);
  t.is(await liveOwner('bltest05', dir), undefined);
  t.is(await liveOwner('bltest06', dir), undefined);
});

test('lab down takes one lab name; other lab actions take none', (t) => {
  t.like(parseCommandLine(['lab', 'down', 'bl3k9x0q']), {name: 'lab', action: 'down', lab: 'bl3k9x0q'});
  t.false('lab' in parseCommandLine(['lab', 'down']));
  const usage = (argv: string[]) => t.throws(() => parseCommandLine(argv), {instanceOf: UsageError})?.message;
  t.regex(usage(['lab', 'down', 'primary']) ?? '', /lab down: expected a lab name such as bl3k9x0q, got 'primary'/);
  t.regex(usage(['lab', 'down', 'bl3k9x0q', 'bl3k9x0r']) ?? '', /lab down takes at most one lab name/);
  t.regex(usage(['lab', 'status', 'bl3k9x0q']) ?? '', /lab status takes no argument/);
});
