// heartbeat.replay_protection: acknowledged. The peer is alive only as of our own datagrams it acknowledges: a
// withheld tail, a recording replayed after this agent restarted and clocks an hour apart are played here against
// both modes, on fake monotonic times (no sleeps).

import test from 'ava';
import {encodeMessage, type Beacon, type PeerRequest} from '../../../agent/peer/beacon-codec.js';
import {PeerMonitor} from '../../../agent/peer/peer-monitor.js';
import {SentLog} from '../../../agent/peer/sent-log.js';
import {BACKUP_ADDRESS, testKey, testKeyring} from '../../fakes/test-config.js';

const WALL = Date.UTC(2026, 10, 21, 12, 0, 0);
const INTERVAL_MS = 200;
const DEAD_AFTER_MS = 1000;
const HOUR_MS = 3_600_000;
const key = testKey();

type Mode = 'clock' | 'acknowledged';

/** This agent (boot `selfBoot`): its monitor of the backup, and the log of its own datagrams' departures. */
interface Receiver {
  readonly monitor: PeerMonitor;
  readonly sent: SentLog;
  readonly selfBoot: string;
}

function receiver(mode: Mode, selfBoot = 'bootP', maxClockSkewMs = 5000): Receiver {
  const sent = new SentLog(DEAD_AFTER_MS, INTERVAL_MS);
  const monitor = new PeerMonitor({
    pair: 'web', peerRole: 'backup', peerAddress: BACKUP_ADDRESS, selfBoot, keyring: testKeyring(key), deadAfterMs: DEAD_AFTER_MS, maxClockSkewMs,
    ...(mode === 'acknowledged' ? {acknowledged: {intervalMs: INTERVAL_MS, sentAt: (seq: number) => sent.sentAt(seq)}} : {}),
  });
  return {monitor, sent, selfBoot};
}

function beacon(overrides: Partial<Beacon>): Uint8Array {
  return encodeMessage({kind: 'beacon', beacon: {
    pair: 'web', node: 'backup', host: 'web-b', boot: 'bootA', seq: 1, sentAt: WALL, state: 'standby', epoch: 1,
    holdsIp: false, health: 'ok', switchId: '', ack: undefined, ...overrides,
  }}, key);
}

/** The backup's beacon `seq`, sent at monotonic `at` (its wall clock `skewMs` off), acknowledging our datagram `ackSeq`. */
function peerBeacon(seq: number, at: number, ackSeq: number | undefined, options: {boot?: string; ackBoot?: string; skewMs?: number; state?: Beacon['state']} = {}): Uint8Array {
  return beacon({
    seq, boot: options.boot ?? 'bootA', sentAt: WALL + at + (options.skewMs ?? 0), state: options.state ?? 'standby',
    ack: ackSeq === undefined ? undefined : {boot: options.ackBoot ?? 'bootP', seq: ackSeq, heldMs: 0},
  });
}

/**
 * A pair running in lockstep: we send our datagram n at n × 200 ms; the backup sends its beacon n 50 ms later,
 * acknowledging our n; it arrives 1 ms after that. Returns the backup's beacons as sent, for a recorder.
 */
function runHonestly(r: Receiver, from: number, to: number, options: {deliver?: (n: number) => boolean; skewMs?: number} = {}): Map<number, Uint8Array> {
  const recorded = new Map<number, Uint8Array>();
  for (let n = from; n <= to; n += 1) {
    r.sent.record(n, n * INTERVAL_MS);
    const datagram = peerBeacon(n, n * INTERVAL_MS + 50, n, {ackBoot: r.selfBoot, ...(options.skewMs === undefined ? {} : {skewMs: options.skewMs})});
    recorded.set(n, datagram);
    if (options.deliver?.(n) ?? true) r.monitor.observe(datagram, BACKUP_ADDRESS, n * INTERVAL_MS + 51, WALL + n * INTERVAL_MS + 51);
  }
  return recorded;
}

