// The systemd notify adapter: the exact systemd-notify argv, nothing at all outside systemd, the watchdog rate
// from WATCHDOG_USEC/WATCHDOG_PID, a ping loop that keeps its rate through slow and failed pings; and what READY=1
// waits for, agent.ready(): the state machine has left `starting`.

import test from 'ava';
import {closeSync, openSync} from 'node:fs';
import {mkdtemp, readFile, rm} from 'node:fs/promises';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createSystemdNotifier, parseNotifyFd, runWatchdog, watchdogPingIntervalMs} from '../../agent/adapters/systemd-notify.js';
import {BatonError, isBatonError} from '../../agent/errors.js';
import {FakeClock} from '../fakes/fake-clock.js';
import {createFakePair} from '../fakes/fake-pair.js';
import {FakeServiceManager} from '../fakes/fake-service-manager.js';
import {RecordingRunner} from '../fakes/recording-runner.js';

const SOCKET = '/run/systemd/notify';

test('each notification runs systemd-notify once, with the socket passed to it alone and a bounded wait', async (t) => {
  const runner = new RecordingRunner();
  const notifier = createSystemdNotifier({runner, notifySocket: SOCKET});
  await notifier.ready('primary active, holds 192.0.2.100/24');
  await notifier.watchdog();
  await notifier.status('backup standby,\ndoes not hold 192.0.2.100/24');
  await notifier.stopping();
  t.deepEqual(runner.calls.map((c) => [c.file, ...c.args]), [
    ['env', `NOTIFY_SOCKET=${SOCKET}`, 'systemd-notify', 'READY=1', 'STATUS=primary active, holds 192.0.2.100/24'],
    ['env', `NOTIFY_SOCKET=${SOCKET}`, 'systemd-notify', 'WATCHDOG=1'],
    // A newline would start a new assignment in the protocol.
    ['env', `NOTIFY_SOCKET=${SOCKET}`, 'systemd-notify', 'STATUS=backup standby, does not hold 192.0.2.100/24'],
    ['env', `NOTIFY_SOCKET=${SOCKET}`, 'systemd-notify', 'STOPPING=1', 'STATUS=stopping'],
  ]);
  // Longer than systemd-notify's own 5 s barrier wait, so it reports a stuck PID 1 itself.
  t.true(runner.calls.every((c) => c.timeoutMs !== undefined && c.timeoutMs > 5000));
});

test('with the launcher\'s descriptor, each notification is one write by this process and nothing runs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'baton-notify-fd-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  // A file stands in for the connected datagram socket: the same write(2), each call's bytes in order.
  const fd = openSync(join(dir, 'datagrams'), 'w');
  t.teardown(() => closeSync(fd));
  const runner = new RecordingRunner();
  const notifier = createSystemdNotifier({runner, notifySocket: SOCKET, notifyFd: fd});

  await notifier.ready('primary active');
  await notifier.watchdog();

  t.is(await readFile(join(dir, 'datagrams'), 'utf8'), 'READY=1\nSTATUS=primary activeWATCHDOG=1');
  t.deepEqual(runner.calls, []);
});

test('BATON_NOTIFY_FD is a descriptor, or the launcher\'s reason for having none', (t) => {
  t.is(parseNotifyFd('3'), 3);
  t.deepEqual(parseNotifyFd('none: connect to /run/systemd/notify: Permission denied'),
    {why: 'connect to /run/systemd/notify: Permission denied'});
  t.is(parseNotifyFd(undefined), undefined);
});

test('without NOTIFY_SOCKET nothing runs', async (t) => {
  const runner = new RecordingRunner();
  for (const notifySocket of [undefined, '']) {
    const notifier = createSystemdNotifier({runner, notifySocket});
    await notifier.ready('x');
    await notifier.watchdog();
    await notifier.status('x');
    await notifier.stopping();
  }
  t.deepEqual(runner.calls, []);
});

