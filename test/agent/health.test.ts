// Health: fall/rise counting and the monitor loop on a fake clock (the real probe: system-health-probe.test.ts).

import test, {type ExecutionContext} from 'ava';
import type {HealthCheckSpec} from '../../agent/config/health-checks.js';
import {
  HealthMonitor, type HealthResult, type HealthSettings, HealthTracker, healthCheckName,
} from '../../agent/health.js';
import type {Health} from '../../agent/state-machine.js';
import {FakeClock} from '../fakes/fake-clock.js';
import {FakeHealthProbe} from '../fakes/fake-health-probe.js';

const ETH0: HealthCheckSpec = {kind: 'interface', interface: 'eth0'};
const WEB: HealthCheckSpec = {kind: 'http', url: 'http://127.0.0.1/health', expectStatus: 200, timeoutMs: 300};
const DB: HealthCheckSpec = {kind: 'command', path: '/usr/local/bin/check-db', args: ['--quick'], timeoutMs: 500};

const OK: HealthResult = {ok: true, detail: 'fine'};
const BAD: HealthResult = {ok: false, detail: 'broken'};

// ---- HealthTracker ----

interface FallRiseCase {
  readonly fall: number;
  readonly rise: number;
  /** One result per character: s = success, f = failure. */
  readonly results: string;
  /** The host's health after each result: o = ok, F = failing. */
  readonly health: string;
}

const fallRise = test.macro({
  exec(t, {fall, rise, results, health}: FallRiseCase) {
    const tracker = new HealthTracker({fall, rise, checks: [ETH0]});
    let seen = '';
    let flips = '';
    for (const char of results) {
      const transition = tracker.record(0, char === 's' ? OK : BAD);
      seen += tracker.health === 'ok' ? 'o' : 'F';
      flips += transition === undefined ? '.' : transition.health === 'ok' ? 'o' : 'F';
    }
    t.is(seen, health);
    // A transition is returned exactly when the health differs from the one before (which starts ok).
    t.is(flips, [...health].map((h, i) => h === (i === 0 ? 'o' : health[i - 1]) ? '.' : h).join(''));
  },
  title: (title = '') => title,
});

test('a host is ok at start and stays ok while checks pass', fallRise, {fall: 3, rise: 2, results: 'sss', health: 'ooo'});
test('the fall-th failure in a row makes the host failing', fallRise,
  {fall: 3, rise: 2, results: 'fff', health: 'ooF'});
test('a success between failures restarts the count', fallRise,
  {fall: 3, rise: 2, results: 'ffsffsff', health: 'oooooooo'});
test('more failures keep the host failing without another transition', fallRise,
  {fall: 3, rise: 2, results: 'fffff', health: 'ooFFF'});
test('the rise-th success in a row makes a failing host ok again', fallRise,
  {fall: 3, rise: 2, results: 'fffss', health: 'ooFFo'});
test('a failure between successes restarts the rise count', fallRise,
  {fall: 3, rise: 2, results: 'fffsfss', health: 'ooFFFFo'});
test('fall 1 and rise 1 follow every result', fallRise,
  {fall: 1, rise: 1, results: 'fsfs', health: 'FoFo'});
test('a long rise needs that many successes', fallRise,
  {fall: 2, rise: 4, results: 'ffsssss', health: 'oFFFFoo'});

test('any failing check makes the host failing, and the reason names it and what it saw', (t) => {
  const tracker = new HealthTracker({fall: 2, rise: 2, checks: [ETH0, WEB]});

  t.is(tracker.record(0, OK), undefined);
  t.is(tracker.record(1, {ok: false, detail: 'http://127.0.0.1/health answered 503, expected 200'}), undefined);
  t.is(tracker.record(0, OK), undefined);
  const transition = tracker.record(1, {ok: false, detail: 'http://127.0.0.1/health answered 503, expected 200'});

  t.deepEqual(transition, {
    health: 'failing',
    reason: 'http http://127.0.0.1/health failed 2 times in a row: http://127.0.0.1/health answered 503, expected 200',
  });
});