const reasonOf = (observation: ReturnType<PeerMonitor['observe']>): string => (observation.ok ? 'accepted' : observation.reason);

// The withheld tail: an attacker on the path lets the backup's beacons through up to 10, withholds 11..15 (the
// backup's last; it dies after sending 15 at 3050 ms), then replays them one every 800 ms. Each is new and, at
// 5 s, inside the skew window. An honest view would declare the backup dead at 3051 + 1000 ms.
const withheldTail = test.macro(async (t, mode: Mode, aliveAtLeastUntil: number, deadBy: number) => {
  const r = receiver(mode);
  const recorded = runHonestly(r, 1, 15, {deliver: (n) => n <= 10});
  const diedAt = 15 * INTERVAL_MS + 50;
  let at = diedAt + 50;
  const verdicts: string[] = [];
  for (const n of [11, 12, 13, 14, 15]) {
    // Our own beacons go on while the backup is dead; they are never acknowledged.
    r.sent.record(n + 5, at);
    verdicts.push(reasonOf(r.monitor.observe(recorded.get(n) ?? new Uint8Array(), BACKUP_ADDRESS, at, WALL + at)));
    at += 800;
  }
  t.log(`${mode}: replayed tail ${verdicts.join(', ')}`);
  t.true(r.monitor.isAlive(aliveAtLeastUntil - 1), `alive until ${aliveAtLeastUntil}`);
  t.false(r.monitor.isAlive(deadBy), `dead by ${deadBy} ms (it died at ${diedAt})`);
});

test('clock mode: a withheld tail replayed one by one keeps a dead peer alive for as long as the skew window allows',
  withheldTail, 'clock', 15 * INTERVAL_MS + 50 + 50 + 4 * 800 + DEAD_AFTER_MS, 15 * INTERVAL_MS + 50 + 50 + 4 * 800 + DEAD_AFTER_MS);

test('acknowledged mode: a withheld tail replayed one by one keeps a dead peer alive at most one interval past dead_after_ms after its death',
  withheldTail, 'acknowledged', 11 * INTERVAL_MS + INTERVAL_MS + DEAD_AFTER_MS, 15 * INTERVAL_MS + 50 + INTERVAL_MS + DEAD_AFTER_MS);

test('acknowledged mode: withheld beacons that acknowledge only old datagrams do not change the peer\'s view', (t) => {
  const r = receiver('acknowledged');
  runHonestly(r, 1, 10);
  // The backup went to fault at beacon 11; the attacker holds that one back and shows it 1.5 s later.
  r.sent.record(11, 11 * INTERVAL_MS);
  const hidden = peerBeacon(11, 11 * INTERVAL_MS + 50, 11, {state: 'fault'});
  for (let n = 12; n <= 18; n += 1) r.sent.record(n, n * INTERVAL_MS);
  const late = r.monitor.observe(hidden, BACKUP_ADDRESS, 11 * INTERVAL_MS + 1500, WALL + 11 * INTERVAL_MS + 1500);
  t.is(reasonOf(late), 'unacknowledged');
  t.regex(late.ok ? '' : late.detail, /^beacon 11 acknowledges our datagram 11, sent 1500 ms ago \(dead_after_ms is 1000\): it proves nothing about now/);
  t.is(r.monitor.stats(3700).lastBeacon?.state, 'standby', 'the view is the last one proven fresh');
  t.false(r.monitor.isAlive(11 * INTERVAL_MS + 1500), 'and the peer is dead: nothing fresh since beacon 10');
});

test('acknowledged mode: an honest peer is alive as long as by arrival, give or take the path\'s delay', (t) => {
  const byAck = receiver('acknowledged');
  const byClock = receiver('clock');
  runHonestly(byAck, 1, 20);
  runHonestly(byClock, 1, 20);
  // Beacon 20 arrived at 4051; our datagram 20 left at 4000: proven as of min(4051, 4000 + 200).
  t.is(byClock.monitor.deadline(), 4051 + DEAD_AFTER_MS);
  t.is(byAck.monitor.deadline(), 4051 + DEAD_AFTER_MS);
  t.is(byAck.monitor.stats(4100).lastBeacon?.seq, 20);
});

