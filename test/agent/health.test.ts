// Health: fall/rise counting, the monitor loop on a fake clock, and the real probe against lo, a local HTTP server
// and real programs.

import test, {type ExecutionContext} from 'ava';
import {isProcessAlive} from '../../cli/lab/web.js';
import {chmod, mkdir, mkdtemp, readFile, rm, writeFile} from 'node:fs/promises';
import {createServer, type Server} from 'node:http';
import type {AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createExecaRunner} from '../../agent/adapters/execa-runner.js';
import {createSystemHealthProbe} from '../../agent/adapters/system-health-probe.js';
import type {HealthCheckSpec} from '../../agent/config/health-checks.js';
import {
  HealthMonitor, type HealthResult, type HealthSettings, HealthTracker, healthCheckName,
} from '../../agent/health.js';
import type {Health} from '../../agent/state-machine.js';
import {FakeClock} from '../fakes/fake-clock.js';
import {FakeHealthProbe} from '../fakes/fake-health-probe.js';
import {commandFailure, RecordingRunner} from '../fakes/recording-runner.js';

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

// ---- the real probe ----

const probe = createSystemHealthProbe(createExecaRunner());
const never = new AbortController().signal;

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'baton-health-'));
  t.teardown(() => rm(dir, {recursive: true, force: true}));
  return dir;
}

test('an interface check on lo passes, reading sysfs without running anything', async (t) => {
  const runner = new RecordingRunner();

  const result = await createSystemHealthProbe(runner).run({kind: 'interface', interface: 'lo'}, never);

  t.deepEqual(result, {ok: true, detail: 'lo is up with carrier'});
  t.deepEqual(runner.calls, []);
});

test('an interface check on a missing interface fails and names it', async (t) => {
  const result = await probe.run({kind: 'interface', interface: 'nosuch0'}, never);

  t.deepEqual(result, {ok: false, detail: 'nosuch0 does not exist in this network namespace'});
});

/** A fake /sys/class/net and /proc/self/net/dev with the given links; `own` lists the caller's namespace. */
async function fakeLinks(t: ExecutionContext, links: Record<string, {flags: string; carrier?: string; operstate: string}>,
  own = Object.keys(links)) {
  const dir = await tempDir(t);
  const sysClassNet = join(dir, 'class-net');
  await mkdir(sysClassNet);
  for (const [name, files] of Object.entries(links)) {
    await mkdir(join(sysClassNet, name));
    await writeFile(join(sysClassNet, name, 'flags'), `${files.flags}\n`);
    await writeFile(join(sysClassNet, name, 'operstate'), `${files.operstate}\n`);
    if (files.carrier !== undefined) await writeFile(join(sysClassNet, name, 'carrier'), `${files.carrier}\n`);
  }
  const procNetDev = join(dir, 'dev');
  await writeFile(procNetDev, 'Inter-|   Receive\n face |bytes\n' +
    own.map((name) => `${name.padStart(6)}: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n`).join(''));
  return {sysClassNet, procNetDev};
}

const sysfsCase = test.macro({
  async exec(t, link: {flags: string; carrier?: string; operstate: string}, expected: HealthResult) {
    const runner = new RecordingRunner();
    const paths = await fakeLinks(t, {lo: {flags: '0x9', carrier: '1', operstate: 'unknown'}, eth0: link});

    const result = await createSystemHealthProbe(runner, paths).run(ETH0, never);

    t.deepEqual(result, expected);
    t.deepEqual(runner.calls, []);
  },
  title: (title = '') => title,
});

test('sysfs: a link up with carrier passes', sysfsCase, {flags: '0x1003', carrier: '1', operstate: 'up'},
  {ok: true, detail: 'eth0 is up with carrier'});
test('sysfs: an administratively down link fails', sysfsCase, {flags: '0x1002', operstate: 'down'},
  {ok: false, detail: 'eth0 is administratively down'});
test('sysfs: an up link without carrier fails', sysfsCase, {flags: '0x1003', carrier: '0', operstate: 'lowerlayerdown'},
  {ok: false, detail: 'eth0 has no carrier'});
test('sysfs: a dormant link fails even with carrier', sysfsCase, {flags: '0x1003', carrier: '1', operstate: 'dormant'},
  {ok: false, detail: 'eth0 is dormant'});

test('when sysfs lists other links than this namespace has, ip link decides', async (t) => {
  // As after nsenter: /sys still shows the host's links, /proc/self/net/dev this namespace's.
  const paths = await fakeLinks(t, {lo: {flags: '0x9', carrier: '1', operstate: 'unknown'},
    eth0: {flags: '0x1003', carrier: '1', operstate: 'up'}}, ['lo', 'eth0', 'veth-b']);
  const runner = new RecordingRunner()
    .on('ip -j link show dev eth0', '[{"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP"],"operstate":"DOWN"}]');

  const result = await createSystemHealthProbe(runner, paths).run(ETH0, never);

  t.deepEqual(result, {ok: false, detail: 'eth0 has no carrier'});
  t.deepEqual(runner.calls, [{file: 'ip', args: ['-j', 'link', 'show', 'dev', 'eth0'], timeoutMs: 1000,
    interruptAfterMs: undefined}]);
});

const ipCase = test.macro({
  async exec(t, reply: string | Error, expected: HealthResult) {
    const paths = await fakeLinks(t, {}, ['lo', 'eth0']);
    const runner = new RecordingRunner().on('ip -j link show dev eth0',
      reply instanceof Error ? commandFailure('ip -j link show dev eth0', 1, reply.message) : reply);

    t.deepEqual(await createSystemHealthProbe(runner, paths).run(ETH0, never), expected);
  },
  title: (title = '') => title,
});