test('the host is ok again only when every failing check has risen', (t) => {
  const tracker = new HealthTracker({fall: 1, rise: 2, checks: [ETH0, WEB, DB]});

  t.is(tracker.record(0, BAD)?.health, 'failing');
  t.is(tracker.record(1, BAD), undefined);
  // The first check rises; the second still fails.
  t.is(tracker.record(0, OK), undefined);
  t.is(tracker.record(0, OK), undefined);
  t.is(tracker.health, 'failing');
  t.is(tracker.record(1, OK), undefined);
  const transition = tracker.record(1, {ok: true, detail: 'answered 200'});

  t.deepEqual(transition, {
    health: 'ok',
    reason: 'http http://127.0.0.1/health passed 2 times in a row, every check is ok again: answered 200',
  });
});

test('a check that failed fewer than fall times does not hold back recovery', (t) => {
  const tracker = new HealthTracker({fall: 2, rise: 2, checks: [ETH0, WEB]});
  tracker.record(0, BAD);
  tracker.record(0, BAD);
  tracker.record(1, BAD); // once: not failing by itself

  tracker.record(0, OK);
  const transition = tracker.record(0, OK);

  t.is(transition?.health, 'ok');
});

test('the snapshot shows each check by name with its last result and streak', (t) => {
  const tracker = new HealthTracker({fall: 2, rise: 2, checks: [ETH0, WEB, DB]});
  t.deepEqual(tracker.snapshot(), {
    health: 'ok',
    checks: [
      {name: 'interface eth0', ok: true, detail: 'not run yet', consecutive: 0, health: 'ok'},
      {name: 'http http://127.0.0.1/health', ok: true, detail: 'not run yet', consecutive: 0, health: 'ok'},
      {name: 'command /usr/local/bin/check-db --quick', ok: true, detail: 'not run yet', consecutive: 0, health: 'ok'},
    ],
  });

  tracker.record(0, {ok: false, detail: 'eth0 has no carrier'});
  tracker.record(0, {ok: false, detail: 'eth0 has no carrier'});
  tracker.record(1, OK);

  const snapshot = tracker.snapshot();
  t.is(snapshot.health, 'failing');
  t.deepEqual(snapshot.checks[0], {name: 'interface eth0', ok: false, detail: 'eth0 has no carrier', consecutive: 2,
    health: 'failing'});
  t.deepEqual(snapshot.checks[1], {name: 'http http://127.0.0.1/health', ok: true, detail: 'fine', consecutive: 1,
    health: 'ok'});
});

test('a result for a check that does not exist is a programming error', (t) => {
  const tracker = new HealthTracker({fall: 2, rise: 2, checks: [ETH0]});

  t.throws(() => tracker.record(1, OK), {instanceOf: RangeError, message: 'no health check #1 (there are 1)'});
});

test('check names say the kind and what is checked', (t) => {
  t.deepEqual([ETH0, WEB, DB].map(healthCheckName),
    ['interface eth0', 'http http://127.0.0.1/health', 'command /usr/local/bin/check-db --quick']);
});

// ---- HealthMonitor ----

interface MonitorFixture {
  readonly clock: FakeClock;
  readonly probe: FakeHealthProbe;
  readonly monitor: HealthMonitor;
  readonly changes: Array<[Health, string]>;
}

function monitorFixture(t: ExecutionContext, settings: Partial<HealthSettings> = {}): MonitorFixture {
  const clock = new FakeClock();
  const probe = new FakeHealthProbe();
  const changes: Array<[Health, string]> = [];
  const monitor = new HealthMonitor({
    probe, clock, onChange: (health, reason) => changes.push([health, reason]),
    settings: {intervalMs: 1000, fall: 2, rise: 2, checks: [ETH0, WEB], ...settings},
  });
  t.teardown(() => monitor.stop());
  return {clock, probe, monitor, changes};
}

test('the monitor runs every check at start and then once per interval', async (t) => {
  const {clock, probe, monitor} = monitorFixture(t);

  monitor.start();
  await clock.advance(0);
  t.deepEqual(probe.runs, ['interface eth0', 'http http://127.0.0.1/health']);
  await clock.advance(999);
  t.is(probe.runs.length, 2);
  await clock.advance(1);
  t.is(probe.runs.length, 4);
  await clock.advance(3000);
  t.is(probe.runs.length, 10);
});

