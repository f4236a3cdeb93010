// Three hosts claiming one service through an etcd in memory, on a FakeClock and one network segment: the preferred
// healthy host takes the address, a holder cut from etcd drops it before its lease expires and the next host takes
// it after, an address that answers elsewhere is never taken, and the address is never on two hosts. The watch wakes
// a standing-by host when the key goes, and the hosts' presence keys decide how long each waits for the others.

import test from 'ava';
import {leaseTiming} from '../../../agent/coordination/lease-holder.js';
import {CAMPAIGN_STAGGER_MS, CLAIM_POLL_MS, liveRank, ServiceClaim, stepClaimActions, WATCHED_POLL_MS} from '../../../agent/coordination/service-claim.js';
import type {Presence} from '../../../agent/coordination/presence.js';
import type {Logger} from '../../../agent/log.js';
import {announceAll, isAnyInUse} from '../../../agent/net/service-addresses.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {SharedEtcd} from '../../fakes/shared-etcd.js';
import {FakeDrainDriver} from '../../fakes/fake-drain-driver.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import {SERVICE_IP} from '../../fakes/test-config.js';

const PREFIX = '/baton/';
const KEY = '/baton/services/web/holder';
const TTL_S = 3;
// The derived default margin for a 3 s lease (a fifth of it).
const TIMING = leaseTiming(TTL_S, 600);

interface Host {
  readonly name: string;
  readonly network: FakeNetworkDriver;
  readonly claim: ServiceClaim;
  readonly lines: string[];
  cut: boolean;
  healthy: boolean;
  readonly stop: AbortController;
  readonly ran: Promise<void>;
}

function quietLogger(lines: string[]): Logger {
  const keep = (message: string): void => {
    lines.push(message);
  };
  return {error: keep, warning: keep, notice: keep, info: keep, debug: () => undefined};
}

function world(names = ['host-a', 'host-b', 'host-c']) {
  const clock = new FakeClock();
  const etcd = new SharedEtcd(clock);
  const segment = new FakeSegment();
  const hosts: Host[] = names.map((name) => {
    const network = new FakeNetworkDriver(name, segment);
    const lines: string[] = [];
    const stop = new AbortController();
    const ips = [SERVICE_IP];
    const host = {name, network, lines, cut: false, healthy: true, stop} as Host & {claim: ServiceClaim; ran: Promise<void>};
    const run = {mode: 'address' as const, clock, ctx: {
      service: {ip: SERVICE_IP, ips, interface: 'eth0', mode: 'address' as const}, network,
      announce: () => announceAll(network, ips), probe: () => isAnyInUse(network, ips),
      drain: new FakeDrainDriver(), giverAddresses: () => [],
    }};
    const claim = new ServiceClaim({
      clock, store: etcd.viewFrom(host), timing: TIMING, leaseTtlS: TTL_S, prefix: PREFIX, key: KEY, self: name, hosts: names,
      healthy: () => host.healthy, actions: stepClaimActions(run), log: quietLogger(lines), signal: stop.signal,
    });
    return Object.assign(host, {claim, ran: claim.run()});
  });
  /** Advances time in small steps, noting every moment the address was on more than one host. */
  const advance = async (ms: number, step = 10): Promise<string[]> => {
    const doubles: string[] = [];
    for (let t = 0; t < ms; t += step) {
      await clock.advance(step);
      // etcd's leader expires leases on its own clock, whoever calls.
      etcd.expireDue();
      const holders = segment.holders(SERVICE_IP.address).map((d) => d.name);
      if (holders.length > 1) doubles.push(`${clock.now()} ms: ${holders.join(', ')}`);
    }
    return doubles;
  };
  const holders = (): string[] => segment.holders(SERVICE_IP.address).map((d) => d.name);
  const stopAll = async (): Promise<void> => {
    for (const host of hosts) host.stop.abort();
    await clock.advance(5000);
    await Promise.all(hosts.map((host) => host.ran));
  };
  return {clock, etcd, segment, hosts, advance, holders, stopAll};
}

