// The script runner: the hook and command checks run as script_user, without capabilities, with only the allowed
// environment, and nothing they start outlives them or their timeout, setsid or not. Real programs; needs root
// for the change of user (skipped with the reason otherwise).

import test, {type ExecutionContext} from 'ava';
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {isProcessAlive} from '../../cli/lab/web.js';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {createScriptRunner, SCRIPT_PATH, SUPERVISOR} from '../../agent/adapters/script-runner.js';
import {isBatonError} from '../../agent/errors.js';
import {RecordingRunner} from '../fakes/recording-runner.js';

const NOBODY = {name: 'nobody', uid: 65534, gid: 65534};
const isRoot = process.geteuid?.() === 0;
const rootTest = isRoot ? test : test.skip;

/** The runner the agent gives its hook and command checks. */
function scriptRunner() {
  return createScriptRunner({runner: createExecaRunner(), user: NOBODY, lang: 'C.UTF-8'});
}

/** A directory nobody may read and enter (the scripts) with an `out` directory nobody may write (their traces). */
async function scriptDir(t: ExecutionContext): Promise<{dir: string; out: string}> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-script-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  await chmod(dir, 0o755);
  const out = join(dir, 'out');
  await mkdir(out);
  await chmod(out, 0o777);
  return {dir, out};
}

async function writeScript(path: string, body: string): Promise<string> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** Ends, by PID, a process a failing test left behind (only ever one this test started). */
function killLeftover(t: ExecutionContext, pidFile: string): void {
  t.teardown(async () => {
    const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    if (pid > 0 && isProcessAlive(pid)) process.kill(pid, 'SIGKILL');
  });
}

async function pidIn(file: string): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const pid = Number(await readFile(file, 'utf8').catch(() => ''));
    if (pid > 0) return pid;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`no pid in ${file}`);
}

test('setpriv runs the supervisor as script_user, without capabilities, with only PATH, LANG and BATON_ variables', async (t) => {
  const runner = new RecordingRunner();
  const scripts = createScriptRunner({runner, user: {name: 'baton-script', uid: 998, gid: 997}, lang: 'de_DE.UTF-8'});

  await scripts.run('/usr/local/bin/check-db', ['--quick'], {timeoutMs: 900, env: {BATON_REASON: 'peer lost'}});

  t.deepEqual(runner.calls, [{
    file: 'setpriv',
    args: ['--reuid=998', '--regid=997', '--init-groups', '--inh-caps=-all', '--ambient-caps=-all', '--no-new-privs',
      '--', 'perl', '-e', SUPERVISOR, '--', '900', '1000', '/usr/local/bin/check-db', '--quick'],
    timeoutMs: 900 + 1000 + 1000,
    interruptAfterMs: undefined,
    env: {PATH: SCRIPT_PATH, LANG: 'de_DE.UTF-8', BATON_REASON: 'peer lost'},
  }]);
});

test('a variable that is not a BATON_ one is refused, not passed', async (t) => {
  const scripts = createScriptRunner({runner: new RecordingRunner(), user: NOBODY});

  const error = await t.throwsAsync(scripts.run('/bin/true', [], {timeoutMs: 100, env: {LD_PRELOAD: '/tmp/x.so'}}));

  t.is(error?.message, 'LD_PRELOAD is not a BATON_ variable: only those are passed to /bin/true');
});

rootTest('the program runs as script_user with no capability in any set and no_new_privs', async (t) => {
  const {dir} = await scriptDir(t);
  const path = await writeScript(join(dir, 'who'), 'id -u; id -g; id -G; grep -E "^(Cap(Inh|Prm|Eff|Amb)|NoNewPrivs):" /proc/self/status');

  const stdout = await scriptRunner().run(path, [], {timeoutMs: 5000});

  t.is(stdout, ['65534', '65534', '65534', 'CapInh:\t0000000000000000', 'CapPrm:\t0000000000000000',
    'CapEff:\t0000000000000000', 'CapAmb:\t0000000000000000', 'NoNewPrivs:\t1'].join('\n'));
});