test('the monitor reports the flip to failing after fall rounds and back after rise rounds', async (t) => {
  const {clock, probe, monitor, changes} = monitorFixture(t);
  probe.answer('interface eth0', OK, {ok: false, detail: 'eth0 has no carrier'}, {ok: false, detail: 'eth0 has no carrier'},
    OK, OK);

  monitor.start();
  await clock.advance(1000);
  t.deepEqual(changes, []);
  await clock.advance(1000);
  t.deepEqual(changes, [['failing', 'interface eth0 failed 2 times in a row: eth0 has no carrier']]);
  t.is(monitor.health, 'failing');
  await clock.advance(1000);
  t.is(changes.length, 1);
  await clock.advance(1000);

  t.deepEqual(changes[1], ['ok', 'interface eth0 passed 2 times in a row, every check is ok again: fine']);
  t.is(monitor.snapshot().health, 'ok');
});

test('a check that does not answer fails at its timeout, is aborted, and the rounds keep to the interval',
  async (t) => {
    const {clock, probe, monitor} = monitorFixture(t);
    probe.answer('http http://127.0.0.1/health', 'hang');

    monitor.start();
    await clock.advance(299);
    t.is(probe.aborted, 0);
    await clock.advance(1);
    t.is(probe.aborted, 1);
    t.deepEqual(monitor.snapshot().checks[1], {name: 'http http://127.0.0.1/health', ok: false,
      detail: 'timed out after 300 ms', consecutive: 1, health: 'ok'});
    await clock.advance(700);

    t.is(probe.runs.length, 4, 'the second round starts at 1000 ms');
    await clock.advance(300);
    probe.assertNothingPending();
  });

test('an interface check that does not answer fails at the interval', async (t) => {
  const {clock, probe, monitor} = monitorFixture(t, {checks: [ETH0]});
  probe.answer('interface eth0', 'hang');

  monitor.start();
  await clock.advance(999);
  t.is(monitor.snapshot().checks[0]?.detail, 'not run yet');
  await clock.advance(1);

  t.is(monitor.snapshot().checks[0]?.detail, 'timed out after 1000 ms');
});

test('a probe that throws despite its contract counts as a failure', async (t) => {
  const {clock, monitor} = monitorFixture(t, {checks: [ETH0], fall: 1});
  const changes: string[] = [];
  const throwing = new HealthMonitor({
    probe: {run: () => Promise.reject(new Error('sysfs exploded'))}, clock,
    settings: {intervalMs: 1000, fall: 1, rise: 1, checks: [ETH0]}, onChange: (_, reason) => changes.push(reason),
  });
  t.teardown(() => throwing.stop());

  throwing.start();
  monitor.start();
  await clock.advance(0);

  t.deepEqual(changes, ['interface eth0 failed 1 time in a row: the probe failed: sysfs exploded']);
});

test('stop abandons the round in flight without counting it, and nothing runs afterwards', async (t) => {
  const {clock, probe, monitor, changes} = monitorFixture(t, {fall: 1});
  probe.answer('http http://127.0.0.1/health', 'hang');

  monitor.start();
  await clock.advance(100);
  await monitor.stop();
  await clock.advance(5000);

  t.is(probe.runs.length, 2);
  t.is(probe.aborted, 1);
  t.deepEqual(changes, []);
  t.is(monitor.snapshot().checks[1]?.detail, 'not run yet');
  t.is(clock.pendingSleepers(), 0);
});

test('start is idempotent and a monitor without checks runs nothing', async (t) => {
  const {clock, probe, monitor} = monitorFixture(t, {checks: []});

  monitor.start();
  monitor.start();
  await clock.advance(5000);

  t.deepEqual(probe.runs, []);
  t.is(clock.pendingSleepers(), 0);
  t.is(monitor.health, 'ok');
});

test('after a stall the next round runs at once, without catch-up rounds', async (t) => {
  const {clock, probe, monitor} = monitorFixture(t, {checks: [ETH0]});

  monitor.start();
  await clock.advance(0);
  await clock.jump(3500); // the process was stopped for 3.5 s
  t.is(probe.runs.length, 2);
  await clock.advance(999);
  t.is(probe.runs.length, 2);
  await clock.advance(1);

  t.is(probe.runs.length, 3);
});
