// The planned switchover on fakes: order of steps across both hosts, confirmation, rollback, refusals, dry run,
// switchback, resume, the journal, and recovery after an agent is killed mid-switch.

import test, {type ExecutionContext} from 'ava';
import type {SwitchProgress, SwitchResult, SwitchoverOptions} from '../../agent/control-protocol.js';
import {BatonError, isBatonError} from '../../agent/errors.js';
import type {FakeClock} from '../fakes/fake-clock.js';
import {createFakePair, type FakeHost, type FakePair} from '../fakes/fake-pair.js';
import {SERVICE_IP} from '../fakes/test-config.js';

const OPTIONS: SwitchoverOptions = {dryRun: false, strict: false, minRequests: undefined, confirmTimeoutS: undefined, pauseAfter: undefined};

async function settledPair(t: Parameters<typeof createFakePair>[0]): Promise<FakePair> {
  const pair = createFakePair(t);
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  return pair;
}

/** Runs the clock in 10 ms steps until the work settles; `each` runs after every step (e.g. to send requests). */
async function drive<T>(clock: FakeClock, work: Promise<T>, each: () => void = () => undefined, limitMs = 120_000): Promise<T> {
  let settled = false;
  const tracked = work.finally(() => {
    settled = true;
  });
  for (let elapsed = 0; !settled && elapsed < limitMs; elapsed += 10) {
    await clock.advance(10);
    each();
  }
  if (!settled) throw new Error(`did not settle within ${limitMs} ms of fake time`);
  return tracked;
}

/** Clients that send a request every step to whichever host serves, like the real world would. */
function clients(pair: FakePair): () => void {
  return () => {
    for (const host of [pair.primary, pair.backup]) if (host.network.addresses.has('192.0.2.100')) host.accessLog.request(1);
  };
}

async function switchover(pair: FakePair, from: FakeHost, options: Partial<SwitchoverOptions> = {}, each = clients(pair)): Promise<{result: SwitchResult; progress: SwitchProgress[]}> {
  const progress: SwitchProgress[] = [];
  const result = await drive(pair.clock, from.agent.switchover({...OPTIONS, ...options}, (p) => progress.push(p)), each);
  return {result, progress};
}

const stepLines = (progress: SwitchProgress[]): string[] =>
  progress.flatMap((p) => (p.kind === 'step' ? [`${p.action} ${p.step} on ${p.host.role} ${p.status}`] : []));

test('a switchover run on the primary moves the IP to the backup in the runbook order, confirms traffic, and releases the primary', async (t) => {
  const pair = await settledPair(t);
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  t.deepEqual(stepLines(progress), [
    'apply backup-net-down on backup ok',
    'apply assign-ip on backup ok',
    'apply primary-net-down on primary ok',
    'apply backup-net-up on backup ok',
    'apply confirm-traffic on backup ok',
  ]);
  t.true((result.confirmedRequests ?? 0) >= 3);
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'released');
  t.is(pair.backup.agent.state.name, 'active');
  t.is(pair.backup.agent.state.epoch, 2, 'the taker holds the IP under a new, higher epoch');
  t.deepEqual(pair.backup.store.state, {epoch: 2, released: false});
  t.deepEqual(pair.primary.store.state, {epoch: 1, released: true}, 'released survives a restart');
  t.is(pair.primary.journal.journal, undefined, 'journals are cleared at the end');
  t.is(pair.backup.journal.journal, undefined);
});

test('the address is removed on the primary before it is added on the backup: never on both', async (t) => {
  const pair = await settledPair(t);
  let both = 0;
  await switchover(pair, pair.primary, {}, () => {
    if (pair.primary.network.addresses.has('192.0.2.100') && pair.backup.network.addresses.has('192.0.2.100')) both += 1;
    clients(pair)();
  });
  t.is(both, 0);
  const order = [...pair.primary.network.actions().map((a) => `primary ${a}`), ...pair.backup.network.actions().map((a) => `backup ${a}`)];
  t.true(order.includes('primary removeAddress 192.0.2.100/24'));
  t.true(pair.backup.network.actions().includes('addAddress 192.0.2.100/24'));
});

