// An agent killed or restarted mid-switch, on fakes: the survivor abandons or rolls back, the restarted one
// recovers from its journal, and exactly one host holds the IP in the end.

import test, {type ExecutionContext} from 'ava';
import type {SwitchProgress} from '../../../agent/control-protocol.js';
import {createFakePair, type FakePair} from '../../fakes/fake-pair.js';
import {clients, drive, mostHolders, OPTIONS, settledPair, stepLines, switchover} from '../../fakes/switch-driver.js';
import {SERVICE_IP} from '../../fakes/test-config.js';

test('the backup killed after primary-net-down: the primary takes the IP back, and the restarted backup undoes its part', async (t) => {
  const pair = await settledPair(t);
  const run = pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'primary-net-down', seconds: 3}}, () => undefined);
  await pair.clock.advance(300);
  t.false(pair.primary.network.addresses.has('192.0.2.100'), 'paused after primary-net-down');
  t.deepEqual(pair.backup.journal.journal?.applied, ['backup-net-down', 'assign-ip', 'forward-strays']);
  t.is(pair.primary.drain.held, '192.0.2.100', 'the primary holds its connections for the drain');
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
  t.regex(status.lastSwitch?.reason ?? '', /interrupted by a restart of this agent \(taker, after forward-strays, before or during backup-net-up\)/);
  t.true(pair.primary.network.addresses.has('192.0.2.100'));
  t.false(pair.backup.network.addresses.has('192.0.2.100'));
  t.deepEqual([pair.primary.drain.held, pair.backup.drain.forwardingTo], [undefined, undefined], 'neither host keeps a drain\'s preparation');
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
  t.is(result.failedStep, 'forward-strays', 'the next step, the taker\'s, is refused');
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

const LINK_MODE = {config: {service: {ip: SERVICE_IP, ips: [SERVICE_IP], interface: 'eth0', mode: 'link' as const}}};

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

test('a giver killed after hold-connections, restarted after the taker took the IP over: it lets the IP go and never answers ARP beside it', async (t) => {
  const pair = await settledPair(t);
  void pair.primary.agent.switchover({...OPTIONS, pauseAfter: {step: 'hold-connections', seconds: 30}}, () => undefined).catch(() => undefined);
  await pair.clock.advance(300);
  t.true(pair.primary.network.addresses.has('192.0.2.100'), 'paused after hold-connections: the address is still on the giver');
  t.deepEqual(pair.segment.answering('192.0.2.100'), [], 'but nobody answers ARP for it');
  await pair.primary.kill();
  await pair.clock.advance(4000);
  t.is(pair.backup.agent.state.name, 'active', 'the backup found the IP silent and took it over');
  t.deepEqual(pair.segment.answering('192.0.2.100').map((d) => d.name), ['backup']);

  const restarted = pair.primary.restart();
  await restarted.start();
  let most = 0;
  for (let ms = 0; ms < 3000; ms += 50) {
    await pair.clock.advance(50);
    most = Math.max(most, pair.segment.answering('192.0.2.100').length);
  }
  t.is(most, 1, 'never two hosts answering ARP for the IP');
  t.is(restarted.state.name, 'standby');
  t.false(pair.primary.network.addresses.has('192.0.2.100'));
  t.is(pair.primary.drain.held, undefined, 'the hold is taken back');
  t.regex((await restarted.status()).lastSwitch?.reason ?? '', /\(giver, after hold-connections.*\); this host was handing the service IP over and another host answers for it now/);
});
