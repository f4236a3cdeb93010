// The host-info child process: it answers, or fails clearly, and in every case it is gone when the collection
// settles, so that neither systeminformation nor the memory of its probes stays in the agent.

import test from 'ava';
import {execFile} from 'node:child_process';
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import {probeInChild} from '../../agent/adapters/host-info.js';
import {AGENT_NODE_FLAGS} from '../../cli/lab/lab.js';

// Long enough for the ten version probes on a machine busy with other work; the deadline has its own test.
const TEST_COLLECT_TIMEOUT_MS = 60_000;

/** Whether `pid` is still a child of this process, a zombie included (/proc/PID/stat: pid (comm) state ppid …). */
async function isOurChild(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return false;
  const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  return ppid === process.pid;
}

/** A child script of `source`, in a temporary directory removed after the test. */
async function childScript(t: {teardown: (fn: () => Promise<void>) => void}, source: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-host-info-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  const file = join(dir, 'child.mjs');
  await writeFile(file, source);
  return file;
}

test('the child answers with the versions and memory, and is gone once it has', async (t) => {
  let pid: number | undefined;
  const answer = await probeInChild(TEST_COLLECT_TIMEOUT_MS, {spawned: (started) => { pid = started; }});
  t.true(answer.memory.total > 0);
  t.true('node' in answer.found, JSON.stringify(answer.found));
  t.not(pid, undefined);
  t.false(await isOurChild(pid ?? 0), `child ${pid} is still there`);
});

test('a child still collecting at the deadline is killed before the timeout is reported', async (t) => {
  let pid: number | undefined;
  const error = await t.throwsAsync(probeInChild(1, {spawned: (started) => { pid = started; }}));
  t.is((error as {code?: string} | undefined)?.code, 'COMMAND_TIMEOUT');
  t.regex(error?.message ?? '', /^collecting host info took more than 1 ms/);
  t.false(await isOurChild(pid ?? 0), `child ${pid} is still there`);
});

test('a child that never answers is killed at the deadline', async (t) => {
  const script = await childScript(t, 'setInterval(() => undefined, 60_000);\n');
  let pid: number | undefined;
  const error = await t.throwsAsync(probeInChild(500, {script, spawned: (started) => { pid = started; }}));
  t.is((error as {code?: string} | undefined)?.code, 'COMMAND_TIMEOUT');
  t.false(await isOurChild(pid ?? 0), `child ${pid} is still there`);
});

test('a child that crashes is an error naming its exit code and its error', async (t) => {
  const script = await childScript(t, 'throw new Error(\'systeminformation exploded\');\n');
  const error = await t.throwsAsync(probeInChild(TEST_COLLECT_TIMEOUT_MS, {script}));
  t.is((error as {code?: string} | undefined)?.code, 'COMMAND_FAILED');
  t.regex(error?.message ?? '', /^collecting host info failed: its child process \(.+child\.mjs\) exited with code 1 without an answer: Error: systeminformation exploded$/);
});

test('a child killed by a signal is an error naming the signal and V8\'s fatal error', async (t) => {
  // What Node prints when V8 cannot map its code, as without --jitless under MemoryDenyWriteExecute= (it then dies
  // on SIGTRAP; SIGKILL here, which leaves no core file). Writes to a pipe are synchronous on Linux.
  const script = await childScript(t, 'process.stderr.write(\'\\n#\\n# Fatal error in , line 0\\n# Check failed: 12 == (*__errno_location ()).\\n#\\n'
    + '#FailureMessage Object: 0x7ffdfd6fc3a0\\n----- Native stack trace -----\\n\\n 1: 0x9dde61  [node]\\n\');\n'
    + 'process.kill(process.pid, \'SIGKILL\');\n');
  const error = await t.throwsAsync(probeInChild(TEST_COLLECT_TIMEOUT_MS, {script}));
  t.regex(error?.message ?? '', / exited on SIGKILL without an answer: Fatal error in , line 0 Check failed: 12 == \(\*__errno_location \(\)\)\.$/);
});

test('the child runs with the agent\'s Node flags (--jitless) and its PATH', async (t) => {
  // What the child saw, as its answer; asked from a Node started as the unit starts the agent.
  const script = await childScript(t, 'process.send({found: {execArgv: JSON.stringify(process.execArgv), '
    + 'path: process.env.PATH}, memory: {total: 0, available: 0}});\n');
  const module = new URL('../../agent/adapters/host-info.js', import.meta.url).href;
  // A file, not `-e`: the child inherits process.execArgv, and --input-type would fail it.
  const parent = await childScript(t, `const {probeInChild} = await import(${JSON.stringify(module)});
    console.log(JSON.stringify((await probeInChild(${TEST_COLLECT_TIMEOUT_MS}, {script: ${JSON.stringify(script)}})).found));\n`);
  const path = `/opt/baton-test-path:${process.env['PATH'] ?? ''}`;
  const {stdout} = await promisify(execFile)(process.execPath, [...AGENT_NODE_FLAGS, parent], {env: {...process.env, PATH: path}});
  const found = JSON.parse(stdout) as {execArgv: string; path: string};
  t.deepEqual(JSON.parse(found.execArgv), [...AGENT_NODE_FLAGS]);
  t.is(found.path, path);
});