test('a switchover run on the backup works the same, and a second one switches back', async (t) => {
  const pair = await settledPair(t);
  const first = await switchover(pair, pair.backup);
  t.is(first.result.outcome, 'done', first.result.reason);
  t.is(first.result.giver.role, 'primary');
  await pair.clock.advance(500);
  const back = await switchover(pair, pair.primary);
  t.is(back.result.outcome, 'done', back.result.reason);
  t.is(back.result.giver.role, 'backup', 'the switchback is the same plan with roles reversed');
  t.is(back.result.taker.role, 'primary');
  await pair.clock.advance(500);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.agent.state.name, 'active');
  t.is(pair.backup.agent.state.name, 'released');
  t.is(pair.primary.agent.state.epoch, 3);
});

test('no traffic on the backup: confirmation times out, the pair rolls back and the primary serves again', async (t) => {
  const pair = await settledPair(t);
  // Only the primary's web server answers: requests reach the backup's IP but nothing is logged there.
  const onlyPrimary = (): void => {
    if (pair.primary.network.addresses.has('192.0.2.100')) pair.primary.accessLog.request(1);
  };
  const {result, progress} = await switchover(pair, pair.primary, {confirmTimeoutS: 2}, onlyPrimary);
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'confirm-traffic');
  t.regex(result.reason ?? '', /^confirm-traffic failed on the backup: 0 of 3 requests arrived within 2 s/);
  t.deepEqual(stepLines(progress).slice(-6), [
    'apply confirm-traffic on backup failed',
    'undo backup-net-up on backup ok',
    'undo primary-net-down on primary ok',
    'undo assign-ip on backup ok',
    'undo backup-net-down on backup ok',
    'check confirm-traffic on primary ok',
  ]);
  t.regex(result.rollbackCheck ?? '', /primary \(web-primary\) serves again: \d+ request\(s\)/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'active');
  t.is(pair.backup.agent.state.name, 'standby');
});

test('a failing step rolls back only what was done, and names the step', async (t) => {
  const pair = await settledPair(t);
  pair.backup.network.failNext('addAddress');
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'backup-net-up');
  t.regex(result.reason ?? '', /backup-net-up failed on the backup: .*addAddress failed \(injected\)/);
  t.deepEqual(stepLines(progress).filter((l) => l.startsWith('undo')), [
    'undo backup-net-up on backup ok',
    'undo primary-net-down on primary ok',
    'undo assign-ip on backup ok',
    'undo backup-net-down on backup ok',
  ]);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'active');
  t.is(pair.backup.agent.state.name, 'standby');
});

test('the journal is written before each step with the step pending, and cleared at the end', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  const pending = pair.backup.journal.history.flatMap((j) => (j.pending === undefined ? [] : [j.pending]));
  t.deepEqual(pending, ['backup-net-down', 'assign-ip', 'backup-net-up']);
  t.deepEqual(pair.primary.journal.history.flatMap((j) => (j.pending === undefined ? [] : [j.pending])), ['primary-net-down']);
  t.true(pair.primary.journal.history.every((j) => j.coordinator));
});

test('a taker whose journal is read-only refuses to begin, says why, and is not left in the switch', async (t) => {
  const pair = await settledPair(t);
  pair.backup.journal.readOnly = true;
  const error = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined), clients(pair)));
  t.true(isBatonError(error, 'STATE_UNWRITABLE'), error?.message);
  t.regex(error?.message ?? '', /^the backup \S+ cannot write its switch journal in state_dir \S+: EROFS: read-only file system.*a switch needs a writable state_dir/);
  await pair.clock.advance(500);
  t.is((await pair.backup.agent.status()).switching, undefined, 'the refused switch is not left running on the taker');
  t.is(pair.backup.agent.state.name, 'standby');
  t.is(pair.primary.agent.state.name, 'active');
  pair.backup.journal.readOnly = false;
  const {result} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', 'once writable again, the next switch works');
});

