// The fake etcd's watch, which the claim's tests lean on: it must behave as etcd's does where baton depends on it
// (every change under the prefix, in revision order, deletions by a lease's end included; history after a revision;
// ended by its signal; broken with COORDINATION_UNAVAILABLE), or those tests prove nothing.

import test from 'ava';
import {isBatonError} from '../../../agent/errors.js';
import type {CoordinationEvent} from '../../../agent/ports.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeCoordinationStore} from '../../fakes/fake-coordination-store.js';

/** Runs `work` while stepping the fake clock, as the calls take fake time. */
async function run<T>(clock: FakeClock, work: Promise<T>): Promise<T> {
  let done = false;
  const watched = work.finally(() => {
    done = true;
  });
  for (let t = 0; t < 10_000 && !done; t += 5) await clock.advance(5);
  return watched;
}

function collect(store: FakeCoordinationStore, prefix: string, signal: AbortSignal, after?: number): {events: CoordinationEvent[]; ended: Promise<unknown>} {
  const events: CoordinationEvent[] = [];
  const ended = (async () => {
    for await (const event of store.watch(prefix, signal, after)) events.push(event);
    return 'ended';
  })().catch((error: unknown) => error);
  return {events, ended};
}

const summary = (events: readonly CoordinationEvent[]): string[] =>
  events.map((event) => (event.type === 'put' ? `put ${event.key.key}=${event.key.value}@${event.key.modRevision}` : `delete ${event.key}@${event.modRevision}`));

test('a watch sees every put and deletion under its prefix in revision order, a lease\'s end deleting its keys', async (t) => {
  const clock = new FakeClock();
  const store = new FakeCoordinationStore(clock);
  const stop = new AbortController();
  const watch = collect(store, '/baton/', stop.signal);
  await clock.advance(10);
  const lease = await run(clock, store.grantLease(3));
  await run(clock, store.acquire('/baton/services/web/holder', 'a', lease.id));
  await run(clock, store.put('/baton/hosts/a', '{"health":"ok"}', lease.id));
  await run(clock, store.put('/other/key', 'x', lease.id));
  await run(clock, store.revokeLease(lease.id));
  await clock.advance(10);
  t.deepEqual(summary(watch.events), [
    'put /baton/services/web/holder=a@2', 'put /baton/hosts/a={"health":"ok"}@3',
    'delete /baton/services/web/holder@5', 'delete /baton/hosts/a@6',
  ]);
  stop.abort();
  t.is(await watch.ended, 'ended', 'its signal ends it');
  t.is(store.watchCount, 0);
});

test('a watch from a revision replays what came after it; breakWatches and refuseWatches fail watches as a member without a leader does', async (t) => {
  const clock = new FakeClock();
  const store = new FakeCoordinationStore(clock);
  const lease = await run(clock, store.grantLease(3));
  const first = await run(clock, store.put('/baton/hosts/a', 'one', lease.id));
  await run(clock, store.put('/baton/hosts/a', 'two', lease.id));
  const stop = new AbortController();
  const watch = collect(store, '/baton/hosts/', stop.signal, first.modRevision);
  await clock.advance(10);
  t.deepEqual(summary(watch.events), ['put /baton/hosts/a=two@3']);
  store.breakWatches();
  const broken = await watch.ended;
  t.true(isBatonError(broken, 'COORDINATION_UNAVAILABLE'), String(broken));
  store.refuseWatches = 'etcdserver: no leader';
  const refused = collect(store, '/baton/', stop.signal);
  await clock.advance(10);
  t.regex(String(await refused.ended), /cancelled: etcdserver: no leader/);
  store.mode = 'unreachable';
  store.refuseWatches = undefined;
  const unreachable = collect(store, '/baton/', stop.signal);
  await clock.advance(1000);
  t.true(isBatonError(await unreachable.ended, 'COORDINATION_UNAVAILABLE'), 'opening one fails as any call does');
  stop.abort();
});
