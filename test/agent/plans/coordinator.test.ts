// The planned switchover on fakes, end to end from the coordinating host: order of steps across both hosts,
// confirmation, rollback of what was applied, refusals, dry run, switchback and the journal.

import test from 'ava';
import type {SwitchProgress} from '../../../agent/control-protocol.js';
import {BatonError, isBatonError} from '../../../agent/errors.js';
import type {Config} from '../../../agent/config/schema.js';
import {decodeDatagram, encodeMessage} from '../../../agent/peer/beacon-codec.js';
import {createFakePair} from '../../fakes/fake-pair.js';
import {BACKUP_ADDRESS, SERVICE_IP, testConfig, testKey, testKeyring} from '../../fakes/test-config.js';
import {clients, drive, OPTIONS, settledPair, stepLines, switchover} from '../../fakes/switch-driver.js';

test('a switchover run on the primary moves the IP to the backup in the runbook order, confirms traffic, and releases the primary', async (t) => {
  const pair = await settledPair(t);
  const {result, progress} = await switchover(pair, pair.primary);
  t.is(result.outcome, 'done', result.reason);
  t.deepEqual(stepLines(progress), [
    'apply backup-net-down on backup ok',
    'apply assign-ip on backup ok',
    'apply forward-strays on backup ok',
    'apply hold-connections on primary ok',
    'apply primary-net-down on primary ok',
    'apply backup-net-up on backup ok',
    'apply confirm-traffic on backup ok',
    'apply drain-connections on primary ok',
    'apply end-forwarding on backup ok',
    'apply end-hold on primary ok',
  ]);
  t.true((result.confirmedRequests ?? 0) >= 3);
  t.deepEqual(result.drain, {left: 0, ms: 0, graceful: undefined, problems: []});
  t.deepEqual(pair.backup.drain.journal, ['forward 192.0.2.100 to 192.0.2.11', 'unforward'], 'the taker sent strays to the giver\'s own address');
  t.deepEqual(pair.primary.drain.journal, ['hold 192.0.2.100 as 192.0.2.11', 'unhold 192.0.2.100']);
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
  t.regex(result.reason ?? '', /^confirm-traffic failed on the backup: 0 of 3 client requests arrived within 2 s/);
  t.deepEqual(stepLines(progress).slice(-8), [
    'apply confirm-traffic on backup failed',
    'undo backup-net-up on backup ok',
    'undo primary-net-down on primary ok',
    'undo hold-connections on primary ok',
    'undo forward-strays on backup ok',
    'undo assign-ip on backup ok',
    'undo backup-net-down on backup ok',
    'check confirm-traffic on primary ok',
  ]);
  t.deepEqual([pair.primary.drain.held, pair.backup.drain.forwardingTo], [undefined, undefined], 'the drain\'s preparations are taken back');
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
    'undo hold-connections on primary ok',
    'undo forward-strays on backup ok',
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
  t.deepEqual(pending, ['backup-net-down', 'assign-ip', 'forward-strays', 'backup-net-up', 'end-forwarding']);
  t.deepEqual(pair.primary.journal.history.flatMap((j) => (j.pending === undefined ? [] : [j.pending])), ['hold-connections', 'primary-net-down', 'drain-connections', 'end-hold']);
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

/** Both hosts with heartbeat.replay_protection: acknowledged. */
function acknowledged(role: 'primary' | 'backup'): {config: Partial<Config>} {
  const config = testConfig(role);
  return {config: {heartbeat: {...config.heartbeat, replayProtection: 'acknowledged'}}};
}

test('replay_protection acknowledged: the backup\'s wall clock an hour ahead, then a day behind, changes nothing: both stay alive and a switchover is done', async (t) => {
  const pair = await settledPair(t, {primary: acknowledged('primary'), backup: acknowledged('backup')});
  // Each side's first beacon acknowledged nothing yet: counted at start-up, and no more after.
  const rejected = async (host: typeof pair.primary): Promise<number> => Object.values((await host.agent.status()).beacons.rejected).reduce((a, b) => a + b, 0);
  const atStart = {primary: await rejected(pair.primary), backup: await rejected(pair.backup)};
  pair.backup.wallSkewMs = 3_600_000;
  await pair.clock.advance(3000);
  t.true((await pair.primary.agent.status()).peer.alive);
  t.true((await pair.backup.agent.status()).peer.alive);
  t.is(await rejected(pair.primary), atStart.primary, 'the primary rejected nothing since');
  t.is(await rejected(pair.backup), atStart.backup, 'the backup rejected nothing since');
  pair.backup.wallSkewMs = -86_400_000;
  const {result} = await switchover(pair, pair.primary, {}, clients(pair));
  t.is(result.outcome, 'done', result.reason);
  t.true(pair.backup.network.addresses.has('192.0.2.100'));
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
});

test('replay_protection acknowledged: a peer whose beacons acknowledge nothing counts as dead, and the log says why and what to do', async (t) => {
  const pair = createFakePair(t, {primary: acknowledged('primary'), backup: acknowledged('backup')});
  // The backup's beacons reach the primary without their ack: an agent that does not acknowledge.
  pair.backup.transport.lose = (datagram) => {
    const decoded = decodeDatagram(datagram, testKeyring(), 'web', pair.clock.wallNow());
    if (!decoded.ok || decoded.message.kind !== 'beacon') return false;
    pair.primary.transport.inject(encodeMessage({kind: 'beacon', beacon: {...decoded.message.beacon, ack: undefined}}, testKey()), BACKUP_ADDRESS);
    return true;
  };
  await pair.primary.agent.start();
  await pair.backup.agent.start();
  await pair.clock.advance(3000);
  const primary = await pair.primary.agent.status();
  t.false(primary.peer.alive);
  t.true(primary.beacons.rejected.unacknowledged > 5);
  t.true((await pair.backup.agent.status()).peer.alive, 'the backup hears acknowledgements from the primary');
  const warnings = pair.primary.logs.filter((line) => line.includes('acknowledge no datagram of this agent'));
  t.is(warnings.length, 1, 'said once for this run of the peer');
  t.regex(warnings[0] ?? '', /\(peer\) backup boot \S+: 5 beacons in a row acknowledge no datagram of this agent: it does not hear this host \(UDP to 192\.0\.2\.12 port 7411 blocked or misrouted\?\), or its agent does not acknowledge\. With heartbeat\.replay_protection: acknowledged a peer is alive only while its beacons acknowledge ours, so it counts as dead until they do/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'), 'the primary keeps serving');
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
  const error = await t.throwsAsync(pair.primary.agent.switchover(OPTIONS, () => undefined));
  t.true(isBatonError(error, 'PEER_UNREACHABLE'));
  t.regex(error?.message ?? '', /latest unacknowledged: beacon \d+ acknowledges no datagram of ours: .*; check that beacons pass both ways between the hosts/);
});

const peerRestartedMidSwitch = test.macro(async (t, options?: Parameters<typeof settledPair>[1]) => {
  const pair = await settledPair(t, options);
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

test('the peer agent restarted while a switch waits: the coordinator notices the new boot and rolls back saying so', peerRestartedMidSwitch);
// The new run's first beacon proves nothing (it has not heard the primary yet): it is heard with its second.
test('replay_protection acknowledged: the peer agent restarted while a switch waits is noticed the same, by its first acknowledging beacon',
  peerRestartedMidSwitch, {primary: acknowledged('primary'), backup: acknowledged('backup')});

test('--dry-run prints each host\'s commands and changes nothing', async (t) => {
  const pair = await settledPair(t);
  const before = [pair.primary.network.actions().length, pair.backup.network.actions().length];
  const {result} = await switchover(pair, pair.primary, {dryRun: true});
  t.is(result.outcome, 'dry-run');
  t.deepEqual(result.plan?.map((s) => `${s.step} on ${s.host.role}: ${s.commands.join('; ')}`), [
    'backup-net-down on backup: removeAddress 192.0.2.100/24',
    'assign-ip on backup: ',
    'forward-strays on backup: forward 192.0.2.100/24 192.0.2.11',
    'hold-connections on primary: ownAddress 192.0.2.100/24; hold 192.0.2.100/24 false',
    'primary-net-down on primary: removeAddress 192.0.2.100/24',
    'backup-net-up on backup: addAddress 192.0.2.100/24; announce 192.0.2.100/24',
    'confirm-traffic on backup: ',
    'drain-connections on primary: ',
    'end-forwarding on backup: unforward',
    'end-hold on primary: unhold 192.0.2.100/24',
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
  // A standby in fault: the primary went silent and did not answer the probe (its link stays up: a primary whose
  // link stops running releases the IP), and the backup's takeover failed on its interface.
  pair.backup.network.failNext('addAddress');
  pair.primary.transport.connected = false;
  pair.primary.network.silenced.add(SERVICE_IP.address);
  await pair.clock.advance(2500);
  pair.primary.transport.connected = true;
  pair.primary.network.silenced.delete(SERVICE_IP.address);
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