test('the first host in the preference takes the address; the others stand by and name it as the holder', async (t) => {
  const w = world();
  t.deepEqual(await w.advance(2000), []);
  t.deepEqual(w.holders(), ['host-a']);
  const [a, b, c] = w.hosts;
  t.true(a?.claim.holds());
  t.like(a?.claim.state, {phase: 'holding'});
  t.like(b?.claim.state, {phase: 'standing-by', holder: 'host-a'});
  t.like(c?.claim.state, {phase: 'standing-by', holder: 'host-a'});
  // Renewed all along: still the holder a minute later, at the same epoch.
  const epoch = a?.claim.state.phase === 'holding' ? a.claim.state.epoch : undefined;
  t.deepEqual(await w.advance(60_000, 50), []);
  t.deepEqual(w.holders(), ['host-a']);
  t.like(a?.claim.state, {phase: 'holding', epoch});
  await w.stopAll();
});

test('a holder cut from etcd drops the address before its lease can expire; the next host takes it after, at a higher epoch', async (t) => {
  const w = world();
  await w.advance(2000);
  const [a, b] = w.hosts;
  const epoch = a?.claim.state.phase === 'holding' ? a.claim.state.epoch : 0;
  const leaseId = a?.claim.state.phase === 'holding' ? a.claim.state.lease : '';
  if (a !== undefined) a.cut = true;
  let droppedAt: number | undefined;
  let expiredAt: number | undefined;
  let takenAt: number | undefined;
  const doubles: string[] = [];
  for (let i = 0; i < 1000 && takenAt === undefined; i += 1) {
    doubles.push(...await w.advance(10));
    if (droppedAt === undefined && !w.holders().includes('host-a')) droppedAt = w.clock.now();
    if (expiredAt === undefined && w.etcd.store.expiresAtMs(leaseId) === undefined) expiredAt = w.clock.now();
    if (w.holders().includes('host-b')) takenAt = w.clock.now();
  }
  t.deepEqual(doubles, [], 'never on two hosts');
  t.truthy(droppedAt && expiredAt && takenAt, `dropped ${droppedAt}, expired ${expiredAt}, taken ${takenAt}; ${w.hosts.map((h) => `${h.name}: ${JSON.stringify(h.claim.state)}\n${h.lines.join('\n')}`).join('\n')}`);
  t.true((droppedAt ?? Infinity) < (expiredAt ?? 0), `host-a dropped at ${droppedAt} ms, before etcd expired its lease at ${expiredAt} ms`);
  t.true((takenAt ?? 0) >= (expiredAt ?? Infinity), 'host-b took the address only once the key was free');
  t.true(b?.claim.state.phase === 'holding' && b.claim.state.epoch > epoch, 'a higher epoch than the cut holder\'s');
  t.deepEqual(w.hosts.map((h) => h.network.addresses.has(SERVICE_IP.address)), [false, true, false]);
  t.log(`dropped ${(droppedAt ?? 0) - 2000} ms after the cut, lease expired ${(expiredAt ?? 0) - 2000} ms, taken ${(takenAt ?? 0) - 2000} ms`);
  await w.stopAll();
});

test('a host whose health checks fail does not campaign: the next one takes the address', async (t) => {
  const w = world();
  const [a] = w.hosts;
  if (a !== undefined) a.healthy = false;
  t.deepEqual(await w.advance(3000), []);
  t.deepEqual(w.holders(), ['host-b']);
  t.like(a?.claim.state, {phase: 'standing-by', holder: 'host-b'});
  await w.stopAll();
});

test('a host cut from etcd at start never campaigns: not knowing the key is not seeing it absent', async (t) => {
  const w = world(['host-a']);
  const [a] = w.hosts;
  if (a !== undefined) a.cut = true;
  await w.advance(5000);
  t.deepEqual(w.holders(), []);
  t.like(a?.claim.state, {phase: 'standing-by', holder: undefined});
  t.regex(a?.claim.state.phase === 'standing-by' ? a.claim.state.error ?? '' : '', /no answer within 1000 ms/);
  if (a !== undefined) a.cut = false;
  await w.advance(2000);
  t.deepEqual(w.holders(), ['host-a'], 'it campaigns once it can read the key again');
  await w.stopAll();
});