test('the taker\'s journal turning read-only once its IP is up: rolled back, the IP on the primary only, nothing left switching', async (t) => {
  const pair = await settledPair(t);
  // backup-net-up is journalled ahead, at the end of assign-ip; the next write, after the IP is up, fails.
  pair.backup.journal.readOnlyAfter = (journal) => journal.pending === 'backup-net-up';
  let both = 0;
  const {result, progress} = await switchover(pair, pair.primary, {}, () => {
    if (pair.primary.network.addresses.has('192.0.2.100') && pair.backup.network.addresses.has('192.0.2.100')) both += 1;
    clients(pair)();
  });
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'backup-net-up');
  t.regex(result.reason ?? '', /backup-net-up failed on the backup: the backup \S+ cannot write its switch journal/);
  t.true(stepLines(progress).includes('undo backup-net-up on backup ok'), 'the undo goes ahead without its journal entry');
  t.is(both, 0, 'never on both hosts');
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
  await pair.clock.advance(500);
  t.is(pair.backup.agent.state.name, 'standby', 'the journal that cannot be cleared does not keep the taker switching');
  t.is(pair.primary.agent.state.name, 'active');
  t.is((await pair.backup.agent.status()).switching, undefined);
});

test('the backup\'s wall clock an hour ahead: each side rejects the other, nobody takes the IP, a switchover is refused naming the clocks', async (t) => {
  const pair = await settledPair(t);
  pair.backup.wallSkewMs = 3_600_000;
  await pair.clock.advance(3000);
  const primary = await pair.primary.agent.status();
  const backup = await pair.backup.agent.status();
  t.false(primary.peer.alive);
  t.false(backup.peer.alive);
  t.true(primary.beacons.rejected.future > 0);
  t.true(backup.beacons.rejected.stale > 0);
  t.is(primary.peer.rejectedSinceValid?.reason, 'future');
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'), 'the standby probed the IP, found it alive, and took nothing');
  const error = await t.throwsAsync(pair.primary.agent.switchover(OPTIONS, () => undefined));
  t.true(isBatonError(error, 'PEER_UNREACHABLE'));
  t.regex(error?.message ?? '', /^the peer backup at \S+ is not alive \(\d+ datagram\(s\) from its address rejected since the last valid one, the latest future: sent \d+ ms in the future, window is 5000 ms \(clocks apart\?\); check both hosts' clocks/);
  pair.backup.wallSkewMs = 0;
  await pair.clock.advance(1000);
  t.true((await pair.primary.agent.status()).peer.alive, 'clocks together again, the pair is whole');
});

test('the peer agent restarted while a switch waits: the coordinator notices the new boot and rolls back saying so', async (t) => {
  const pair = await settledPair(t);
  const run = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'backup-net-down', seconds: 3}}, () => undefined);
  await pair.clock.advance(300);
  t.deepEqual(pair.backup.journal.journal?.applied, ['backup-net-down']);
  // Killed and started again within the dead timer: the peer never looks dead, only its boot id changes.
  await pair.backup.kill();
  await pair.backup.restart().start();
  const result = await drive(pair.clock, run, clients(pair));
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'assign-ip');
  t.regex(result.reason ?? '', /^assign-ip failed on the backup: the backup's agent restarted during the switch \(boot backup1id1, now backup2id1\)/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
  await pair.clock.advance(1000);
  t.is(pair.primary.agent.state.name, 'active');
  t.is(pair.backup.agent.state.name, 'standby');
  t.is(pair.backup.journal.journal, undefined, 'the restarted backup recovered and cleared its journal');
});

test('--dry-run prints each host\'s commands and changes nothing', async (t) => {
  const pair = await settledPair(t);
  const before = [pair.primary.network.actions().length, pair.backup.network.actions().length];
  const {result} = await switchover(pair, pair.primary, {dryRun: true});
  t.is(result.outcome, 'dry-run');
  t.deepEqual(result.plan?.map((s) => `${s.step} on ${s.host.role}: ${s.commands.join('; ')}`), [
    'backup-net-down on backup: removeAddress 192.0.2.100/24',
    'assign-ip on backup: ',
    'primary-net-down on primary: removeAddress 192.0.2.100/24',
    'backup-net-up on backup: addAddress 192.0.2.100/24; announce 192.0.2.100/24',
    'confirm-traffic on backup: ',
  ]);
  t.deepEqual([pair.primary.network.actions().length, pair.backup.network.actions().length], before);
  t.is(pair.primary.agent.state.name, 'active');
});

