// keep-while-peers-agree with three hosts on a FakeClock: an etcd in memory each host reaches or not, one network
// segment for the address, and the hosts' beacons on a fake LAN whose directions can be cut. Every case samples the
// segment every 10 ms: the address is never on two hosts.

import test from 'ava';
import {leaseTiming} from '../../../agent/coordination/lease-holder.js';
import {HostBeacons} from '../../../agent/coordination/host-beacons.js';
import {ServiceClaim, stepClaimActions} from '../../../agent/coordination/service-claim.js';
import type {Logger} from '../../../agent/log.js';
import {announceAll, isAnyInUse} from '../../../agent/net/service-addresses.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {SharedEtcd} from '../../fakes/shared-etcd.js';
import {FakeDrainDriver} from '../../fakes/fake-drain-driver.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import {FakeBeaconNet} from '../../fakes/fake-beacon-net.js';
import {SERVICE_IP, testKeyring} from '../../fakes/test-config.js';

const PREFIX = '/baton/';
const KEY = '/baton/services/web/holder';
const TTL_S = 3;
const MARGIN_MS = 600;
const TIMING = leaseTiming(TTL_S, MARGIN_MS);
const INTERVAL_MS = 200;
const D = 1000;
const NAMES = ['host-a', 'host-b', 'host-c'];
const ADDRESSES = new Map(NAMES.map((name, index) => [name, `192.0.2.${11 + index}`]));

interface Host {
  readonly name: string;
  readonly address: string;
  readonly network: FakeNetworkDriver;
  claim: ServiceClaim;
  lines: string[];
  cut: boolean;
  stop: AbortController;
  ran: Promise<void>;
}

function logger(lines: string[]): Logger {
  const keep = (message: string): void => {
    lines.push(message);
  };
  return {error: keep, warning: keep, notice: keep, info: keep, debug: () => undefined};
}

function world(options: {keep: boolean}) {
  const clock = new FakeClock();
  const etcd = new SharedEtcd(clock);
  const segment = new FakeSegment();
  const net = new FakeBeaconNet();
  let boots = 0;
  /** Starts (or restarts) a host's agent: a new claim, and new beacons with a new boot. */
  const start = (host: Host): void => {
    const lines: string[] = [];
    const stop = new AbortController();
    const ips = [SERVICE_IP];
    const {network} = host;
    const run = {mode: 'address' as const, clock, ctx: {
      service: {ip: SERVICE_IP, ips, interface: 'eth0', mode: 'address' as const}, network,
      announce: () => announceAll(network, ips), probe: () => isAnyInUse(network, ips),
      drain: new FakeDrainDriver(), giverAddresses: () => [],
    }};
    let claim: ServiceClaim | undefined;
    const beacons = options.keep ? new HostBeacons({
      clock, socket: net.socket(host.address), log: logger(lines), boot: `boot-${(boots += 1)}`, signal: stop.signal,
      settings: {cluster: 'web', self: host.name, hosts: NAMES, addresses: ADDRESSES, keyring: testKeyring(), intervalMs: INTERVAL_MS,
        heardWithinMs: D, marginMs: MARGIN_MS},
      services: () => [{name: 'web', ...claim?.beaconWord() ?? {held: false, epoch: 0, keeping: false}}],
      onBeacon: () => claim?.peersChanged(),
    }) : undefined;
    claim = new ServiceClaim({
      clock, store: etcd.viewFrom(host), timing: TIMING, leaseTtlS: TTL_S, prefix: PREFIX, key: KEY, self: host.name, hosts: NAMES,
      healthy: () => true, actions: stepClaimActions(run), log: logger(lines), signal: stop.signal,
      onPhase: () => void beacons?.sendNow(),
      ...beacons === undefined ? {} : {peers: {
        keepUntilMs: (nowMs: number) => {
          const verdict = beacons.board.keepUntil('web', nowMs);
          return verdict.ok ? verdict.untilMs : undefined;
        },
        campaignNotBeforeMs: () => beacons.board.campaignNotBefore('web'),
      }},
    });
    host.claim = claim;
    host.lines = lines;
    host.stop = stop;
    host.ran = Promise.all([claim.run(), beacons?.run()]).then(() => undefined);
  };
  const hosts: Host[] = NAMES.map((name) => {
    const host = {name, address: ADDRESSES.get(name) ?? '', network: new FakeNetworkDriver(name, segment), cut: false} as Host;
    start(host);
    return host;
  });
  const holders = (): string[] => segment.holders(SERVICE_IP.address).map((d) => d.name);
  /** Advances in 10 ms steps, noting every moment the address was on more than one host. */
  const advance = async (ms: number): Promise<string[]> => {
    const doubles: string[] = [];
    for (let t = 0; t < ms; t += 10) {
      await clock.advance(10);
      etcd.expireDue();
      if (holders().length > 1) doubles.push(`${clock.now()} ms: ${holders().join(', ')}`);
    }
    return doubles;
  };
  /** Advances until `until()` or `ms`, noting doubles; returns when it happened (undefined: never). */
  const advanceUntil = async (ms: number, until: () => boolean, doubles: string[]): Promise<number | undefined> => {
    for (let t = 0; t < ms; t += 10) {
      doubles.push(...await advance(10));
      if (until()) return clock.now();
    }
    return undefined;
  };
  const host = (name: string): Host => hosts.find((h) => h.name === name) as Host;
  const restart = async (name: string): Promise<void> => {
    const h = host(name);
    h.stop.abort();
    await clock.advance(10);
    await h.ran;
    start(h);
  };
  const stopAll = async (): Promise<void> => {
    for (const h of hosts) h.stop.abort();
    for (const h of hosts) h.cut = false;
    await clock.advance(5000);
    await Promise.all(hosts.map((h) => h.ran));
  };
  const says = (): string => hosts.map((h) => `${h.name}: ${JSON.stringify(h.claim.state)}\n  ${h.lines.join('\n  ')}`).join('\n');
  return {clock, etcd, net, hosts, host, holders, advance, advanceUntil, restart, stopAll, says};
}

