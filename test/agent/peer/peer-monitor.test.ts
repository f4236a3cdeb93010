import test from 'ava';
import {encodeMessage, type Beacon} from '../../../agent/peer/beacon-codec.js';
import {PeerMonitor} from '../../../agent/peer/peer-monitor.js';
import {BACKUP_ADDRESS, testKey, testKeyring} from '../../fakes/test-config.js';

const WALL = Date.UTC(2026, 10, 21, 12, 0, 0);
const key = testKey();

function beacon(overrides: Partial<Beacon> = {}): Beacon {
  return {
    pair: 'web', node: 'backup', host: 'web-b', boot: 'bootA', seq: 1, sentAt: WALL, state: 'standby', epoch: 1,
    holdsIp: false, health: 'ok', switchId: '', ack: undefined, ...overrides,
  };
}

const datagram = (overrides: Partial<Beacon> = {}): Uint8Array => encodeMessage({kind: 'beacon', beacon: beacon(overrides)}, key);

function monitor(): PeerMonitor {
  return new PeerMonitor({pair: 'web', peerRole: 'backup', peerAddress: BACKUP_ADDRESS, selfBoot: 'bootP', keyring: testKeyring(key), deadAfterMs: 1000, maxClockSkewMs: 5000});
}

test('a valid beacon is accepted and makes the peer alive until dead_after_ms passes without another', (t) => {
  const m = monitor();
  t.false(m.isAlive(0));
  t.true(m.observe(datagram(), BACKUP_ADDRESS, 100, WALL).ok);
  t.true(m.isAlive(1099));
  t.false(m.isAlive(1100));
  t.is(m.deadline(), 1100);
});

test('a replay of the same beacon is rejected as replay and does not refresh liveness', (t) => {
  const m = monitor();
  const captured = datagram({seq: 5});
  t.true(m.observe(captured, BACKUP_ADDRESS, 0, WALL).ok);
  const replayed = m.observe(captured, BACKUP_ADDRESS, 900, WALL + 900);
  t.deepEqual(replayed.ok ? undefined : replayed.reason, 'replay');
  t.false(m.isAlive(1000));
  t.is(m.stats(0).rejected.replay, 1);
  t.is(m.stats(0).accepted, 1);
});

test('an older sequence inside the loss window that never arrived is accepted once (UDP reorders), then is a replay', (t) => {
  const m = monitor();
  t.true(m.observe(datagram({seq: 10, state: 'active'}), BACKUP_ADDRESS, 0, WALL).ok);
  const late = m.observe(datagram({seq: 9, state: 'standby'}), BACKUP_ADDRESS, 1, WALL);
  t.true(late.ok && late.late);
  t.is(m.stats(1).lastBeacon?.state, 'active', 'the late beacon does not replace the newest view');
  const again = m.observe(datagram({seq: 9}), BACKUP_ADDRESS, 2, WALL);
  t.is(again.ok ? undefined : again.reason, 'replay');
});

test('a beacon from an ended boot is a replay, even with a higher sequence', (t) => {
  const m = monitor();
  t.true(m.observe(datagram({boot: 'bootA', seq: 3}), BACKUP_ADDRESS, 0, WALL).ok);
  // A restart: the new boot speaks later than the old one did.
  const restarted = m.observe(datagram({boot: 'bootB', seq: 1, sentAt: WALL + 500}), BACKUP_ADDRESS, 500, WALL + 500);
  t.true(restarted.ok && restarted.newBoot);
  // Recorded before the peer restarted, so sent before the new boot's first datagram.
  const old = m.observe(datagram({boot: 'bootA', seq: 4, sentAt: WALL + 400}), BACKUP_ADDRESS, 600, WALL + 600);
  t.is(old.ok ? undefined : old.reason, 'replay');
});

test('sent-at older than the skew window is stale, newer is future', (t) => {
  const m = monitor();
  const stale = m.observe(datagram({sentAt: WALL - 5001}), BACKUP_ADDRESS, 0, WALL);
  t.is(stale.ok ? undefined : stale.reason, 'stale');
  const future = m.observe(datagram({sentAt: WALL + 5001, seq: 2}), BACKUP_ADDRESS, 0, WALL);
  t.is(future.ok ? undefined : future.reason, 'future');
  t.true(m.observe(datagram({sentAt: WALL - 4999, seq: 3}), BACKUP_ADDRESS, 0, WALL).ok);
  t.false(m.isAlive(2000));
});

test('a valid beacon from a third address is rejected as wrong-source', (t) => {
  const m = monitor();
  const r = m.observe(datagram(), '192.0.2.66', 0, WALL);
  t.is(r.ok ? undefined : r.reason, 'wrong-source');
  t.false(m.isAlive(0));
});