test('refuses when the peer is not alive, naming it', async (t) => {
  const pair = await settledPair(t);
  pair.backup.transport.connected = false;
  await pair.clock.advance(1500);
  const error = await t.throwsAsync(pair.primary.agent.switchover(OPTIONS, () => undefined));
  t.true(isBatonError(error, 'PEER_UNREACHABLE'));
  t.regex(error?.message ?? '', /the peer backup at 192\.0\.2\.12:7411 is not alive/);
});

test('refuses when the standby is in fault', async (t) => {
  const pair = createFakePair(t);
  pair.backup.network.failNext('isAddressInUse');
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  t.is(pair.backup.agent.state.name, 'standby', 'a failed probe at start is not a fault for a backup');
  // A standby in fault: the primary vanished from the network, and the backup's takeover failed on its interface.
  pair.backup.network.failNext('addAddress');
  pair.primary.transport.connected = false;
  pair.primary.network.linkUp = false;
  await pair.clock.advance(2500);
  pair.primary.transport.connected = true;
  pair.primary.network.linkUp = true;
  await pair.clock.advance(500);
  if (pair.backup.agent.state.name !== 'fault') return t.fail(`expected the backup in fault, it is ${pair.backup.agent.state.name}`);
  const error = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined)));
  t.regex(error?.message ?? '', /the backup is in fault/);
});

test('refuses a second switchover while one runs', async (t) => {
  const pair = await settledPair(t);
  const first = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'assign-ip', seconds: 2}}, () => undefined);
  await pair.clock.advance(200);
  const error = await t.throwsAsync(pair.primary.agent.switchover(OPTIONS, () => undefined));
  t.true(isBatonError(error, 'SWITCH_IN_PROGRESS'));
  await drive(pair.clock, first, clients(pair));
});

test('--strict refuses when the software bases differ, before changing anything', async (t) => {
  const pair = await settledPair(t);
  pair.backup.hostInfo.info = {...pair.backup.hostInfo.info, versions: {nginx: '1.22.1', openssl: '3.0.15', mysql: '8.0.32'}};
  pair.primary.hostInfo.info = {...pair.primary.hostInfo.info, versions: {nginx: '1.22.1', openssl: '3.0.15', mysql: '8.0.36'}};
  const progress: SwitchProgress[] = [];
  const error = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover({...OPTIONS, strict: true}, (p) => progress.push(p))));
  t.true(isBatonError(error, 'PREFLIGHT_REFUSED'));
  t.regex(error?.message ?? '', /mysql/);
  t.true(progress.some((p) => p.kind === 'preflight' && p.text.includes('mysql')));
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.deepEqual(pair.backup.network.actions().filter((a) => a !== 'isAddressInUse 192.0.2.100/24'), []);
});

test('host information that cannot be collected makes the preflight a warning, or a refusal under --strict', async (t) => {
  const pair = await settledPair(t);
  pair.backup.hostInfo.failure = new BatonError('COMMAND_TIMEOUT', 'collecting host info took more than 1500 ms: one of the version probes hangs');
  const strict = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover({...OPTIONS, strict: true}, () => undefined)));
  t.true(isBatonError(strict, 'PREFLIGHT_REFUSED'));
  t.regex(strict?.message ?? '', /could not be compared: the backup: collecting host info took more than 1500 ms/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));

  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done');
  t.true(progress.some((p) => p.kind === 'preflight' && /incomplete[\s\S]*warning: the backup: collecting host info/.test(p.text)));
});

test('an unreadable access log on the backup is refused before the switch starts', async (t) => {
  const pair = await settledPair(t);
  pair.backup.accessLog.readable = false;
  const error = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined)));
  t.true(isBatonError(error, 'ACCESS_LOG_UNREADABLE'));
  t.regex(error?.message ?? '', /access\.log/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
});