type World = ReturnType<typeof world>;

/** The key as etcd has it now (the fake store answers after a few ms of its clock). */
async function readKey(w: World) {
  const read = w.etcd.store.read(KEY);
  await w.clock.advance(10);
  return read;
}

/** Whether a campaign found the address still answering elsewhere (the duplicate-address probe, the last line of
 *  defence): the rule must have kept the campaign back until the holder had dropped it. */
function probeAnswered(w: World): boolean {
  return w.hosts.some((h) => h.lines.some((l) => /duplicate-address/.test(l)));
}

async function holding(w: World): Promise<void> {
  await w.advance(2000);
  if (w.holders().join() !== 'host-a') throw new Error(`host-a should hold the service: ${w.says()}`);
}

test('all of etcd out of reach: with keep-while-peers-agree the holder keeps serving while the other hosts agree', async (t) => {
  const w = world({keep: true});
  await holding(w);
  for (const h of w.hosts) h.cut = true;
  t.deepEqual(await w.advance(30_000), [], 'never on two hosts');
  t.deepEqual(w.holders(), ['host-a'], w.says());
  t.true(w.host('host-a').claim.keeping);
  t.true(w.host('host-a').lines.some((l) => /keeping the address/.test(l)));
  await w.stopAll();
});

test('all of etcd out of reach: with drop the holder gives the address up at its deadline', async (t) => {
  const w = world({keep: false});
  await holding(w);
  for (const h of w.hosts) h.cut = true;
  t.deepEqual(await w.advance(10_000), []);
  t.deepEqual(w.holders(), []);
  await w.stopAll();
});

test('etcd back: a holder that kept it takes the key again, create-if-absent at a new epoch, and stays the one holder', async (t) => {
  const w = world({keep: true});
  await holding(w);
  const a = w.host('host-a');
  const before = a.claim.state.phase === 'holding' ? a.claim.state.epoch : 0;
  for (const h of w.hosts) h.cut = true;
  t.deepEqual(await w.advance(10_000), []);
  t.is(await readKey(w), undefined, 'the lease expired on etcd\'s side, and the key with it');
  for (const h of w.hosts) h.cut = false;
  t.deepEqual(await w.advance(10_000), []);
  t.deepEqual(w.holders(), ['host-a']);
  const key = await readKey(w);
  t.is(key?.value, 'host-a');
  t.like(a.claim.state, {phase: 'holding', epoch: key?.modRevision});
  t.true((key?.modRevision ?? 0) > before);
  t.false(a.claim.keeping);
  t.like(w.host('host-b').claim.state, {phase: 'standing-by', holder: 'host-a'});
  await w.stopAll();
});

test('etcd back with the key another\'s: the holder that kept it drops the address at once', async (t) => {
  const w = world({keep: true});
  await holding(w);
  const a = w.host('host-a');
  for (const h of w.hosts) h.cut = true;
  await w.advance(6000);
  t.is(await readKey(w), undefined);
  // Someone else's key meanwhile (written straight into etcd).
  const lease = w.etcd.store.grantLease(60);
  await w.clock.advance(10);
  const acquired = w.etcd.store.acquire(KEY, 'intruder', (await lease).id);
  await w.clock.advance(10);
  t.true((await acquired).acquired);
  t.deepEqual(w.holders(), ['host-a']);
  a.cut = false;
  const doubles: string[] = [];
  const droppedAt = await w.advanceUntil(5000, () => w.holders().length === 0, doubles);
  t.truthy(droppedAt, w.says());
  t.true(a.lines.some((l) => /intruder holds it now/.test(l)), a.lines.join('\n'));
  t.true(a.lines.some((l) => /key-taken/.test(l)), a.lines.join('\n'));
  await w.stopAll();
});