test('a failed systemd-notify is thrown to the caller', async (t) => {
  const runner = new RecordingRunner().on(/systemd-notify/, new BatonError('COMMAND_FAILED', '`env NOTIFY_SOCKET=/run/systemd/notify systemd-notify WATCHDOG=1` exited 1'));
  const error = await t.throwsAsync(createSystemdNotifier({runner, notifySocket: SOCKET}).watchdog());
  t.true(isBatonError(error, 'COMMAND_FAILED'));
});

test('the watchdog is pinged at half WATCHDOG_USEC, only for the process it is meant for', (t) => {
  t.is(watchdogPingIntervalMs({watchdogUsec: '10000000', watchdogPid: undefined, pid: 42}), 5000);
  t.is(watchdogPingIntervalMs({watchdogUsec: '10000000', watchdogPid: '42', pid: 42}), 5000);
  t.is(watchdogPingIntervalMs({watchdogUsec: '10000000', watchdogPid: '41', pid: 42}), undefined);
  t.is(watchdogPingIntervalMs({watchdogUsec: undefined, watchdogPid: '42', pid: 42}), undefined);
  t.is(watchdogPingIntervalMs({watchdogUsec: '', watchdogPid: undefined, pid: 42}), undefined);
});

test('a malformed WATCHDOG_USEC or WATCHDOG_PID is an error, not a silently disabled watchdog', (t) => {
  for (const env of [{watchdogUsec: '10s', watchdogPid: undefined}, {watchdogUsec: '0', watchdogPid: undefined},
    {watchdogUsec: '10000000', watchdogPid: 'self'}]) {
    const error = t.throws(() => watchdogPingIntervalMs({...env, pid: 42}));
    t.true(isBatonError(error, 'CONFIG_INVALID'), JSON.stringify(env));
  }
});

test('the watchdog loop pings at once, then at a fixed rate, through failures, until aborted', async (t) => {
  const clock = new FakeClock();
  const manager = new FakeServiceManager(clock);
  const abort = new AbortController();
  const results: unknown[] = [];
  const loop = runWatchdog({manager, everyMs: 500, clock, signal: abort.signal, onPing: (error) => results.push(error)});
  await clock.advance(1000);
  manager.failWith = new Error('PID 1 is gone');
  await clock.advance(500);
  manager.failWith = undefined;
  await clock.advance(500);
  abort.abort();
  await loop;
  t.deepEqual(manager.sent.map((n) => n.at), [0, 500, 1000, 2000]);
  t.deepEqual(results.map((r) => (r instanceof Error ? r.message : r)), [undefined, undefined, undefined, 'PID 1 is gone', undefined]);
  t.is(clock.pendingSleepers(), 0);
});

test('a ping that hangs past its slot delays the next to the following slot, without a burst', async (t) => {
  const clock = new FakeClock();
  const stalls = [0, 1200, 0, 0];
  const pingedAt: number[] = [];
  const manager = new class extends FakeServiceManager {
    override async watchdog(): Promise<void> {
      pingedAt.push(clock.now());
      await clock.sleep(stalls[pingedAt.length - 1] ?? 0);
    }
  }(clock);
  const abort = new AbortController();
  const loop = runWatchdog({manager, everyMs: 500, clock, signal: abort.signal, onPing: () => undefined});
  await clock.advance(2600);
  abort.abort();
  await loop;
  // 0, then the ping at 500 hangs until 1700: the slots at 1000 and 1500 are skipped, the next is at 2000.
  t.deepEqual(pingedAt, [0, 500, 2000, 2500]);
});

test('agent.ready() resolves only once the agent has decided, not while it listens or takes the IP', async (t) => {
  const {clock, primary} = createFakePair(t);
  let ready = false;
  void primary.agent.ready().then(() => {
    ready = true;
  });
  await primary.agent.start();
  // The start-up listening (2 intervals), then the acquire plan: `starting` throughout.
  // 5 s of fake time is far beyond the 400 ms of listening plus a plan of fakes.
  for (let ms = 0; primary.agent.state.name === 'starting' && ms <= 5000; ms += 10) {
    t.false(ready, `ready while starting, at ${ms} ms`);
    await clock.advance(10);
  }
  t.is(primary.agent.state.name, 'active');
  t.true(ready);
});