test('an address that answers from a host outside the claim is never taken: the key is given back, and nobody serves beside it', async (t) => {
  const w = world(['host-a', 'host-b']);
  // Someone's leftover: the address on another machine of the segment, no agent, no key.
  const stray = new FakeNetworkDriver('stray', w.segment);
  stray.addresses.add(SERVICE_IP.address);
  t.deepEqual(await w.advance(4000), []);
  t.deepEqual(w.holders(), ['stray'], 'only the stray has it');
  t.true(w.hosts.every((h) => !h.network.addresses.has(SERVICE_IP.address)));
  t.true(w.hosts.some((h) => h.lines.some((l) => /taking the address failed: .*answered/.test(l))), 'the host says why it gave up');
  // The stray goes: the next campaign takes it.
  stray.addresses.delete(SERVICE_IP.address);
  t.deepEqual(await w.advance(6000), []);
  t.is(w.holders().length, 1);
  await w.stopAll();
});

test('a host whose take was refused stands by while it waits to campaign again: it does not say it holds', async (t) => {
  const w = world(['host-a', 'host-b']);
  const stray = new FakeNetworkDriver('stray', w.segment);
  stray.addresses.add(SERVICE_IP.address);
  const [a] = w.hosts;
  const refused = (): boolean => a?.lines.some((l) => /taking the address failed/.test(l)) ?? false;
  for (let i = 0; i < 500 && !refused(); i += 1) await w.advance(10);
  t.true(refused(), a?.lines.join('\n'));
  // Within a look at the key: what `baton status` and the hook are told is the key as it is, not the campaign's end.
  await w.advance(CLAIM_POLL_MS);
  t.false(a?.claim.holds());
  t.is(a?.claim.state.phase, 'standing-by', JSON.stringify(a?.claim.state));
  t.deepEqual(w.holders(), ['stray']);
  await w.stopAll();
});

test('a holder that lost its hold looks at the key again at once: cut from etcd, it says it cannot read it', async (t) => {
  const w = world(['host-a', 'host-b']);
  await w.advance(2000);
  const [a] = w.hosts;
  t.true(a?.claim.holds());
  if (a !== undefined) a.cut = true;
  for (let i = 0; i < 500 && a?.network.addresses.has(SERVICE_IP.address) === true; i += 1) await w.advance(10);
  t.false(a?.network.addresses.has(SERVICE_IP.address), 'dropped');
  // The revoke after the drop gets a renewal interval, the read after it a second (CALL_TIMEOUT_MS), and a read the
  // silent watch leaves to the poll up to two more: then it knows it cannot read the key, rather than standing by as if
  // the key were absent for its backoff first.
  await w.advance(TIMING.renewEveryMs + 1000 + CLAIM_POLL_MS + 2000);
  t.like(a?.claim.state, {phase: 'standing-by', holder: undefined});
  t.regex(a?.claim.state.phase === 'standing-by' ? a.claim.state.error ?? '' : '', /no answer within/);
  await w.stopAll();
});

test('at start an agent removes an address it finds, and revokes a key of its name left by the agent before it', async (t) => {
  const clock = new FakeClock();
  const etcd = new SharedEtcd(clock);
  // The agent before this one held the key (its lease still alive) and the address.
  const old = etcd.viewFrom({cut: false});
  const grant = old.grantLease(TTL_S);
  await clock.advance(10);
  const lease = await grant;
  const acquire = old.acquire(KEY, 'host-a', lease.id);
  await clock.advance(10);
  await acquire;
  const segment = new FakeSegment();
  const network = new FakeNetworkDriver('host-a', segment);
  network.addresses.add(SERVICE_IP.address);
  const ips = [SERVICE_IP];
  const lines: string[] = [];
  const stop = new AbortController();
  const claim = new ServiceClaim({
    clock, store: etcd.viewFrom({cut: false}), timing: TIMING, leaseTtlS: TTL_S, prefix: PREFIX, key: KEY, self: 'host-a', hosts: ['host-a'],
    healthy: () => true, log: quietLogger(lines), signal: stop.signal,
    actions: stepClaimActions({mode: 'address', clock, ctx: {service: {ip: SERVICE_IP, ips, interface: 'eth0', mode: 'address'}, network,
      announce: () => announceAll(network, ips), probe: () => isAnyInUse(network, ips), drain: new FakeDrainDriver(), giverAddresses: () => []}}),
  });
  const ran = claim.run();
  await clock.advance(5);
  t.false(network.addresses.has(SERVICE_IP.address), 'no address without a key this agent holds');
  await clock.advance(CLAIM_POLL_MS + CAMPAIGN_STAGGER_MS + 500);
  t.true(lines.some((l) => l.includes(`revoking its lease ${lease.id}`)), lines.join('\n'));
  t.like(claim.state, {phase: 'holding'});
  t.not(claim.state.phase === 'holding' ? claim.state.lease : lease.id, lease.id, 'a lease of its own, not the old one');
  t.true(network.addresses.has(SERVICE_IP.address));
  stop.abort();
  await clock.advance(5000);
  await ran;
});