test('resume turns a released host into a standby, and a released host never takes the IP back by itself', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'released');
  pair.backup.transport.connected = false;
  await pair.clock.advance(5000);
  t.is(pair.primary.agent.state.name, 'released', 'the peer is silent, but released means hands off');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  pair.backup.transport.connected = true;
  await pair.clock.advance(500);
  const resumed = await pair.primary.agent.resume();
  t.is(resumed.state, 'standby');
  await t.throwsAsync(pair.primary.agent.resume(), {message: /not released/});
});

test('the backup killed after primary-net-down: the primary takes the IP back, and the restarted backup undoes its part', async (t) => {
  const pair = await settledPair(t);
  const run = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'primary-net-down', seconds: 3}}, () => undefined);
  await pair.clock.advance(300);
  t.false(pair.primary.network.addresses.has('192.0.2.100'), 'paused after primary-net-down');
  t.deepEqual(pair.backup.journal.journal?.applied, ['backup-net-down', 'assign-ip']);
  // SIGKILL: the backup's agent vanishes without a word; its interface and journal stay.
  await pair.backup.kill();
  const result = await drive(pair.clock, run, clients(pair));
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'backup-net-up');
  t.true(pair.primary.network.addresses.has('192.0.2.100'), 'the primary serves again');

  const restarted = pair.backup.restart();
  await restarted.start();
  await pair.clock.advance(2000);
  t.is(restarted.state.name, 'standby');
  t.is(pair.backup.journal.journal, undefined);
  const status = await restarted.status();
  t.is(status.lastSwitch?.outcome, 'interrupted');
  t.regex(status.lastSwitch?.reason ?? '', /interrupted by a restart of this agent \(taker, after assign-ip, before or during backup-net-up\)/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
});

test('the primary (coordinating) killed after primary-net-down: the backup abandons the switch and takes the free IP over', async (t) => {
  const pair = await settledPair(t);
  void pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'primary-net-down', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  await pair.primary.kill();
  await pair.clock.advance(4000);
  t.true(pair.backup.network.addresses.has('192.0.2.100'), 'nobody served: the backup took over');
  t.is(pair.backup.agent.state.name, 'active');
  t.regex((await pair.backup.agent.status()).lastSwitch?.reason ?? '', /interrupted: the peer went silent/);

  // The primary comes back (restart after SIGKILL): its journal says it had released the IP; the backup holds it.
  const restarted = pair.primary.restart();
  await restarted.start();
  await pair.clock.advance(2000);
  t.is(restarted.state.name, 'standby');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.regex((await restarted.status()).lastSwitch?.reason ?? '', /the peer active holds the service IP/);
});

test('the backup killed during a 30 s pause: the primary cuts the pause short, keeps the IP and rolls back', async (t) => {
  const pair = await settledPair(t);
  const progress: SwitchProgress[] = [];
  const run = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'assign-ip', seconds: 30}}, (p) => progress.push(p));
  await pair.clock.advance(300);
  t.deepEqual(pair.backup.journal.journal?.applied, ['backup-net-down', 'assign-ip']);
  await pair.backup.kill();
  // dead_after_ms is 1 s: the switch is over within a few seconds, not after the 30 s pause.
  const result = await drive(pair.clock, run, clients(pair), 5000);
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'primary-net-down');
  t.regex(result.reason ?? '', /the backup went silent/);
  t.true(progress.some((p) => p.kind === 'note' && /^pause ended early: the backup went silent/.test(p.text)));
  t.false(stepLines(progress).includes('apply primary-net-down on primary ok'), 'the primary never released the IP');
  t.false(stepLines(progress).some((line) => line.startsWith('undo primary-net-down')), 'a step never started is not undone');
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.agent.state.name, 'active');
});

test('the backup restarted (a new boot) during the pause: the primary notices before the dead timer and rolls back', async (t) => {
  const pair = await settledPair(t);
  const run = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'backup-net-down', seconds: 30}}, () => undefined);
  await pair.clock.advance(300);
  await pair.backup.kill();
  const restarted = pair.backup.restart();
  await restarted.start();
  const result = await drive(pair.clock, run, clients(pair), 5000);
  t.is(result.outcome, 'rolled-back');
  t.is(result.failedStep, 'assign-ip');
  t.regex(result.reason ?? '', /the backup's agent restarted during the switch/);
  await pair.clock.advance(2000);
  t.is(pair.primary.agent.state.name, 'active');
  t.is(restarted.state.name, 'standby');
  t.is((await restarted.status()).lastSwitch?.outcome, 'interrupted');
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
});