test('a holder cut from etcd alone keeps the service; the others see the key gone and do not campaign while they hear it', async (t) => {
  const w = world({keep: true});
  await holding(w);
  w.host('host-a').cut = true;
  t.deepEqual(await w.advance(20_000), []);
  t.deepEqual(w.holders(), ['host-a']);
  t.is(await readKey(w), undefined, 'the key is gone in etcd');
  t.like(w.host('host-b').claim.state, {phase: 'standing-by', holder: undefined});
  t.true(w.host('host-b').lines.some((l) => /no campaign for/.test(l)), w.host('host-b').lines.join('\n'));
  t.false(w.hosts.some((h) => h.name !== 'host-a' && h.lines.some((l) => /holds the key/.test(l))), 'no other host wrote the key');
  // etcd back for it: it writes the key again.
  w.host('host-a').cut = false;
  t.deepEqual(await w.advance(5000), []);
  t.is((await readKey(w))?.value, 'host-a');
  await w.stopAll();
});

for (const [title, cut] of [
  ['both ways', (w: World) => w.net.cutBoth('192.0.2.11', '192.0.2.12', '192.0.2.13')],
  ['one way, the holder\'s beacons lost', (w: World) => {
    w.net.cut('192.0.2.11', '192.0.2.12');
    w.net.cut('192.0.2.11', '192.0.2.13');
  }],
  ['one way, the other hosts\' beacons lost', (w: World) => {
    w.net.cut('192.0.2.12', '192.0.2.11');
    w.net.cut('192.0.2.13', '192.0.2.11');
  }],
] as const) {
  test(`a holder keeping without etcd whose beacons are cut ${title} drops before another host can take the service`, async (t) => {
    const w = world({keep: true});
    await holding(w);
    w.host('host-a').cut = true;
    await w.advance(10_000);
    t.deepEqual(w.holders(), ['host-a']);
    const cutAt = w.clock.now();
    cut(w);
    const doubles: string[] = [];
    const droppedAt = await w.advanceUntil(10_000, () => !w.holders().includes('host-a'), doubles);
    const takenAt = await w.advanceUntil(10_000, () => w.holders().length === 1, doubles);
    t.deepEqual(doubles, [], 'never on two hosts');
    t.truthy(droppedAt, w.says());
    t.truthy(takenAt, w.says());
    t.true((droppedAt ?? Infinity) < (takenAt ?? 0));
    t.true(w.host('host-a').lines.some((l) => /peers-disagree/.test(l)));
    t.false(probeAnswered(w), 'no campaign found the address still on host-a');
    t.log(`cut ${title}: host-a dropped ${(droppedAt ?? 0) - cutAt} ms after the cut, ${w.holders().join()} took it ${(takenAt ?? 0) - cutAt} ms after`);
    await w.stopAll();
  });
}

test('a host restarted while the holder keeps without etcd waits 2·D + M from its start before it campaigns, as if it had heard the holder just before', async (t) => {
  const w = world({keep: true});
  await holding(w);
  // Only host-b can reach etcd and campaign.
  w.host('host-a').cut = true;
  w.host('host-c').cut = true;
  await w.advance(10_000);
  t.is(await readKey(w), undefined);
  // host-b restarts and hears nothing of host-a: host-a's beacons to it are lost from now on.
  w.net.cut('192.0.2.11', '192.0.2.12');
  const restartedAt = w.clock.now();
  await w.restart('host-b');
  const doubles: string[] = [];
  const droppedAt = await w.advanceUntil(10_000, () => !w.host('host-a').network.addresses.has(SERVICE_IP.address), doubles);
  const takenAt = await w.advanceUntil(10_000, () => w.holders().join() === 'host-b', doubles);
  t.deepEqual(doubles, []);
  t.truthy(droppedAt, w.says());
  t.truthy(takenAt, w.says());
  t.false(probeAnswered(w), 'no campaign found the address still on host-a');
  t.true((takenAt ?? 0) - restartedAt >= 2 * D + MARGIN_MS, `host-b took it ${(takenAt ?? 0) - restartedAt} ms after its restart`);
  t.log(`host-a dropped ${(droppedAt ?? 0) - restartedAt} ms after host-b restarted, host-b took it ${(takenAt ?? 0) - restartedAt} ms after`);
  await w.stopAll();
});