/** Steps time until `done` says so (at most `ms`), noting each moment the address was on two hosts. */
async function until(w: ReturnType<typeof world>, done: () => boolean, ms = 20_000): Promise<{at: number | undefined; doubles: string[]}> {
  const doubles: string[] = [];
  for (let t = 0; t < ms; t += 10) {
    doubles.push(...await w.advance(10));
    if (done()) return {at: w.clock.now(), doubles};
  }
  return {at: undefined, doubles};
}

/** When the key was deleted, from a watch of our own on the fake etcd. */
function keyDeletions(w: ReturnType<typeof world>): {at: number[]; stop: AbortController} {
  const at: number[] = [];
  const stop = new AbortController();
  void (async () => {
    for await (const event of w.etcd.store.watch(KEY, stop.signal)) if (event.type === 'delete') at.push(w.clock.now());
  })();
  return {at, stop};
}

test('the live rank counts only the present, healthy hosts before this one, and not the host whose key just went', (t) => {
  const ok: Presence = {health: 'ok', version: '0.2.0', since: '2026-12-06T20:00:00.000Z'};
  const hosts = ['a', 'b', 'c', 'd'];
  t.is(liveRank(hosts, 'd', undefined, undefined), 3, 'no presence read: the configured rank');
  t.is(liveRank(hosts, 'd', new Map(), undefined), 0, 'nobody present before it');
  t.is(liveRank(hosts, 'd', new Map([['a', ok], ['b', {...ok, health: 'failing'}], ['c', ok]]), undefined), 2, 'b fails');
  t.is(liveRank(hosts, 'd', new Map([['a', ok], ['b', ok], ['c', ok]]), 'a'), 2, 'a just held: it backs off');
  t.is(liveRank(hosts, 'b', new Map([['a', ok], ['c', ok], ['d', ok]]), undefined), 1, 'hosts after it do not count');
  t.is(liveRank(hosts, 'a', new Map([['b', ok]]), undefined), 0);
});

test('a holder that gives the key up is followed at once: the watch wakes the next host, which need not wait for a poll', async (t) => {
  const w = world();
  for (const name of ['host-a', 'host-b', 'host-c']) await w.etcd.present(PREFIX, TTL_S, name);
  await w.advance(2000);
  t.deepEqual(w.holders(), ['host-a']);
  const [a, b] = w.hosts;
  // Two polls' worth of quiet first, so that host-b is mid-wait when the key goes.
  await w.advance(2 * WATCHED_POLL_MS + 30);
  const deletions = keyDeletions(w);
  await w.advance(10);
  a?.stop.abort();
  const {at, doubles} = await until(w, () => w.holders().includes('host-b'));
  deletions.stop.abort();
  t.deepEqual(doubles, []);
  const gone = deletions.at[0];
  t.truthy(at !== undefined && gone !== undefined, `b took the address at ${at}, the key went at ${gone}`);
  // host-a is passed over (it just held), host-b is first among the live: a lookup and a campaign, no poll, no stagger.
  t.true((at ?? Infinity) - (gone ?? 0) < CLAIM_POLL_MS, `host-b took the address ${(at ?? 0) - (gone ?? 0)} ms after the key went`);
  t.like(b?.claim.state, {phase: 'holding'});
  t.true(b?.claim.watching, 'through an open watch');
  await w.stopAll();
});