/** Runs the clock in 10 ms steps for `ms`, with clients, and returns the most hosts that held the IP at once. */
async function mostHolders(pair: FakePair, ms: number): Promise<number> {
  let most = 0;
  for (let elapsed = 0; elapsed < ms; elapsed += 10) {
    await pair.clock.advance(10);
    clients(pair)();
    most = Math.max(most, pair.segment.holders('192.0.2.100').length);
  }
  return most;
}

test('the backup killed after backup-net-up: the primary does not take back the IP that the backup\'s kernel still holds', async (t) => {
  const pair = await settledPair(t);
  const run = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'backup-net-up', seconds: 30}}, () => undefined);
  await pair.clock.advance(300);
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
  await pair.backup.kill();
  let most = 0;
  const result = await drive(pair.clock, run, () => {
    clients(pair)();
    most = Math.max(most, pair.segment.holders('192.0.2.100').length);
  }, 5000);
  t.is(result.outcome, 'rolled-back');
  t.regex(result.rollbackCheck ?? '', /^primary \(web-primary\) did not take the service IP back: undo primary-net-down: not taken back: 192\.0\.2\.100 answers ARP from another host$/);
  t.is(most, 1, 'never on both hosts');
  t.true(pair.backup.network.addresses.has('192.0.2.100'), 'the backup\'s kernel serves on');
  t.is(await mostHolders(pair, 3000), 1, 'the primary, standby, does not take over an IP that answers');
  t.is(pair.primary.agent.state.name, 'standby');

  const restarted = pair.backup.restart();
  await restarted.start();
  t.is(await mostHolders(pair, 2000), 1);
  t.is(restarted.state.name, 'active');
  t.is(pair.primary.agent.state.name, 'standby');
});

test('the backup coordinating a switch killed after backup-net-up: the primary abandons it without taking the IP back', async (t) => {
  const pair = await settledPair(t);
  void pair.backup.agent.switchover({...OPTIONS, pauseAfter: {step: 'backup-net-up', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  await pair.backup.kill();
  t.is(await mostHolders(pair, 4000), 1, 'never on both hosts');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.agent.state.name, 'standby');
  const last = (await pair.primary.agent.status()).lastSwitch;
  t.is(last?.outcome, 'interrupted');
  t.regex(last?.reason ?? '', /interrupted: the peer went silent; this host does not serve: undo primary-net-down: not taken back: 192\.0\.2\.100 answers ARP from another host$/);

  const restarted = pair.backup.restart();
  await restarted.start();
  t.is(await mostHolders(pair, 2000), 1);
  t.is(restarted.state.name, 'active');
});

test('a giver killed before any of its steps says so when it restarts, and keeps serving', async (t) => {
  const pair = createFakePair(t);
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  void pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'assign-ip', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  t.deepEqual(pair.primary.journal.journal?.applied, [], 'the giver has joined and applied nothing');
  await pair.primary.kill();
  const restarted = pair.primary.restart();
  await restarted.start();
  t.is(await mostHolders(pair, 3000), 1);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.journal.journal, undefined);
  t.regex((await restarted.status()).lastSwitch?.reason ?? '', /interrupted by a restart of this agent \(giver, before any of its steps\); this host serves and keeps the service IP$/);
});

const LINK_MODE = {config: {service: {ip: SERVICE_IP, interface: 'eth0', mode: 'link' as const}}};

/** A link-mode pair in a switchover the primary asked for, held 30 s after primary-net-down. */
async function linkPairPausedAfterPrimaryNetDown(t: ExecutionContext): Promise<FakePair> {
  const pair = createFakePair(t, {primary: LINK_MODE, backup: LINK_MODE});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  void pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'primary-net-down', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  return pair;
}

test('link mode: the giver restarted after primary-net-down probes with its link up and the address off, and takes the free IP back', async (t) => {
  const pair = await linkPairPausedAfterPrimaryNetDown(t);
  t.false(pair.primary.network.linkUp, 'the giver\'s link is down, the address still on it');
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  // Killed and restarted at once: the backup abandons on the new boot and undoes its part; nobody serves.
  await pair.primary.kill();
  const restarted = pair.primary.restart();
  await restarted.start();
  t.is(await mostHolders(pair, 3000), 1);
  t.true(pair.primary.network.linkUp);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.journal.journal, undefined);
  t.is(restarted.state.name, 'active');
  t.regex((await restarted.status()).lastSwitch?.reason ?? '', /\(giver, after primary-net-down\); this host had released the service IP and took it back/);
  t.is(pair.backup.agent.state.name, 'standby');
});

