// State-change hooks: argv and order through a recording runner, queueing and timeouts on a fake clock, and real
// scripts run one at a time, in order, through the real runner.

import {isProcessAlive} from '../../cli/lab/web.js';
import test, {type ExecutionContext} from 'ava';
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {createScriptRunner} from '../../agent/adapters/script-runner.js';
import {createSystemClock} from '../../agent/adapters/system-clock.js';
import {HookRunner, type HookRunnerOptions, type StateChange} from '../../agent/hooks.js';
import type {Logger} from '../../agent/log.js';
import type {CommandOptions, CommandRunner} from '../../agent/ports.js';
import {FakeClock, settle} from '../fakes/fake-clock.js';
import {commandFailure, RecordingRunner} from '../fakes/recording-runner.js';

const HOOK = '/usr/local/bin/baton-notify';

/** A Logger that keeps each line as "level message". */
function recordingLog(): {log: Logger; lines: string[]} {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return {lines, log: {error: at('error'), warning: at('warning'), notice: at('notice'), info: at('info'), debug: at('debug')}};
}

function change(n: number): StateChange {
  return {oldState: n % 2 === 0 ? 'active' : 'standby', newState: n % 2 === 0 ? 'standby' : 'active', reason: `change ${n}`};
}

/** A CommandRunner whose calls finish only when the test says so. */
class GatedRunner implements CommandRunner {
  readonly started: Array<{args: readonly string[]; options: CommandOptions | undefined}> = [];
  readonly #gates: Array<{resolve: (stdout: string) => void; reject: (error: unknown) => void}> = [];