test('with the hosts before it dead, the last host campaigns when the key expires, without a stagger for each of them', async (t) => {
  const w = world();
  const leases = {a: await w.etcd.present(PREFIX, TTL_S, 'host-a'), b: await w.etcd.present(PREFIX, TTL_S, 'host-b')};
  await w.etcd.present(PREFIX, TTL_S, 'host-c');
  await w.advance(2000);
  t.deepEqual(w.holders(), ['host-a']);
  const [a, b, c] = w.hosts;
  if (a === undefined || b === undefined || c === undefined) return t.fail();
  // a and b go dark: a cannot renew (it drops by its deadline) and b cannot campaign; their presence leases expire.
  a.cut = true;
  b.cut = true;
  w.etcd.store.expire(leases.a);
  w.etcd.store.expire(leases.b);
  const deletions = keyDeletions(w);
  const {at, doubles} = await until(w, () => w.holders().includes('host-c'));
  deletions.stop.abort();
  t.deepEqual(doubles, []);
  const gone = deletions.at[0] ?? Infinity;
  t.true((at ?? Infinity) >= gone, 'not before the key went');
  t.true((at ?? Infinity) - gone < CAMPAIGN_STAGGER_MS, `host-c took the address ${(at ?? Infinity) - gone} ms after the key went, ` +
    `not the ${2 * CAMPAIGN_STAGGER_MS} ms of its configured rank`);
  await w.stopAll();
});

test('a present, healthy host before this one is waited for: it takes the address, not this one', async (t) => {
  const w = world();
  const leaseA = await w.etcd.present(PREFIX, TTL_S, 'host-a');
  await w.etcd.present(PREFIX, TTL_S, 'host-b');
  await w.etcd.present(PREFIX, TTL_S, 'host-c');
  await w.advance(2000);
  const [a] = w.hosts;
  if (a === undefined) return t.fail();
  a.cut = true;
  w.etcd.store.expire(leaseA);
  const {at, doubles} = await until(w, () => w.holders().length === 1 && !w.holders().includes('host-a'));
  t.deepEqual(doubles, []);
  t.truthy(at);
  t.deepEqual(w.holders(), ['host-b'], 'host-c waited one stagger for host-b, which was quicker');
  await w.stopAll();
});

test('with its watch broken the standing-by host still finds the key gone by polling, and takes the address', async (t) => {
  const w = world(['host-a', 'host-b']);
  await w.advance(2000);
  const [a, b] = w.hosts;
  if (a === undefined || b === undefined) return t.fail();
  // Every watch breaks, and every one opened again is cancelled at once: a cluster whose members keep losing their leader.
  w.etcd.store.refuseWatches = 'etcdserver: no leader';
  w.etcd.store.breakWatches();
  await w.advance(1500);
  t.false(b.claim.watching, 'the watch is down');
  a.stop.abort();
  const {at, doubles} = await until(w, () => w.holders().includes('host-b'));
  t.deepEqual(doubles, []);
  t.truthy(at, 'host-b took it through its poll');
  t.true(b.lines.some((line) => /watch \/baton\/\) .*no leader; looking at the keys every poll/.test(line)), b.lines.join('\n'));
  await w.stopAll();
});

test('a host cut from etcd, whose watch goes silent, still never campaigns, and campaigns again once it reads the key', async (t) => {
  const w = world(['host-a', 'host-b']);
  await w.advance(2000);
  const [a, b] = w.hosts;
  if (a === undefined || b === undefined) return t.fail();
  b.cut = true;
  // host-a goes away while b hears nothing: b's watch is silent, its reads fail.
  a.stop.abort();
  t.deepEqual(await w.advance(5000), []);
  t.deepEqual(w.holders(), [], 'b took nothing while it could not read the key');
  t.like(b.claim.state, {phase: 'standing-by', holder: undefined});
  b.cut = false;
  const {at} = await until(w, () => w.holders().includes('host-b'), 3 * WATCHED_POLL_MS);
  t.truthy(at, 'its poll found the key absent');
  await w.stopAll();
});

test('a stop that comes while a host campaigns ends its run with no address and no key: nothing is left renewing', async (t) => {
  const w = world(['host-a', 'host-b']);
  const [a] = w.hosts;
  for (let i = 0; i < 5000 && a?.claim.state.phase !== 'campaigning'; i += 1) await w.clock.advance(1);
  t.is(a?.claim.state.phase, 'campaigning');
  a?.stop.abort();
  let ended = false;
  void a?.ran.then(() => {
    ended = true;
  });
  await w.advance(8000);
  t.true(ended, `run ended; state ${JSON.stringify(a?.claim.state)}; lines ${a?.lines.join(' | ')}`);
  t.false(a?.network.addresses.has(SERVICE_IP.address), 'no address');
  const reading = w.etcd.store.read(KEY);
  await w.clock.advance(10);
  t.not((await reading)?.value, 'host-a', 'no key of its name');
  await w.stopAll();
});