rootTest('the program\'s environment is PATH, LANG and the caller\'s BATON_ variables, nothing of the agent\'s', async (t) => {
  process.env['BATON_TEST_SECRET'] = 'must not leak';
  t.teardown(() => delete process.env['BATON_TEST_SECRET']);

  const stdout = await scriptRunner().run('/usr/bin/env', [], {timeoutMs: 5000, env: {BATON_NEW_STATE: 'active'}});

  t.deepEqual(stdout.split('\n').sort(), ['BATON_NEW_STATE=active', 'LANG=C.UTF-8', `PATH=${SCRIPT_PATH}`]);
});

rootTest('at the timeout the whole tree ends, a child that called setsid after a double fork included', async (t) => {
  const {dir, out} = await scriptDir(t);
  const pidFile = join(out, 'escaped.pid');
  killLeftover(t, pidFile);
  // The inner sh exits at once: the sleep is orphaned, in a session of its own, outside every group of the hook.
  const path = await writeScript(join(dir, 'escape'),
    `sh -c 'setsid sh -c "echo \\$\\$ > ${pidFile}; exec sleep 60" &'\nexec sleep 60`);

  const error = await t.throwsAsync(scriptRunner().run(path, [], {timeoutMs: 500}));

  t.true(isBatonError(error, 'COMMAND_TIMEOUT'), String(error));
  t.is(error?.message, `\`${path}\` did not finish within 500 ms and was stopped with everything it started`);
  const escaped = await pidIn(pidFile);
  t.false(isProcessAlive(escaped), `the setsid sleep ${escaped} outlived the timeout`);
});

rootTest('at the timeout a setsid child that let go of the program\'s output ends too, not only the program (issue 14)', async (t) => {
  const {dir, out} = await scriptDir(t);
  const pidFile = join(out, 'detached.pid');
  killLeftover(t, pidFile);
  // Its output on /dev/null, the child holds nothing of the program's open: only stopping the whole tree ends it.
  const path = await writeScript(join(dir, 'detach'),
    `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' < /dev/null > /dev/null 2>&1 &\nexec sleep 60`);

  const error = await t.throwsAsync(scriptRunner().run(path, [], {timeoutMs: 500}));

  const detached = await pidIn(pidFile);
  t.false(isProcessAlive(detached), `the setsid sleep ${detached} outlived the timeout`);
  t.true(isBatonError(error, 'COMMAND_TIMEOUT'), String(error));
});

rootTest('a program that exits leaving a setsid child running: the child ends with it', async (t) => {
  const {dir, out} = await scriptDir(t);
  const pidFile = join(out, 'left.pid');
  killLeftover(t, pidFile);
  const path = await writeScript(join(dir, 'leave'),
    `setsid sh -c 'echo $$ > ${pidFile}; exec sleep 60' < /dev/null > /dev/null 2>&1 &\nwhile [ ! -s ${pidFile} ]; do sleep 0.01; done\necho done`);

  const stdout = await scriptRunner().run(path, [], {timeoutMs: 5000});

  t.is(stdout, 'done');
  const left = await pidIn(pidFile);
  t.false(isProcessAlive(left), `the setsid sleep ${left} outlived the program`);
});

rootTest('a failing program is reported with its own command line, exit code and stderr', async (t) => {
  const {dir} = await scriptDir(t);
  const path = await writeScript(join(dir, 'check'), 'echo "db down" >&2; exit 3');

  const error = await t.throwsAsync(scriptRunner().run(path, ['--quick'], {timeoutMs: 5000}));

  t.true(isBatonError(error, 'COMMAND_FAILED'));
  t.is(error?.message, `\`${path} --quick\` exited 3: db down`);
});

rootTest('a program that exits 124 by itself before the timeout failed, it did not time out', async (t) => {
  const {dir} = await scriptDir(t);
  const path = await writeScript(join(dir, 'check'), 'exit 124');

  const error = await t.throwsAsync(scriptRunner().run(path, [], {timeoutMs: 5000}));

  t.true(isBatonError(error, 'COMMAND_FAILED'));
  t.is(error?.message, `\`${path}\` exited 124 with no output`);
});