  run(_file: string, args: readonly string[], options?: CommandOptions): Promise<string> {
    this.started.push({args, options});
    return new Promise((resolve, reject) => this.#gates.push({resolve, reject}));
  }

  /** Finishes the oldest unfinished call. */
  finish(error?: unknown): void {
    const gate = this.#gates.shift();
    if (gate === undefined) throw new Error('no call is running');
    if (error === undefined) gate.resolve(''); else gate.reject(error);
  }
}

function hookRunner(overrides: Partial<HookRunnerOptions> & Pick<HookRunnerOptions, 'runner'>) {
  const {log, lines} = recordingLog();
  const clock = new FakeClock();
  const hooks = new HookRunner({path: HOOK, timeoutMs: 5000, log, clock, ...overrides});
  return {hooks, lines, clock};
}

// ---- with fakes ----

test('each change runs the hook with old state, new state and reason as three arguments, in order', async (t) => {
  const runner = new RecordingRunner();
  const {hooks, lines} = hookRunner({runner});

  hooks.notify({oldState: 'starting', newState: 'standby', reason: 'peer is active'});
  hooks.notify({oldState: 'standby', newState: 'active', reason: 'peer lost; it\'s "gone" $(reboot)'});
  await hooks.drain();

  t.deepEqual(runner.calls, [
    {file: HOOK, args: ['starting', 'standby', 'peer is active'], timeoutMs: 5000, interruptAfterMs: undefined,
      env: {BATON_OLD_STATE: 'starting', BATON_NEW_STATE: 'standby', BATON_REASON: 'peer is active'}},
    {file: HOOK, args: ['standby', 'active', 'peer lost; it\'s "gone" $(reboot)'], timeoutMs: 5000,
      interruptAfterMs: undefined,
      env: {BATON_OLD_STATE: 'standby', BATON_NEW_STATE: 'active', BATON_REASON: 'peer lost; it\'s "gone" $(reboot)'}},
  ]);
  t.deepEqual(lines, [`info (hook) starting -> standby: ${HOOK} ok`, `info (hook) standby -> active: ${HOOK} ok`]);
});

test('notify returns at once and the next call starts only when the one before has finished', async (t) => {
  const runner = new GatedRunner();
  const {hooks} = hookRunner({runner});

  hooks.notify(change(1));
  hooks.notify(change(2));
  hooks.notify(change(3));
  await settle();
  t.deepEqual(runner.started.map((call) => call.args[2]), ['change 1']);
  runner.finish();
  await settle();
  t.deepEqual(runner.started.map((call) => call.args[2]), ['change 1', 'change 2']);
  runner.finish();
  await settle();
  runner.finish();
  await hooks.drain();
  t.deepEqual(runner.started.map((call) => call.args[2]), ['change 1', 'change 2', 'change 3']);
});

test('a failing hook is logged with the runner\'s message and the next one still runs', async (t) => {
  const runner = new RecordingRunner()
    .on(`${HOOK} standby active 'change 1'`, commandFailure(`${HOOK} standby active change-1`, 3, 'smtp: connection refused'));
  const {hooks, lines} = hookRunner({runner});

  hooks.notify(change(1));
  hooks.notify(change(2));
  await hooks.drain();

  t.deepEqual(lines, [
    `warning (hook) standby -> active: \`${HOOK} standby active change-1\` exited 3: smtp: connection refused`,
    `info (hook) active -> standby: ${HOOK} ok`,
  ]);
  t.is(runner.calls.length, 2);
});

test('a hook whose runner never returns is given up after timeout plus grace, and the next one runs', async (t) => {
  const runner = new GatedRunner();
  const {hooks, lines, clock} = hookRunner({runner, timeoutMs: 1000, giveUpAfterTimeoutMs: 500});

  hooks.notify(change(1));
  hooks.notify(change(2));
  await clock.advance(1499);
  t.is(runner.started.length, 1);
  await clock.advance(1);

  t.is(runner.started.length, 2);
  t.deepEqual(lines, [`warning (hook) standby -> active: ${HOOK} did not end within 1500 ms of being started, ` +
    'though stopped after 1000 ms; running the next hook without waiting for it']);
  runner.finish(); // the abandoned call settling late changes nothing
  runner.finish();
  await hooks.drain();
  t.is(lines.length, 2);
});

test('when 100 calls are waiting, the oldest waiting one is dropped and logged', async (t) => {
  const runner = new GatedRunner();
  const {hooks, lines} = hookRunner({runner});

  for (let n = 0; n <= 101; n++) hooks.notify(change(n)); // 0 runs, 1..100 wait, 101 pushes out 1
  t.deepEqual(lines, ['warning (hook) 100 calls waiting, the hook is too slow: dropped the oldest, ' +
    'standby -> active (change 1)']);
  for (let n = 0; n <= 100; n++) {
    await settle();
    runner.finish();
  }
  await hooks.drain();

  const reasons = runner.started.map((call) => call.args[2]);
  t.is(reasons.length, 101);
  t.deepEqual(reasons.slice(0, 3), ['change 0', 'change 2', 'change 3']);
  t.is(reasons.at(-1), 'change 101');
});

test('the queue bound can be set', async (t) => {
  const runner = new GatedRunner();
  const {hooks, lines} = hookRunner({runner, maxPending: 1});

  hooks.notify(change(1));
  hooks.notify(change(2));
  hooks.notify(change(3));
  runner.finish();
  await settle();
  runner.finish();
  await hooks.drain();

  t.deepEqual(runner.started.map((call) => call.args[2]), ['change 1', 'change 3']);
  t.is(lines[0], 'warning (hook) 1 calls waiting, the hook is too slow: dropped the oldest, active -> standby (change 2)');
});

test('drain resolves at once when nothing is queued', async (t) => {
  const {hooks} = hookRunner({runner: new RecordingRunner()});

  await hooks.drain();

  t.pass();
});

// ---- with real scripts ----

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-hooks-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

async function writeScript(path: string, body: string): Promise<string> {
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

/** A real HookRunner: the script runner (as the agent's own user: test/agent/script-runner.test.ts changes it) and
 *  the system clock. */
function realHooks(path: string, timeoutMs = 5000, giveUpAfterTimeoutMs?: number) {
  const {log, lines} = recordingLog();
  const runner = createScriptRunner({runner: createExecaRunner(), user: undefined});
  const hooks = new HookRunner({runner, clock: createSystemClock(), path, timeoutMs, log,
    giveUpAfterTimeoutMs});
  return {hooks, lines};
}

// Appends "start N", sleeps, appends "end N": two runs at once would interleave their lines.
const RECORDER = (out: string) => `echo "start $3 ($1 -> $2)" >> '${out}'\nsleep 0.05\necho "end $3" >> '${out}'`;

test('a real hook runs once per change, one at a time, in order', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'calls.txt');
  const {hooks, lines} = realHooks(await writeScript(join(dir, 'notify'), RECORDER(out)));

  for (let n = 1; n <= 5; n++) hooks.notify({oldState: 'standby', newState: 'active', reason: `${n}`});
  await hooks.drain();

  t.is(await readFile(out, 'utf8'), [1, 2, 3, 4, 5].map((n) => `start ${n} (standby -> active)\nend ${n}\n`).join(''));
  t.is(lines.length, 5);
});