test('the peer\'s address is recognised however the socket spells it, and a third address never', (t) => {
  const at = (peerAddress: string): PeerMonitor => new PeerMonitor({pair: 'web', peerRole: 'backup', peerAddress, selfBoot: 'bootP',
    keyring: testKeyring(key), deadAfterMs: 1000, maxClockSkewMs: 5000});
  const accepted = (m: PeerMonitor, from: string, seq: number): string => {
    const r = m.observe(datagram({seq}), from, seq, WALL);
    return r.ok ? 'ok' : r.reason;
  };
  const v4 = at(BACKUP_ADDRESS);
  t.is(accepted(v4, `::ffff:${BACKUP_ADDRESS}`, 1), 'ok', 'an IPv4 peer through a dual-stack socket');
  t.is(accepted(v4, '::ffff:192.0.2.66', 2), 'wrong-source');
  t.is(accepted(v4, `::ffff:${BACKUP_ADDRESS}`, 3), 'ok', 'after a third address, the peer\'s spelling is judged again');
  const v6 = at('2001:db8::12');
  t.is(accepted(v6, '2001:db8::12', 1), 'ok');
  t.is(accepted(v6, '2001:db8:0:0::12', 2), 'ok', 'a non-canonical spelling of the same address');
  t.is(accepted(v6, '2001:db8::13', 3), 'wrong-source');
  t.is(accepted(v6, '2001:db8::12%eth1', 4), 'wrong-source', 'a zone makes another address');
  const linkLocal = at('fe80::12%eth1');
  t.is(accepted(linkLocal, 'fe80::12%eth1', 1), 'ok', 'as Node reports a link-local sender: with the receiving interface');
  t.is(accepted(linkLocal, 'fe80::12%eth2', 2), 'wrong-source', 'the same address on another link');
  t.is(accepted(linkLocal, 'fe80::12', 3), 'wrong-source');
});

test('a beacon that claims our own role is rejected as wrong-node with a hint at the config', (t) => {
  const m = monitor();
  const r = m.observe(datagram({node: 'primary'}), BACKUP_ADDRESS, 0, WALL);
  t.is(r.ok ? undefined : r.reason, 'wrong-node');
  t.regex(r.ok ? '' : r.detail, /both hosts configured with node: primary/);
});

test('datagrams from the peer rejected since its last valid one are counted with the latest reason; a valid one clears them', (t) => {
  const m = monitor();
  t.true(m.observe(datagram({seq: 1}), BACKUP_ADDRESS, 0, WALL).ok);
  t.is(m.stats(0).rejectedSinceValid, undefined);
  // The peer's clock jumped an hour ahead: everything it sends now looks sent in the future.
  m.observe(datagram({seq: 2, sentAt: WALL + 3_600_000}), BACKUP_ADDRESS, 200, WALL + 200);
  m.observe(datagram({seq: 3, sentAt: WALL + 3_600_200}), BACKUP_ADDRESS, 400, WALL + 400);
  // A third host's datagrams say nothing about the peer and are not counted here.
  m.observe(datagram({seq: 4}), '192.0.2.99', 500, WALL + 500);
  const rejected = m.stats(600).rejectedSinceValid;
  t.is(rejected?.count, 2);
  t.is(rejected?.reason, 'future');
  t.regex(rejected?.detail ?? '', /^sent 3599800 ms in the future, window is 5000 ms/);
  t.true(m.observe(datagram({seq: 5, sentAt: WALL + 800}), BACKUP_ADDRESS, 800, WALL + 800).ok);
  t.is(m.stats(800).rejectedSinceValid, undefined, 'a valid datagram clears them');
});

test('every rejection is counted by reason', (t) => {
  const m = monitor();
  m.observe(new Uint8Array(3), BACKUP_ADDRESS, 0, WALL);
  m.observe(new Uint8Array(3), BACKUP_ADDRESS, 0, WALL);
  m.observe(encodeMessage({kind: 'beacon', beacon: beacon()}, testKey('some-other-secret-of-at-least-32-bytes!')), BACKUP_ADDRESS, 0, WALL);
  m.observe(datagram(), '192.0.2.99', 0, WALL);
  const {rejected} = m.stats(0);
  t.is(rejected.truncated, 2);
  t.is(rejected['unknown-key'], 1);
  t.is(rejected['wrong-source'], 1);
  t.is(rejected['bad-mac'], 0);
});