test('acknowledged mode: a loss of our datagram makes the proof at most one interval older', (t) => {
  const r = receiver('acknowledged');
  runHonestly(r, 1, 5);
  // Our datagram 6 is lost: the backup's beacon 6 acknowledges 5 again, sent at 1000.
  r.sent.record(6, 6 * INTERVAL_MS);
  t.true(r.monitor.observe(peerBeacon(6, 6 * INTERVAL_MS + 50, 5), BACKUP_ADDRESS, 1251, WALL + 1251).ok);
  t.is(r.monitor.deadline(), 1000 + INTERVAL_MS + DEAD_AFTER_MS);
});

test('acknowledged mode: a peer whose timers ran late is alive as of when it answered, by the time it says it held our datagram', (t) => {
  const r = receiver('acknowledged');
  runHonestly(r, 1, 5);
  // The backup stalled: its beacon 6 leaves 700 ms after our datagram 5 reached it (sent at 1000), and says so.
  r.sent.record(6, 6 * INTERVAL_MS);
  r.sent.record(7, 7 * INTERVAL_MS);
  const late = encodeMessage({kind: 'beacon', beacon: {
    pair: 'web', node: 'backup', host: 'web-b', boot: 'bootA', seq: 6, sentAt: WALL, state: 'standby', epoch: 1,
    holdsIp: false, health: 'ok', switchId: '', ack: {boot: 'bootP', seq: 5, heldMs: 700},
  }}, key);
  t.true(r.monitor.observe(late, BACKUP_ADDRESS, 1702, WALL).ok);
  // As of 1000 + 700 + one interval, capped at its arrival: dead timer from 1702, not from 1200.
  t.is(r.monitor.deadline(), 1702 + DEAD_AFTER_MS);
  // Recorded and shown again 2 s later, its own account dates it: it proves nothing.
  const again = receiver('acknowledged');
  runHonestly(again, 1, 5);
  const replayed = again.monitor.observe(late, BACKUP_ADDRESS, 3702, WALL);
  t.is(reasonOf(replayed), 'unacknowledged');
  t.regex(replayed.ok ? '' : replayed.detail, /our datagram 5, sent 2702 ms ago, held 700 ms by the peer before this beacon/);
});

test('acknowledged mode: clocks an hour apart, either way, do not matter', (t) => {
  for (const skewMs of [HOUR_MS, -HOUR_MS, 24 * HOUR_MS]) {
    const byAck = receiver('acknowledged');
    runHonestly(byAck, 1, 10, {skewMs});
    t.true(byAck.monitor.isAlive(10 * INTERVAL_MS + 100), `${skewMs} ms apart: alive`);
    t.is(byAck.monitor.stats(0).accepted, 10);
    t.is(byAck.monitor.stats(0).rejected.future + byAck.monitor.stats(0).rejected.stale, 0);
    t.is(byAck.monitor.stats(0).lastBeacon?.seq, 10);
    // The same in clock mode: every beacon refused, the peer dead.
    const byClock = receiver('clock');
    runHonestly(byClock, 1, 10, {skewMs});
    t.false(byClock.monitor.isAlive(10 * INTERVAL_MS + 100), `${skewMs} ms apart in clock mode: dead`);
  }
});

test('acknowledged mode: a peer that restarts with its clock stepped back an hour is heard at once', (t) => {
  const r = receiver('acknowledged');
  runHonestly(r, 1, 5);
  // Boot B's sent-at is an hour before everything boot A sent; it acknowledges our newest datagram.
  r.sent.record(6, 6 * INTERVAL_MS);
  const first = r.monitor.observe(peerBeacon(1, 6 * INTERVAL_MS + 50, 6, {boot: 'bootB', skewMs: -HOUR_MS}), BACKUP_ADDRESS, 1251, WALL + 1251);
  t.true(first.ok && first.newBoot);
  t.is(r.monitor.newest()?.boot, 'bootB');
  // Boot A is over: even a datagram of it never seen before cannot take the place of boot B back.
  const old = r.monitor.observe(peerBeacon(6, 1260, 6), BACKUP_ADDRESS, 1270, WALL + 1270);
  t.is(reasonOf(old), 'unacknowledged', 'boot A acknowledges nothing newer than boot B did');
});

