// A host's presence key: written under a lease of its own with its health, kept alive, written again when the health
// changes or the lease was lost (etcd out of reach for longer than its TTL), and revoked when the agent stops.

import test from 'ava';
import {leaseTiming} from '../../../agent/coordination/lease-holder.js';
import {parsePresence, PresenceKeeper} from '../../../agent/coordination/presence.js';
import type {Logger} from '../../../agent/log.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeCoordinationStore} from '../../fakes/fake-coordination-store.js';

const KEY = '/baton/hosts/a';
const TTL_S = 3;

function world() {
  const clock = new FakeClock();
  const store = new FakeCoordinationStore(clock);
  const lines: string[] = [];
  const keep = (line: string): void => void lines.push(line);
  const log: Logger = {error: keep, warning: keep, notice: keep, info: keep, debug: () => undefined};
  const stop = new AbortController();
  const keeper = new PresenceKeeper({clock, store, key: KEY, leaseTtlS: TTL_S, timing: leaseTiming(TTL_S, 600), version: '0.2.0', log,
    signal: stop.signal}, 'ok');
  const ran = keeper.run();
  const advance = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) {
      await clock.advance(10);
      // etcd expires leases on its own clock.
      for (const id of ['100', '101', '102', '103']) if ((store.expiresAtMs(id) ?? Infinity) <= clock.now()) store.expire(id);
    }
  };
  const read = async () => {
    const reading = store.read(KEY);
    await clock.advance(20);
    const stored = await reading;
    return stored === undefined ? undefined : {lease: stored.lease, ...parsePresence(stored.value)};
  };
  return {clock, store, keeper, lines, stop, ran, advance, read};
}

test('the key says the health under a lease of its own, stays while the agent runs, and is rewritten when the health changes', async (t) => {
  const w = world();
  await w.advance(100);
  const first = await w.read();
  t.like(first, {health: 'ok', version: '0.2.0'});
  t.true(w.keeper.written);
  t.is(w.store.expiresAtMs(first?.lease ?? ''), w.store.expiresAtMs(first?.lease ?? ''), 'a lease etcd has');
  await w.advance(10 * TTL_S * 1000);
  t.like(await w.read(), {health: 'ok', lease: first?.lease}, 'renewed all along: the same lease ten TTLs later');
  w.clock.stepWall(60_000);
  w.keeper.setHealth('failing');
  await w.advance(50);
  const failing = await w.read();
  t.like(failing, {health: 'failing', lease: first?.lease});
  t.true(Date.parse(failing?.since ?? '') > Date.parse(first?.since ?? ''), 'since: when the health changed');
  w.stop.abort();
  await w.advance(100);
  await w.ran;
  t.is(await w.read(), undefined, 'a stop revokes the lease: the key goes at once');
});

test('etcd out of reach for longer than the TTL: the key goes, and comes back under a new lease once etcd answers', async (t) => {
  const w = world();
  await w.advance(100);
  const before = await w.read();
  w.store.mode = 'unreachable';
  await w.advance(2 * TTL_S * 1000);
  w.store.mode = 'ok';
  t.is(w.store.expiresAtMs(before?.lease ?? ''), undefined, 'its lease expired meanwhile');
  await w.advance(2000);
  const after = await w.read();
  t.like(after, {health: 'ok'});
  t.not(after?.lease, before?.lease);
  t.is(w.lines.filter((line) => line.includes('cannot keep this host\'s presence')).length, 1, 'said once, not at each retry');
  t.true(w.lines.some((line) => line.endsWith('written again')));
  w.stop.abort();
  await w.advance(100);
  await w.ran;
});

test('a presence value is read only when it is one', (t) => {
  t.deepEqual(parsePresence('{"health":"ok","version":"0.2.0","since":"2026-12-06T20:00:00.000Z"}'),
    {health: 'ok', version: '0.2.0', since: '2026-12-06T20:00:00.000Z'});
  for (const bad of ['', 'ok', '{"health":"fine","version":"0.2.0","since":"x"}', '{"health":"ok"}', 'null']) t.is(parsePresence(bad), undefined, bad);
});

test('the value says, per service, whether the host can drain it and its own addresses; a value without them, or with forged ones, says nothing of the drain', (t) => {
  const base = {health: 'ok', version: '0.2.0', since: '2026-12-06T20:00:00.000Z'};
  t.deepEqual(parsePresence(JSON.stringify({...base, drain: {web: {addresses: ['192.0.2.11', '2001:DB8::11']}, api: {unavailable: 'link mode'}}})),
    {...base, drain: {web: {addresses: ['192.0.2.11', '2001:db8::11']}, api: {unavailable: 'link mode'}}});
  t.deepEqual(parsePresence(JSON.stringify(base)), base, 'an older baton\'s value: no drain part');
  for (const forged of [{addresses: ['eth0']}, {addresses: []}, {addresses: ['192.0.2.1', '192.0.2.2', '192.0.2.3']}, 'yes', {addresses: [7]}]) {
    t.deepEqual(parsePresence(JSON.stringify({...base, drain: {web: forged}})), base, JSON.stringify(forged));
  }
  t.deepEqual(parsePresence(JSON.stringify({...base, drain: {web: {addresses: ['eth0']}, api: {addresses: ['192.0.2.11']}}})),
    {...base, drain: {api: {addresses: ['192.0.2.11']}}}, 'a forged part is left out, the others kept');
});

test('setDrain rewrites the key at once when the addresses change, and not when they do not', async (t) => {
  const w = world();
  await w.advance(100);
  const puts = (): number => w.store.journal.filter((entry) => entry.op === 'put').length;
  const before = puts();
  w.keeper.setDrain('web', {addresses: ['192.0.2.11']});
  await w.advance(50);
  t.like(await w.read(), {drain: {web: {addresses: ['192.0.2.11']}}});
  t.is(puts(), before + 1);
  w.keeper.setDrain('web', {addresses: ['192.0.2.11']});
  await w.advance(50);
  t.is(puts(), before + 1, 'the same addresses: no write');
  w.keeper.setDrain('web', {addresses: ['192.0.2.12']});
  await w.advance(50);
  t.like(await w.read(), {drain: {web: {addresses: ['192.0.2.12']}}});
  w.stop.abort();
  await w.advance(100);
  await w.ran;
});
