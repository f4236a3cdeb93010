// The etcd hosts' beacons, board by board with times passed in: the keep rule counts from the holder's own send time
// of the beacon a host echoes (so delays and cuts only shorten it), the campaign rule waits 2·D + M after a holder's
// newest beacon (and after its own start for a host never heard), and forged, replayed or foreign datagrams are
// refused and counted.

import test from 'ava';
import {BeaconBoard, encodeHostBeacon, type HostBeaconSettings, type ServiceWord} from '../../../agent/coordination/host-beacons.js';
import {encodeMessage, type Beacon} from '../../../agent/peer/beacon-codec.js';
import {testKey, testKeyring} from '../../fakes/test-config.js';

const HOSTS = ['web-a', 'web-b', 'web-c'];
const ADDRESSES = new Map([['web-a', '192.0.2.11'], ['web-b', '192.0.2.12'], ['web-c', '192.0.2.13']]);
const D = 1000;
const M = 600;
const WALL = Date.UTC(2026, 11, 6, 23, 0, 0);

function settings(self: string): HostBeaconSettings {
  return {cluster: 'web', self, hosts: HOSTS, addresses: ADDRESSES, keyring: testKeyring(), intervalMs: 200, heardWithinMs: D, marginMs: M};
}

const held = (yes: boolean): ServiceWord[] => [{name: 'web', held: yes, epoch: yes ? 7 : 0, keeping: false}];

/** Three boards that started at `startMs`; `say(from, to, now)` carries from's next beacon to `to`. */
function boards(startMs = 0) {
  const all = new Map(HOSTS.map((host) => [host, new BeaconBoard(settings(host), `boot-${host}`, startMs)]));
  const board = (host: string): BeaconBoard => all.get(host) as BeaconBoard;
  const say = (from: string, to: readonly string[], sentMs: number, words = held(from === 'web-a'), receivedMs = sentMs): void => {
    const beacon = board(from).compose(words, sentMs, WALL + sentMs);
    const datagram = encodeHostBeacon(beacon, testKeyring());
    for (const host of to) {
      const result = board(host).observe(datagram, ADDRESSES.get(from) ?? '', receivedMs, WALL + receivedMs);
      if (!result.ok) throw new Error(`${host} refused ${from}'s beacon: ${result.reason} ${result.detail}`);
    }
  };
  return {board, say};
}

test('a holder keeps until D after it sent the beacon each other host echoes, and a late echo does not move that', (t) => {
  const {board, say} = boards();
  say('web-a', ['web-b', 'web-c'], 1000);
  // web-b answers at once, web-c's answer takes 700 ms to arrive: both echo web-a's beacon sent at 1000.
  say('web-b', ['web-a'], 1010);
  say('web-c', ['web-a'], 1020, held(false), 1720);
  t.deepEqual(board('web-a').keepUntil('web', 1800), {ok: true, untilMs: 1000 + D});
  t.like(board('web-a').keepUntil('web', 2000), {ok: false});
  // A newer round moves it on.
  say('web-a', ['web-b', 'web-c'], 1900);
  say('web-b', ['web-a'], 1905);
  say('web-c', ['web-a'], 1910);
  t.deepEqual(board('web-a').keepUntil('web', 1950), {ok: true, untilMs: 1900 + D});
});

test('no agreement without a word from every other host, or when one says it holds the service', (t) => {
  const {board, say} = boards();
  say('web-a', ['web-b', 'web-c'], 1000);
  say('web-b', ['web-a'], 1010);
  t.regex((board('web-a').keepUntil('web', 1020) as {why: string}).why, /no beacon from web-c/);
  say('web-c', ['web-a'], 1020, held(true));
  t.regex((board('web-a').keepUntil('web', 1030) as {why: string}).why, /web-c says it holds web/);
});

test('a one-way cut ends the agreement: a host that no longer hears the holder stops echoing it after D', (t) => {
  const {board, say} = boards();
  say('web-a', ['web-b', 'web-c'], 1000);
  // From now on web-a's beacons do not reach web-c (one way); web-c's still reach web-a.
  say('web-a', ['web-b'], 1200);
  say('web-b', ['web-a'], 1210);
  say('web-c', ['web-a'], 1220);
  t.deepEqual(board('web-a').keepUntil('web', 1300), {ok: true, untilMs: 1000 + D}, 'bounded by the last beacon web-c heard');
  // Past D web-c no longer says it hears web-a at all.
  say('web-c', ['web-a'], 2100);
  t.regex((board('web-a').keepUntil('web', 2110) as {why: string}).why, /web-c does not hear this host/);
});

test('an echo of an earlier run of the holder counts for nothing: its sequence numbers are another clock\'s', (t) => {
  const {board, say} = boards();
  say('web-a', ['web-b', 'web-c'], 1000);
  say('web-b', ['web-a'], 1010);
  say('web-c', ['web-a'], 1020);
  // web-a restarts: a new board (boot), started later; web-b and web-c still echo the old run.
  const restarted = new BeaconBoard(settings('web-a'), 'boot-web-a-2', 5000);
  restarted.compose(held(false), 5000, WALL + 5000);
  for (const from of ['web-b', 'web-c']) {
    const beacon = board(from).compose(held(false), 5010, WALL + 5010);
    t.true(restarted.observe(encodeHostBeacon(beacon, testKeyring()), ADDRESSES.get(from) ?? '', 5010, WALL + 5010).ok);
  }
  t.like(restarted.keepUntil('web', 5020), {ok: false});
});