// This agent restarted (a new boot id, nothing remembered) and the skew window is wide (10 minutes): the backup's
// datagrams recorded before the restart are replayed.
const afterRestart = test.macro(async (t, mode: Mode, aliveByRecording: boolean) => {
  const before = receiver(mode, 'bootP', 600_000);
  const recorded = runHonestly(before, 1, 10);
  const restarted = receiver(mode, 'bootQ', 600_000);
  const at = 60_000;
  for (const [n, datagram] of recorded) restarted.monitor.observe(datagram, BACKUP_ADDRESS, at + n, WALL + at + n);
  t.is(restarted.monitor.isAlive(at + 20), aliveByRecording);
  if (mode === 'clock') return;
  t.is(restarted.monitor.stats(at + 20).lastBeacon, undefined, 'the recording shows nothing');
  t.is(restarted.monitor.stats(at + 20).rejected.unacknowledged, 10);
  t.regex(restarted.monitor.rejectedSinceValid?.detail ?? '', /acknowledges datagram 10 of boot bootP, not this run of the agent \(bootQ\)/);
  // The live backup hears our new boot and acknowledges it: it is alive, the recording's boot notwithstanding.
  restarted.sent.record(1, at + 100);
  const live = restarted.monitor.observe(peerBeacon(11, at + 150, 1, {ackBoot: 'bootQ', state: 'active'}), BACKUP_ADDRESS, at + 151, WALL + at + 151);
  t.true(live.ok && live.newBoot);
  t.true(restarted.monitor.isAlive(at + 200));
  t.is(restarted.monitor.stats(at + 200).lastBeacon?.state, 'active');
});

test('clock mode: a recording replayed after this agent restarted passes inside the skew window', afterRestart, 'clock', true);
test('acknowledged mode: a recording replayed after this agent restarted proves nothing, whatever its age', afterRestart, 'acknowledged', false);

test('acknowledged mode: a recording of an earlier run of the peer, heard first after our restart, gives way to the live run', (t) => {
  const r = receiver('acknowledged', 'bootQ');
  // The earlier run, recorded acknowledging an earlier run of ours: taken for its sequence numbers only.
  t.is(reasonOf(r.monitor.observe(peerBeacon(40, 0, 40, {boot: 'bootOld', ackBoot: 'bootP', state: 'active'}), BACKUP_ADDRESS, 10, WALL)), 'unacknowledged');
  t.is(r.monitor.newest()?.boot, 'bootOld');
  // The live run has not heard us yet: refused, but our next beacon acknowledges it, since the current run is not alive.
  t.is(reasonOf(r.monitor.observe(peerBeacon(3, 20, undefined, {boot: 'bootA'}), BACKUP_ADDRESS, 30, WALL + 30)), 'unacknowledged');
  t.is(r.monitor.ackTarget(30)?.boot, 'bootA');
  r.sent.record(1, 40);
  const proven = r.monitor.observe(peerBeacon(4, 200, 1, {boot: 'bootA', ackBoot: 'bootQ'}), BACKUP_ADDRESS, 201, WALL + 201);
  t.true(proven.ok && proven.newBoot);
  t.is(r.monitor.newest()?.boot, 'bootA');
  t.is(r.monitor.stats(201).lastBeacon?.state, 'standby');
  // The recording again: its run has ended.
  t.is(reasonOf(r.monitor.observe(peerBeacon(41, 0, 41, {boot: 'bootOld', ackBoot: 'bootP'}), BACKUP_ADDRESS, 210, WALL)), 'unacknowledged');
  t.is(r.monitor.ackTarget(210)?.boot, 'bootA', 'a recording cannot take our acks from a live run');
});