test('ip link: UP and LOWER_UP pass', ipCase,
  '[{"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP"}]',
  {ok: true, detail: 'eth0 is up with carrier'});
test('ip link: UNKNOWN operstate with LOWER_UP passes, as lo has', ipCase,
  '[{"ifname":"eth0","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN"}]',
  {ok: true, detail: 'eth0 is up with carrier'});
test('ip link: a link without UP is administratively down', ipCase,
  '[{"ifname":"eth0","flags":["BROADCAST","MULTICAST"],"operstate":"DOWN"}]',
  {ok: false, detail: 'eth0 is administratively down'});
test('ip link: a missing device is named', ipCase, new Error('Device "eth0" does not exist.'),
  {ok: false, detail: 'eth0 does not exist in this network namespace'});

// ---- http ----

async function httpServer(t: ExecutionContext): Promise<string> {
  const server: Server = createServer((request, response) => {
    switch (request.url) {
      case '/ok':
        response.end('ok');
        return;
      case '/unavailable':
        response.writeHead(503).end('down for maintenance');
        return;
      case '/moved':
        response.writeHead(301, {location: '/ok'}).end();
        return;
      case '/slow':
        setTimeout(() => response.end('late'), 2000).unref();
        return;
      default:
        response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function http(url: string, expectStatus = 200, timeoutMs = 1000): HealthCheckSpec {
  return {kind: 'http', url, expectStatus, timeoutMs};
}

test('an http check passes on the expected status', async (t) => {
  const base = await httpServer(t);

  t.deepEqual(await probe.run(http(`${base}/ok`), never), {ok: true, detail: `${base}/ok answered 200`});
  t.deepEqual(await probe.run(http(`${base}/unavailable`, 503), never),
    {ok: true, detail: `${base}/unavailable answered 503`});
});

test('an http check fails on another status and says both', async (t) => {
  const base = await httpServer(t);

  t.deepEqual(await probe.run(http(`${base}/unavailable`), never),
    {ok: false, detail: `${base}/unavailable answered 503, expected 200`});
});

test('an http check does not follow redirects', async (t) => {
  const base = await httpServer(t);

  t.deepEqual(await probe.run(http(`${base}/moved`), never), {ok: false, detail: `${base}/moved answered 301, expected 200`});
});

test('an http check that gets no answer in time fails with the timeout', async (t) => {
  const base = await httpServer(t);
  const started = performance.now();

  const result = await probe.run(http(`${base}/slow`, 200, 200), never);

  t.deepEqual(result, {ok: false, detail: 'timed out after 200 ms'});
  t.true(performance.now() - started < 1500);
});

test('an http check against a closed port fails with the connection error', async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));

  t.deepEqual(await probe.run(http(`http://127.0.0.1:${port}/`), never),
    {ok: false, detail: `http://127.0.0.1:${port}/: connect ECONNREFUSED 127.0.0.1:${port}`});
});

test('an http check gives up when its signal aborts', async (t) => {
  const base = await httpServer(t);
  const controller = new AbortController();

  const running = probe.run(http(`${base}/slow`, 200, 5000), controller.signal);
  setTimeout(() => controller.abort(), 50);

  t.deepEqual(await running, {ok: false, detail: 'stopped'});
});

// ---- command ----

async function script(t: ExecutionContext, name: string, body: string): Promise<string> {
  const path = join(await tempDir(t), name);
  await writeFile(path, `#!/bin/sh\n${body}\n`);
  await chmod(path, 0o755);
  return path;
}

function command(path: string, args: string[] = [], timeoutMs = 1000): HealthCheckSpec {
  return {kind: 'command', path, args, timeoutMs};
}

test('a command check passes when the program exits 0', async (t) => {
  t.deepEqual(await probe.run(command('/bin/true'), never), {ok: true, detail: '/bin/true exited 0'});
});

test('a command check fails when the program exits non-zero', async (t) => {
  t.deepEqual(await probe.run(command('/bin/false'), never), {ok: false, detail: '/bin/false exited 1'});
});

test('a failing command check gives the first line of stderr, and its args reach it unchanged', async (t) => {
  const path = await script(t, 'check-db', 'echo "database $1 is read-only" >&2\necho "second line" >&2\nexit 2');

  t.deepEqual(await probe.run(command(path, ['db one; rm -rf /']), never),
    {ok: false, detail: `${path} exited 2: database db one; rm -rf / is read-only`});
});

test('a command check that runs past its timeout fails at the timeout, even if a child holds its output', async (t) => {
  const dir = await tempDir(t);
  const pidFile = join(dir, 'sleep.pid');
  // The backgrounded sleep keeps stdout open; the runner stops the script's whole process group at the timeout.
  const path = await script(t, 'slow-check', `sleep 30 &\necho $! > '${pidFile}'\nwait`);
  t.teardown(async () => {
    const pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
    if (pid > 0 && isProcessAlive(pid)) process.kill(pid);
  });
  const started = performance.now();

  const result = await probe.run(command(path, [], 300), never);

  t.deepEqual(result, {ok: false, detail: 'timed out after 300 ms'});
  t.true(performance.now() - started < 2000);
});

test('a command that cannot run is a failure naming the reason', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'not-executable');
  await writeFile(path, '#!/bin/sh\n');

  const result = await probe.run(command(path), never);

  t.false(result.ok);
  t.regex(result.detail, /^cannot run `.*not-executable`: .*EACCES/);
});
