import test from 'ava';
import {encodeMessage} from '../../agent/peer/beacon-codec.js';
import {ANNOUNCE_REPEAT_MS} from '../../agent/plans/announcer.js';
import {FakeNetworkDriver} from '../fakes/fake-network-driver.js';
import {createFakePair} from '../fakes/fake-pair.js';
import {BACKUP_ADDRESS, testKey} from '../fakes/test-config.js';

const pair = createFakePair;

test('a fresh pair ends with the primary active holding the IP and the backup standing by, each seeing the other', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1000);

  t.is(primary.agent.state.name, 'active');
  t.is(backup.agent.state.name, 'standby');
  t.deepEqual(primary.network.actions(), ['isAddressInUse 192.0.2.100/24', 'addAddress 192.0.2.100/24', 'announce 192.0.2.100/24']);
  t.deepEqual(backup.network.actions(), ['isAddressInUse 192.0.2.100/24'], 'the backup never touched the address');
  t.deepEqual(primary.store.saves, [{epoch: 1, released: false}]);

  const p = await primary.agent.status();
  const b = await backup.agent.status();
  t.true(p.self.holdsIp);
  t.false(b.self.holdsIp);
  t.true(p.peer.alive);
  t.true(b.peer.alive);
  t.is(b.peer.state, 'active');
  t.true(b.peer.holdsIp, 'the backup learns from beacons that the primary holds the IP');
  t.is(b.peer.epoch, 1);
  t.is(p.peer.rttMs?.last, 0, 'acks turn into RTT samples (zero on a fake wire)');
  t.true(p.beacons.sent >= 5);
  t.true(primary.logs.some((l) => l.startsWith('<5>(state) starting -> active')));

  await clock.advance(ANNOUNCE_REPEAT_MS);
  t.deepEqual(primary.network.actions().filter((a) => a.startsWith('announce')).length, 2, 'the announcement is repeated once after the locktime');
});

test('a primary that starts while another host answers for the IP stays standby and never adds it', async (t) => {
  const {clock, segment, primary} = pair(t);
  const intruder = new FakeNetworkDriver('intruder', segment);
  intruder.addresses.add('192.0.2.100');
  await primary.agent.start();
  await clock.advance(1000);
  t.is(primary.agent.state.name, 'standby');
  t.false(primary.network.actions().some((a) => a.startsWith('addAddress')));
});

test('a restarted primary that finds the IP on its interface stays active without adding it again', async (t) => {
  const {clock, primary} = pair(t);
  primary.network.addresses.add('192.0.2.100');
  primary.store.state = {epoch: 4};
  await primary.agent.start();
  await clock.advance(1000);
  t.is(primary.agent.state.name, 'active');
  t.is(primary.agent.state.epoch, 4);
  t.deepEqual(primary.network.actions(), []);
});

test('datagrams signed with the wrong key, replayed, or from a third address are counted and change nothing', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1000);
  const before = primary.agent.state;
  const captured = backup.transport.sent.at(-1);
  if (captured === undefined) return t.fail('the backup sent nothing');

  primary.transport.inject(captured, BACKUP_ADDRESS);
  const forged = encodeMessage({kind: 'beacon', beacon: {
    pair: 'web', node: 'backup', host: 'evil', boot: 'evil-boot', seq: 1, sentAt: clock.wallNow(), state: 'active', epoch: 999,
    holdsIp: true, health: 'ok', switchId: '', ack: undefined,
  }}, testKey('an-attacker-key-that-is-long-enough-123'));
  for (let i = 0; i < 50; i += 1) primary.transport.inject(forged, BACKUP_ADDRESS);
  primary.transport.inject(captured, '192.0.2.66');
  await clock.advance(200);

  const status = await primary.agent.status();
  t.is(status.beacons.rejected.replay, 1);
  t.is(status.beacons.rejected['unknown-key'], 50);
  t.is(status.beacons.rejected['wrong-source'], 1);
  t.is(primary.agent.state.name, 'active');
  t.is(primary.agent.state.epoch, before.epoch);
  t.is(status.peer.epoch, 0, 'the forged epoch 999 never reached the peer view');
  t.is(status.peer.state, 'standby');
  t.is(primary.logs.filter((l) => l.includes('unknown-key')).length, 1, 'a flood is logged once, counted always');
});

test('the peer is declared lost after dead_after_ms without a valid beacon, and alive again when they return', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1000);
  primary.transport.connected = false;
  await clock.advance(800);
  t.true((await backup.agent.status()).peer.alive, 'not yet: 800 ms < 1000 ms');
  await clock.advance(400);
  const status = await backup.agent.status();
  t.false(status.peer.alive);
  t.true(backup.logs.some((l) => l.includes('(peer) lost: no valid beacon for 1000 ms')));
  primary.transport.connected = true;
  await clock.advance(400);
  t.true((await backup.agent.status()).peer.alive);
  t.true(backup.logs.some((l) => l.includes('alive again')));
});