test('acknowledged mode: a peer whose beacons carry no ack at all (not hearing us, or an agent that does not acknowledge) is dead, and says so', (t) => {
  const r = receiver('acknowledged');
  for (let n = 1; n <= 8; n += 1) {
    r.sent.record(n, n * INTERVAL_MS);
    const observed = r.monitor.observe(peerBeacon(n, n * INTERVAL_MS + 50, undefined), BACKUP_ADDRESS, n * INTERVAL_MS + 51, WALL);
    t.is(reasonOf(observed), 'unacknowledged');
  }
  t.false(r.monitor.isAlive(1700));
  t.is(r.monitor.stats(1700).lastBeacon, undefined);
  t.deepEqual(r.monitor.withoutAcks, {boot: 'bootA', count: 8});
  t.regex(r.monitor.rejectedSinceValid?.detail ?? '', /^beacon 8 acknowledges no datagram of ours: it proves nothing about now \(the peer does not hear this agent/);
  // We still acknowledge it, so a peer that can hear us proves itself with its next beacon.
  t.deepEqual(r.monitor.newest(), {boot: 'bootA', seq: 8, at: 8 * INTERVAL_MS + 51});
  const heard = r.monitor.observe(peerBeacon(9, 9 * INTERVAL_MS + 50, 8), BACKUP_ADDRESS, 9 * INTERVAL_MS + 51, WALL);
  t.true(heard.ok && heard.newBoot, 'its first proof is when it arrives, as far as the agent goes');
  t.is(r.monitor.withoutAcks, undefined);
});

test('acknowledged mode: a peer request counts only while the peer is alive; a reply answers whatever the liveness', (t) => {
  const request = (seq: number): Uint8Array => encodeMessage({kind: 'request', request: {
    pair: 'web', node: 'backup', boot: 'bootA', seq, sentAt: WALL, to: 'bootP', id: `r${seq}`, op: 'apply', switchId: 'sw1', params: {step: 'primary-net-down'},
  } satisfies PeerRequest}, key);
  const r = receiver('acknowledged');
  runHonestly(r, 1, 5);
  t.true(r.monitor.observe(request(6), BACKUP_ADDRESS, 1100, WALL).ok);
  // The backup's beacons stop arriving (withheld, or a cut): a request delivered after dead_after is refused.
  const stale = r.monitor.observe(request(7), BACKUP_ADDRESS, 1000 + INTERVAL_MS + DEAD_AFTER_MS, WALL);
  t.is(reasonOf(stale), 'unacknowledged');
  t.regex(stale.ok ? '' : stale.detail, /^apply request while the peer has not shown itself alive in the last 1000 ms/);
  const reply = encodeMessage({kind: 'reply', reply: {pair: 'web', node: 'backup', boot: 'bootA', seq: 8, sentAt: WALL, id: 'q1', ok: true, error: undefined, result: {}}}, key);
  t.true(r.monitor.observe(reply, BACKUP_ADDRESS, 2300, WALL).ok);
  t.false(r.monitor.isAlive(2300), 'a reply does not make the peer alive');
});

test('the sent log knows only recent departures and never a number it did not send', (t) => {
  const log = new SentLog(1000, 200);
  log.record(1, 10);
  log.record(2, 20);
  t.is(log.sentAt(1), 10);
  t.is(log.sentAt(3), undefined);
  t.is(log.sentAt(0), undefined);
  // The ring holds 4 × (1000 / 200) + 256 = 276 entries: number 1 is overwritten by number 277.
  for (let seq = 3; seq <= 277; seq += 1) log.record(seq, seq * 10);
  t.is(log.sentAt(1), undefined);
  t.is(log.sentAt(2), 20);
  t.is(log.sentAt(277), 2770);
});