test('loss is the share of missing sequence numbers in the window', (t) => {
  const m = monitor();
  for (const seq of [1, 2, 4, 5, 7, 8, 9, 10]) m.observe(datagram({seq}), BACKUP_ADDRESS, seq, WALL);
  t.is(m.stats(10).loss, 0.2);
});

test('round-trip time comes from acknowledged beacons, minus the time the peer held them', (t) => {
  const m = monitor();
  m.recordAck(100, 30, 140);
  t.deepEqual(m.stats(140).rttMs, {last: 10, average: 10});
  m.recordAck(200, 0, 218);
  t.is(m.stats(218).rttMs?.last, 18);
  t.is(m.stats(218).rttMs?.average, 11);
});

test('a peer request names the boot it is for: one recorded before this agent restarted is a replay, whatever its age', (t) => {
  const request = (to: string, seq: number): Uint8Array => encodeMessage({kind: 'request', request: {
    pair: 'web', node: 'backup', boot: 'bootA', seq, sentAt: WALL, to, id: `r${seq}`, op: 'apply', switchId: 'sw1', params: {step: 'primary-net-down'},
  }}, key);
  const m = monitor();
  t.true(m.observe(request('bootP', 1), BACKUP_ADDRESS, 0, WALL).ok);
  // The same peer boot and a fresh sequence number, but meant for an earlier run of this agent.
  const old = m.observe(request('bootOld', 2), BACKUP_ADDRESS, 10, WALL);
  t.false(old.ok);
  if (!old.ok) {
    t.is(old.reason, 'replay');
    t.regex(old.detail, /apply request for boot bootOld, this agent is boot bootP/);
  }
  t.is(m.stats(10).rejected.replay, 1);
});

test('datagrams of an earlier boot replayed while the live boot speaks do not replace it; a real restart does', (t) => {
  const m = monitor();
  t.true(m.observe(datagram({boot: 'bootA', seq: 50, sentAt: WALL}), BACKUP_ADDRESS, 0, WALL).ok);
  // Captured from an earlier run of the peer, replayed to this (restarted) agent inside the skew window.
  const replayed = m.observe(datagram({boot: 'bootOld', seq: 900, sentAt: WALL - 2000}), BACKUP_ADDRESS, 100, WALL);
  t.false(replayed.ok);
  if (!replayed.ok) t.regex(replayed.detail, /not after the current boot bootA/);
  // The live boot is not retired: its next beacon is accepted.
  t.true(m.observe(datagram({boot: 'bootA', seq: 51, sentAt: WALL + 200}), BACKUP_ADDRESS, 200, WALL + 200).ok);
  // The peer restarts: its new boot speaks later and takes over at once.
  const restarted = m.observe(datagram({boot: 'bootB', seq: 1, sentAt: WALL + 700}), BACKUP_ADDRESS, 700, WALL + 700);
  t.true(restarted.ok && restarted.newBoot);
  // A restart with its clock stepped back is heard once its clock passes the old run's last sent-at, not before,
  // even after the old boot has gone silent: silence proves nothing about which run is the newer.
  t.false(m.observe(datagram({boot: 'bootC', seq: 1, sentAt: WALL + 600}), BACKUP_ADDRESS, 800, WALL + 800).ok);
  t.false(m.observe(datagram({boot: 'bootC', seq: 2, sentAt: WALL + 650}), BACKUP_ADDRESS, 1800, WALL + 1800).ok);
  const passed = m.observe(datagram({boot: 'bootC', seq: 3, sentAt: WALL + 701}), BACKUP_ADDRESS, 1900, WALL + 1900);
  t.true(passed.ok && passed.newBoot);
});

test('a boot never seen, replayed once the live boot has been silent for dead_after_ms, is no restart: the live boot is heard again', (t) => {
  const m = monitor();
  t.true(m.observe(datagram({boot: 'bootA', seq: 50, sentAt: WALL}), BACKUP_ADDRESS, 0, WALL).ok);
  // bootA's beacons are withheld (or the path is cut) past dead_after_ms; a recording of the peer's previous run,
  // still inside the skew window, arrives.
  const replayed = m.observe(datagram({boot: 'bootOld', seq: 900, sentAt: WALL - 2000}), BACKUP_ADDRESS, 1500, WALL + 1500);
  t.is(replayed.ok ? undefined : replayed.reason, 'replay');
  t.false(m.isAlive(1500));
  const live = m.observe(datagram({boot: 'bootA', seq: 57, sentAt: WALL + 1600}), BACKUP_ADDRESS, 1600, WALL + 1600);
  t.true(live.ok && !live.newBoot, 'the live boot was never retired');
  t.true(m.isAlive(1600));
  t.is(m.newest()?.boot, 'bootA');
});