test('link mode: the giver restarted after the taker took the IP over brings its link up without the address, ready as a standby', async (t) => {
  const pair = await linkPairPausedAfterPrimaryNetDown(t);
  await pair.primary.kill();
  t.is(await mostHolders(pair, 4000), 1);
  t.is(pair.backup.agent.state.name, 'active', 'nobody served: the backup took the IP over');

  const restarted = pair.primary.restart();
  await restarted.start();
  t.is(await mostHolders(pair, 2000), 1);
  t.is(restarted.state.name, 'standby');
  t.is(pair.primary.journal.journal, undefined);
  t.true(pair.primary.network.linkUp);
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.regex((await restarted.status()).lastSwitch?.reason ?? '', /the peer active holds the service IP/);
});

test('a restarted giver that cannot probe the IP leaves it alone, clears its journal and says why', async (t) => {
  const pair = await settledPair(t);
  void pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'primary-net-down', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  await pair.primary.kill();
  pair.primary.network.failNext('isAddressInUse');
  const restarted = pair.primary.restart();
  await restarted.start();
  t.is(await mostHolders(pair, 3000), 1, 'the pair\'s own rules then give the IP to one host');
  t.is(pair.primary.journal.journal, undefined);
  t.regex((await restarted.status()).lastSwitch?.reason ?? '', /had released the service IP and leaves it: it could not tell whether the IP is free: isAddressInUse failed \(injected\)$/);
});

test('both agents killed after primary-net-down of a switchback and restarted together: only the primary takes the IP', async (t) => {
  const pair = await settledPair(t);
  t.is((await switchover(pair, pair.primary)).result.outcome, 'done');
  await pair.primary.agent.resume();
  // The switchback: the backup gives, the primary (coordinating) takes.
  void pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'primary-net-down', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  t.deepEqual(pair.segment.holders('192.0.2.100'), [], 'nobody holds the IP in the pause');
  await pair.primary.kill();
  await pair.backup.kill();
  // Started together, each hears the other before deciding; the backup's recovery comes first.
  const backup = pair.backup.restart();
  const primary = pair.primary.restart();
  await backup.start();
  await primary.start();
  t.is(await mostHolders(pair, 3000), 1, 'the backup, which had released the IP, leaves it to the live primary');
  t.is(primary.state.name, 'active');
  t.is(backup.state.name, 'standby');
  t.regex((await backup.status()).lastSwitch?.reason ?? '', /\(giver, after primary-net-down\); this host had released the service IP and leaves it: the primary is alive \(starting\) and takes the service IP itself$/);
});

const CHECK = {kind: 'command', path: '/usr/local/bin/check-app', args: [], timeoutMs: 500} as const;
const HEALTH = {intervalMs: 1000, fall: 2, rise: 2, checks: [CHECK]};