test('a host stands by 2·D + M after the newest beacon of a host that says it holds the service, and not at all after one that says it does not', (t) => {
  const {board, say} = boards();
  say('web-a', ['web-b'], 1000);
  say('web-c', ['web-b'], 1000, held(false));
  t.is(board('web-b').campaignNotBefore('web'), 1000 + 2 * D + M);
  say('web-a', ['web-b'], 1200);
  t.is(board('web-b').campaignNotBefore('web'), 1200 + 2 * D + M);
  // web-a gave the service up and said so: no wait for it.
  say('web-a', ['web-b'], 1400, held(false));
  t.is(board('web-b').campaignNotBefore('web'), 0);
});

test('a host that restarted waits as if every host it has not heard yet had been heard holding just before it started', (t) => {
  const fresh = new BeaconBoard(settings('web-b'), 'boot-b-2', 50_000);
  t.is(fresh.campaignNotBefore('web'), 50_000 + 2 * D + M);
  // web-c says it holds nothing: web-a, unheard, still counts from the start.
  const c = new BeaconBoard(settings('web-c'), 'boot-c', 0);
  const beacon = c.compose(held(false), 50_100, WALL + 50_100);
  t.true(fresh.observe(encodeHostBeacon(beacon, testKeyring()), '192.0.2.13', 50_100, WALL + 50_100).ok);
  t.is(fresh.campaignNotBefore('web'), 50_000 + 2 * D + M);
});

test('the rule holds across the hosts: the holder has stopped keeping D + M before a host that heard it could campaign', (t) => {
  // Whatever the delays: web-a's beacon sent at s arrives at web-b at r ≥ s; the echo bounds web-a's keep by s + D,
  // web-b's campaign by r + 2·D + M.
  for (const delay of [0, 5, 300, 999, 5000]) {
    const {board, say} = boards();
    say('web-a', ['web-b', 'web-c'], 1000, held(true), 1000 + delay);
    say('web-b', ['web-a'], 1000 + delay + 1);
    say('web-c', ['web-a'], 1000 + delay + 1);
    const keep = board('web-a').keepUntil('web', 1000 + delay + 2);
    const keptUntil = keep.ok ? keep.untilMs : 1000 + delay + 2;
    t.true(board('web-b').campaignNotBefore('web') - keptUntil >= D + M, `delay ${delay} ms`);
  }
});

test('forged, replayed, foreign and misrouted datagrams are refused and counted; none changes what the board says', (t) => {
  const {board, say} = boards();
  say('web-a', ['web-b'], 1000);
  const b = board('web-b');
  const before = b.campaignNotBefore('web');
  const a = new BeaconBoard(settings('web-a'), 'boot-web-a', 0);
  const next = (words = held(false), at = 1100) => a.compose(words, at, WALL + at);
  const cases: [string, Uint8Array, string, string][] = [];
  // Signed with another secret.
  cases.push(['bad-mac', encodeHostBeacon(next(), {signing: {...testKey('another-secret-0123456789abcdef-01234'), id: testKeyring().signing.id}, accepted: []}), '192.0.2.11', 'bad-mac']);
  // From another address than web-a's.
  cases.push(['wrong-source', encodeHostBeacon(next(), testKeyring()), '192.0.2.99', 'wrong-source']);
  // A pair's beacon is another kind.
  const pairBeacon: Beacon = {pair: 'web', node: 'primary', host: 'web-a', boot: 'x', seq: 1, sentAt: WALL, state: 'active', epoch: 1, holdsIp: true,
    health: 'ok', switchId: '', ack: undefined};
  cases.push(['a pair\'s beacon', encodeMessage({kind: 'beacon', beacon: pairBeacon}, testKeyring().signing), '192.0.2.11', 'malformed']);
  // Another cluster's.
  const other = new BeaconBoard({...settings('web-a'), cluster: 'mail'}, 'boot-mail', 0);
  cases.push(['another cluster', encodeHostBeacon(other.compose(held(false), 1100, WALL + 1100), testKeyring()), '192.0.2.11', 'wrong-pair']);
  // Sent 10 s ago by its clock.
  cases.push(['stale', encodeHostBeacon(a.compose(held(false), 1100, WALL - 9000), testKeyring()), '192.0.2.11', 'stale']);
  for (const [name, datagram, from, reason] of cases) {
    const result = b.observe(datagram, from, 1100, WALL + 1100);
    t.like(result, {ok: false, reason}, name);
  }
  t.is(b.campaignNotBefore('web'), before, 'still counting from web-a\'s real beacon, which said it holds the service');
  // A replay of the beacon web-b already has (same run, same sequence number).
  const recorded = board('web-a').compose(held(false), 1200, WALL + 1200);
  t.true(b.observe(encodeHostBeacon(recorded, testKeyring()), '192.0.2.11', 1200, WALL + 1200).ok);
  t.like(b.observe(encodeHostBeacon(recorded, testKeyring()), '192.0.2.11', 1300, WALL + 1300), {ok: false, reason: 'replay'});
  t.is(b.rejected['replay'], 1);
  t.is(b.rejected['bad-mac'], 1);
});