test('a live boot displaced by a run whose clock was ahead wins back once it speaks later, and its old datagrams stay replays', (t) => {
  const m = monitor();
  // This agent has just restarted: the first boot it hears is the live one.
  t.true(m.observe(datagram({boot: 'bootA', seq: 7, sentAt: WALL}), BACKUP_ADDRESS, 0, WALL).ok);
  // A recording of the peer's previous run, whose clock was 3 s ahead: inside the window, and "later" than bootA.
  const ahead = m.observe(datagram({boot: 'bootX', seq: 400, sentAt: WALL + 3000}), BACKUP_ADDRESS, 100, WALL + 100);
  t.true(ahead.ok && ahead.newBoot);
  t.false(m.observe(datagram({boot: 'bootA', seq: 8, sentAt: WALL + 200}), BACKUP_ADDRESS, 200, WALL + 200).ok);
  // bootA speaks later than anything bootX said: it is the live run, and stays so.
  const back = m.observe(datagram({boot: 'bootA', seq: 23, sentAt: WALL + 3200}), BACKUP_ADDRESS, 3200, WALL + 3200);
  t.true(back.ok && back.newBoot);
  t.true(m.observe(datagram({boot: 'bootA', seq: 24, sentAt: WALL + 3400}), BACKUP_ADDRESS, 3400, WALL + 3400).ok);
  t.is(m.newest()?.boot, 'bootA');
  const recorded = m.observe(datagram({boot: 'bootA', seq: 7, sentAt: WALL}), BACKUP_ADDRESS, 3500, WALL + 3500);
  t.is(recorded.ok ? undefined : recorded.reason, 'replay', 'sequence numbers bootA used before it was displaced');
  const again = m.observe(datagram({boot: 'bootX', seq: 401, sentAt: WALL + 3300}), BACKUP_ADDRESS, 3600, WALL + 3600);
  t.is(again.ok ? undefined : again.reason, 'replay');
});

test('a withheld beacon replayed after the peer went silent is late: it neither revives the peer nor changes its view', (t) => {
  const m = monitor();
  t.true(m.observe(datagram({seq: 10, state: 'active', holdsIp: true}), BACKUP_ADDRESS, 0, WALL).ok);
  // seq 11 is withheld by an attacker; seq 12 arrives, then the peer goes silent.
  t.true(m.observe(datagram({seq: 12, sentAt: WALL + 400, state: 'active', holdsIp: true}), BACKUP_ADDRESS, 400, WALL + 400).ok);
  const late = m.observe(datagram({seq: 11, sentAt: WALL + 200, state: 'standby'}), BACKUP_ADDRESS, 2000, WALL + 2000);
  t.true(late.ok && late.late);
  t.false(m.isAlive(2000));
  t.is(m.stats(2000).lastBeacon?.seq, 12);
  t.is(m.deadline(), 1400);
});

test('beyond the budget of datagrams a second whose MAC is checked, the peer address\'s datagrams are dropped before the MAC and counted', (t) => {
  const m = new PeerMonitor({pair: 'web', peerRole: 'backup', peerAddress: BACKUP_ADDRESS, selfBoot: 'bootP', keyring: testKeyring(key),
    deadAfterMs: 1000, maxClockSkewMs: 5000, maxVerifiedPerS: 10});
  const forged = datagram();
  forged[forged.length - 1] = (forged.at(-1) ?? 0) ^ 1;
  const reasons = Array.from({length: 15}, () => {
    const r = m.observe(forged, BACKUP_ADDRESS, 0, WALL);
    return r.ok ? 'ok' : r.reason;
  });
  t.deepEqual(reasons, [...Array<string>(10).fill('bad-mac'), ...Array<string>(5).fill('rate-limited')]);
  // The free checks still run and still name what is wrong; they take nothing from the budget.
  const short = m.observe(new Uint8Array(3), BACKUP_ADDRESS, 0, WALL);
  t.is(short.ok ? undefined : short.reason, 'truncated');
  const r = m.observe(datagram({seq: 1}), BACKUP_ADDRESS, 50, WALL);
  t.is(r.ok ? undefined : r.reason, 'rate-limited');
  t.regex(r.ok ? '' : r.detail, /more than 10 datagrams a second from the peer's address/);
  // 100 ms later one token has come back: the peer's beacon gets through.
  t.true(m.observe(datagram({seq: 2}), BACKUP_ADDRESS, 150, WALL).ok);
  t.is(m.stats(150).rejected['rate-limited'], 6);
  t.is(m.stats(150).rejected['bad-mac'], 10);
});