test('an active host whose health checks fail hands the IP over through a confirmed switchover, then waits in fault', async (t) => {
  const pair = createFakePair(t, {primary: {config: {health: HEALTH}}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  pair.primary.healthProbe.answer('command /usr/local/bin/check-app', {ok: false, detail: 'check-app exited 1: database unreachable'});
  await drive(pair.clock, (async () => {
    while (!pair.backup.network.addresses.has('192.0.2.100') || pair.primary.agent.state.name === 'switching') await pair.clock.sleep(50);
  })(), clients(pair), 30_000);
  await pair.clock.advance(500);
  t.is(pair.backup.agent.state.name, 'active');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.agent.state.name, 'fault');
  t.regex(pair.primary.agent.state.reason, /handed the service IP over because health checks fail/);
  t.true(pair.primary.logs.some((l) => l.includes('(health) failing: ') && l.includes('database unreachable')));
  t.true(pair.backup.accessLog !== undefined);

  pair.primary.healthProbe.answer('command /usr/local/bin/check-app', {ok: true, detail: 'ok'});
  await pair.clock.advance(3000);
  t.is(pair.primary.agent.state.name, 'standby', 'healthy again: ready to take over, but no preemption');
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
});

test('a standby whose health checks fail goes to fault and never takes the IP, even when the active host dies', async (t) => {
  const pair = createFakePair(t, {backup: {config: {health: HEALTH}}});
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(1500);
  pair.backup.healthProbe.answer('command /usr/local/bin/check-app', {ok: false, detail: 'disk full'});
  await pair.clock.advance(2500);
  t.is(pair.backup.agent.state.name, 'fault');
  const refused = await t.throwsAsync(drive(pair.clock, pair.primary.agent.switchover(OPTIONS, () => undefined)));
  t.regex(refused?.message ?? '', /in fault|health checks fail/);
  await pair.primary.kill();
  pair.primary.network.linkUp = false;
  await pair.clock.advance(5000);
  t.is(pair.backup.agent.state.name, 'fault');
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
});

test('rehearsal helpers: resume the peer from here, and make the active host drop its link for a while', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  t.is(pair.primary.agent.state.name, 'released');
  const resumed = await drive(pair.clock, pair.backup.agent.resume(true));
  t.is(resumed.state, 'standby', 'the backup resumed the primary over the peer channel');
  t.is(pair.primary.agent.state.name, 'standby');

  const failed = await drive(pair.clock, pair.primary.agent.failActive(3));
  t.deepEqual(failed, {host: {role: 'backup', host: 'web-backup'}, seconds: 3}, 'the request went to the active peer');
  t.false(pair.backup.network.linkUp);
  await pair.clock.advance(3100);
  t.true(pair.backup.network.linkUp, 'the link came back by itself');
  await t.throwsAsync(pair.backup.agent.resume(false), {message: /not released/});
});

test('a released host that restarts (reboot, agent upgrade) is still released, until resume', async (t) => {
  const pair = await settledPair(t);
  await switchover(pair, pair.primary);
  await pair.clock.advance(500);
  await pair.primary.kill();
  const restarted = pair.primary.restart();
  await restarted.start();
  await pair.clock.advance(2000);
  t.is(restarted.state.name, 'released');
  await drive(pair.clock, restarted.resume());
  t.is(restarted.state.name, 'standby');
  t.deepEqual(pair.primary.store.state?.released, false);
});

test('when the backup cannot take the IP down in a rollback, the primary does not take it back while it still answers', async (t) => {
  const pair = await settledPair(t);
  // Confirmation fails (nothing logged on the backup), and once the IP is up there its `ip addr del` fails too.
  let armed = false;
  const onlyPrimary = (): void => {
    if (pair.primary.network.addresses.has('192.0.2.100')) pair.primary.accessLog.request(1);
    if (!armed && pair.backup.network.addresses.has('192.0.2.100')) {
      armed = true;
      pair.backup.network.failNext('removeAddress');
    }
  };
  const {result, progress} = await switchover(pair, pair.primary, {confirmTimeoutS: 2}, onlyPrimary);
  t.is(result.outcome, 'rolled-back');
  t.deepEqual(stepLines(progress).filter((l) => l.startsWith('undo')).slice(0, 2), [
    'undo backup-net-up on backup failed',
    'undo primary-net-down on primary failed',
  ]);
  t.regex(result.rollbackCheck ?? '', /did not take the service IP back: undo primary-net-down: not taken back: (the peer \w+ holds the service IP|192\.0\.2\.100 answers ARP from another host)$/);
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
  // The pair settles on the one host that serves; the primary never adds the IP back beside it.
  await pair.clock.advance(3000);
  t.deepEqual([pair.primary.network.addresses.has('192.0.2.100'), pair.backup.network.addresses.has('192.0.2.100')], [false, true]);
  t.deepEqual([pair.primary.agent.state.name, pair.backup.agent.state.name], ['standby', 'active']);
});