test('a real hook that fails is logged with its exit code and stderr, and the next one runs', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'calls.txt');
  const path = await writeScript(join(dir, 'notify'),
    `echo "$3" >> '${out}'\nif [ "$3" = bad ]; then echo "cannot reach the mail server" >&2; exit 4; fi`);
  const {hooks, lines} = realHooks(path);

  hooks.notify({oldState: 'active', newState: 'fault', reason: 'bad'});
  hooks.notify({oldState: 'fault', newState: 'standby', reason: 'good'});
  await hooks.drain();

  t.is(await readFile(out, 'utf8'), 'bad\ngood\n');
  t.deepEqual(lines, [
    `warning (hook) active -> fault: \`${path} active fault bad\` exited 4: cannot reach the mail server`,
    `info (hook) fault -> standby: ${path} ok`,
  ]);
});

test('a real hook that hangs is stopped at its timeout and the next one runs', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'calls.txt');
  const path = await writeScript(join(dir, 'notify'), `echo "$3" >> '${out}'\nif [ "$3" = hang ]; then exec sleep 30; fi`);
  const {hooks, lines} = realHooks(path, 200);

  hooks.notify({oldState: 'active', newState: 'fault', reason: 'hang'});
  hooks.notify({oldState: 'fault', newState: 'standby', reason: 'next'});
  await hooks.drain();

  t.is(await readFile(out, 'utf8'), 'hang\nnext\n');
  t.deepEqual(lines, [
    `warning (hook) active -> fault: \`${path} active fault hang\` did not finish within 200 ms and was stopped with everything it started`,
    `info (hook) fault -> standby: ${path} ok`,
  ]);
});

test('a real hook whose child holds its output open is stopped with its child, and the next one runs', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'calls.txt');
  const pidFile = join(dir, 'sleep.pid');
  // The script is stopped at the timeout; the backgrounded sleep outlives it with stdout open.
  const path = await writeScript(join(dir, 'notify'),
    `echo "$3" >> '${out}'\nif [ "$3" = hang ]; then sleep 30 & echo $! > '${pidFile}'; wait; fi`);
  t.teardown(async () => {
    // Only if the runner failed to stop it: normally the sleep is already gone (ESRCH).
    const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    if (pid > 0 && isProcessAlive(pid)) process.kill(pid);
  });
  const {hooks, lines} = realHooks(path, 200);

  hooks.notify({oldState: 'active', newState: 'fault', reason: 'hang'});
  hooks.notify({oldState: 'fault', newState: 'standby', reason: 'next'});
  await hooks.drain();

  t.is(await readFile(out, 'utf8'), 'hang\nnext\n');
  t.is(lines[0], `warning (hook) active -> fault: \`${path} active fault hang\` did not finish within 200 ms and was stopped with everything it started`);
  t.is(lines[1], `info (hook) fault -> standby: ${path} ok`);
  // The runner stops the hook's whole process tree: the backgrounded sleep did not outlive it.
  const sleepPid = Number(await readFile(pidFile, 'utf8'));
  await new Promise((resolve) => setTimeout(resolve, 1200));
  t.false(isProcessAlive(sleepPid), 'gone, or a zombie waiting for init to reap it');
});

test('a real hook in a directory with a space and a quote in its name runs, its reason one argument', async (t) => {
  const dir = join(await tempDir(t), 'my "hooks" dir\'s');
  await mkdir(dir);
  const out = join(dir, 'calls.txt');
  const path = await writeScript(join(dir, 'notify me'), `printf '%s|' "$#" "$@" >> "$(dirname "$0")/calls.txt"`);
  const {hooks, lines} = realHooks(path);

  hooks.notify({oldState: 'standby', newState: 'active', reason: 'peer lost; $(touch /tmp/pwned) "quoted"'});
  await hooks.drain();

  t.is(await readFile(out, 'utf8'), '3|standby|active|peer lost; $(touch /tmp/pwned) "quoted"|');
  t.deepEqual(lines, [`info (hook) standby -> active: ${path} ok`]);
});