test('a beacon withheld and replayed after the peer was lost brings back neither the peer nor its old state', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1000);
  const withheld: Uint8Array[] = [];
  backup.transport.lose = (datagram) => {
    if (withheld.length > 0) return false;
    withheld.push(datagram);
    return true;
  };
  await clock.advance(400);
  backup.transport.connected = false;
  await clock.advance(1200);
  t.false((await primary.agent.status()).peer.alive);
  const lost = primary.logs.length;
  const replayed = withheld[0];
  if (replayed === undefined) return t.fail('nothing was withheld');
  primary.transport.inject(replayed, BACKUP_ADDRESS);
  await clock.advance(50);
  t.false((await primary.agent.status()).peer.alive);
  t.false(primary.logs.slice(lost).some((l) => l.includes('alive again')));
});

test('a beacon tick late by more than an interval is counted and warned about', async (t) => {
  const {clock, primary} = pair(t);
  await primary.agent.start();
  await clock.advance(1000);
  t.is((await primary.agent.status()).timers.lateBeyondInterval, 0);
  // A stall: nothing runs for 700 ms, then everything that was due runs late.
  await clock.jump(700);
  const status = await primary.agent.status();
  t.is(status.timers.lateBeyondInterval, 1);
  t.true(status.timers.loopLagMs.max >= 500);
  t.true(primary.logs.some((l) => l.includes('ms late, more than the 200 ms interval')));
});

test('a primary that cannot save its new epoch does not take the IP and reports fault', async (t) => {
  const {clock, primary} = pair(t);
  primary.store.readOnly = true;
  await primary.agent.start();
  await clock.advance(1000);
  t.is(primary.agent.state.name, 'fault');
  t.regex(primary.agent.state.reason, /could not save epoch 1/);
  t.false(primary.network.addresses.has('192.0.2.100'));
});

test('a failing take-ip leaves the primary in fault and says which step failed', async (t) => {
  const {clock, primary} = pair(t);
  primary.network.failNext('addAddress');
  await primary.agent.start();
  await clock.advance(1000);
  t.is(primary.agent.state.name, 'fault');
  t.regex(primary.agent.state.reason, /take-ip: addAddress failed/);
});

test('on_stop release: the primary removes the IP and says so, and the standby takes over well before the dead timer', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1500);
  const stopped = primary.agent.shutdown('release');
  await clock.advance(100);
  await stopped;
  t.false(primary.network.addresses.has('192.0.2.100'));
  await clock.advance(500);
  t.is(backup.agent.state.name, 'active', 'took over within 600 ms; the dead timer is 1000 ms');
  t.true(backup.network.addresses.has('192.0.2.100'));
});

test('on_stop release: a look at the interface while the release runs does not take the IP back', async (t) => {
  const {clock, primary} = pair(t);
  await primary.agent.start();
  await clock.advance(1500);
  t.is(primary.agent.state.name, 'active');
  // The release's check is slow (a busy host): the once-a-second look at the interface lands between the removal
  // and the stop, and finds the IP gone while the state is still active.
  const hasAddress = primary.network.hasAddress.bind(primary.network);
  primary.network.hasAddress = async (ip) => {
    await clock.sleep(1500);
    return hasAddress(ip);
  };
  primary.network.journal.length = 0;
  const stopped = primary.agent.shutdown('release');
  await clock.advance(2000);
  await stopped;
  t.deepEqual(primary.network.actions(), ['removeAddress 192.0.2.100/24'], 'removed once, never added back');
  t.false(primary.network.addresses.has('192.0.2.100'));
  t.is(primary.agent.state.name, 'stopping');
});

test('on_stop keep: the IP stays, and the standby does not take it while it answers, then does once it is gone', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1500);
  const stopped = primary.agent.shutdown('keep');
  await clock.advance(100);
  await stopped;
  t.true(primary.network.addresses.has('192.0.2.100'));
  await clock.advance(5000);
  t.is(backup.agent.state.name, 'standby');
  t.regex(backup.agent.state.reason, /peer silent but service IP alive/);
  t.false(backup.network.addresses.has('192.0.2.100'));
  t.is(backup.logs.filter((l) => l.includes('peer silent but service IP alive')).length, 1, 'said once, not every probe');
  // The primary's host goes down for real: its address stops answering.
  primary.network.linkUp = false;
  await clock.advance(1500);
  t.is(backup.agent.state.name, 'active');
  t.true(backup.network.addresses.has('192.0.2.100'));
});

test('an address removed by hand from the active host is put back', async (t) => {
  const {clock, primary, backup} = pair(t);
  await primary.agent.start();
  await backup.agent.start();
  await clock.advance(1500);
  primary.network.addresses.delete('192.0.2.100');
  await clock.advance(1500);
  t.true(primary.network.addresses.has('192.0.2.100'));
  t.is(primary.agent.state.name, 'active');
  t.false(backup.network.addresses.has('192.0.2.100'));
});
