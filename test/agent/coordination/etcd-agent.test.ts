// A host in etcd mode as baton-agent runs it: the claim, the health checks that keep an unhealthy host from
// campaigning, the hook's states, the status report, the requests it refuses, and the stop that hands the service on.

import test from 'ava';
import {EtcdAgent} from '../../../agent/coordination/etcd-agent.js';
import {isBatonError} from '../../../agent/errors.js';
import type {StateChange} from '../../../agent/hooks.js';
import type {Logger} from '../../../agent/log.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeCoordinationStore} from '../../fakes/fake-coordination-store.js';
import {FakeDrainDriver} from '../../fakes/fake-drain-driver.js';
import {FakeHealthProbe} from '../../fakes/fake-health-probe.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import {SERVICE_IP, testEtcdConfig} from '../../fakes/test-config.js';

const KEY = '/baton/services/web/holder';

function quiet(lines: string[]): Logger {
  const keep = (message: string): void => void lines.push(message);
  return {error: keep, warning: keep, notice: keep, info: keep, debug: () => undefined};
}

function world(names = ['a', 'b']) {
  const clock = new FakeClock();
  const store = new FakeCoordinationStore(clock);
  const segment = new FakeSegment();
  const hosts = names.map((name) => {
    const network = new FakeNetworkDriver(name, segment);
    const health = new FakeHealthProbe();
    const changes: StateChange[] = [];
    const lines: string[] = [];
    const config = testEtcdConfig(name, {
      health: {intervalMs: 100, fall: 1, rise: 1, checks: [{kind: 'interface', interface: 'eth0'}]},
      coordination: {...testEtcdConfig(name).coordination, hosts: names, leaseTtlS: 3, renewMarginMs: 600},
    });
    const agent = new EtcdAgent({
      config, clock, store, network, drain: new FakeDrainDriver(), healthProbe: health, log: quiet(lines),
      hooks: {notify: (change) => void changes.push(change), drain: async () => undefined},
      hostname: `host-${name}`, pid: 1000,
    });
    return {name, agent, network, health, changes, lines};
  });
  const holders = (): string[] => segment.holders(SERVICE_IP.address).map((driver) => driver.name);
  const advance = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) await clock.advance(10);
  };
  /** Advances the fake clock until `work` is done (at most 10 s of it): a stop waits for calls that take fake time. */
  const settle = async <T>(work: Promise<T>): Promise<T> => {
    let done = false;
    const watched = work.finally(() => {
      done = true;
    });
    for (let t = 0; t < 10_000 && !done; t += 10) await clock.advance(10);
    return watched;
  };
  const stopAll = (): Promise<void[]> => settle(Promise.all(hosts.map((host) => host.agent.shutdown())));
  return {clock, store, hosts, holders, advance, settle, stopAll};
}

test('the first host takes the service; both report it, and the hook hears active and standby', async (t) => {
  const w = world();
  const [a, b] = w.hosts;
  if (a === undefined || b === undefined) return t.fail();
  for (const host of w.hosts) host.agent.start();
  await w.advance(1500);
  await w.settle(Promise.all([a.agent.ready(), b.agent.ready()]));
  t.deepEqual(w.holders(), ['a']);
  const held = await a.agent.status();
  t.like(held, {coordination: 'etcd', pair: 'web', key: KEY, hosts: ['a', 'b'],
    self: {host: 'a', hostname: 'host-a', holdsIp: true, held: ['192.0.2.100/24'], health: 'ok'},
    claim: {phase: 'holding', holder: 'a', error: undefined}});
  t.true((held.claim.deadlineInMs ?? 0) > 0, 'a holder has a deadline ahead');
  const standing = await b.agent.status();
  t.like(standing, {self: {host: 'b', holdsIp: false, held: []}, claim: {phase: 'standing-by', holder: 'a', epoch: held.claim.epoch,
    deadlineInMs: undefined}});
  t.deepEqual(a.changes.map((c) => [c.oldState, c.newState]), [['starting', 'standby'], ['standby', 'active']]);
  t.deepEqual(b.changes.map((c) => [c.oldState, c.newState]), [['starting', 'standby']]);
  t.regex(a.changes[1]?.reason ?? '', /^holds web's key at epoch \d+$/);
  await w.stopAll();
});

test('an unhealthy first host does not campaign: the next one takes the service', async (t) => {
  const w = world();
  const [a, b] = w.hosts;
  if (a === undefined || b === undefined) return t.fail();
  a.health.answer('interface eth0', {ok: false, detail: 'eth0 has no carrier'});
  for (const host of w.hosts) host.agent.start();
  await w.advance(2000);
  t.deepEqual(w.holders(), ['b']);
  t.like(await a.agent.status(), {self: {health: 'failing'}, claim: {phase: 'standing-by', holder: 'b'}});
  await w.stopAll();
});

test('a stop gives the service up, the address before the key, and the next host takes it', async (t) => {
  const w = world();
  const [a, b] = w.hosts;
  if (a === undefined || b === undefined) return t.fail();
  for (const host of w.hosts) host.agent.start();
  await w.advance(1500);
  t.deepEqual(w.holders(), ['a']);
  await w.settle(a.agent.shutdown());
  t.deepEqual(w.holders(), [], 'the address went with the stop');
  t.is((await w.settle(w.store.read(KEY)))?.value, undefined, 'and the key with it, before its lease could expire');
  t.deepEqual(a.changes.slice(-2).map((c) => [c.oldState, c.newState]), [['active', 'standby'], ['standby', 'stopping']]);
  await w.advance(1500);
  t.deepEqual(w.holders(), ['b'], 'b took it well before a lease of 3 s would have expired');
  await w.settle(b.agent.shutdown());
});

test('an address found at start is removed and said, and the planned requests of a pair are refused with what to do', async (t) => {
  const w = world(['a', 'b']);
  const [a] = w.hosts;
  if (a === undefined) return t.fail();
  await a.network.addAddress(SERVICE_IP);
  // Someone else holds the key: a must not keep the address it found.
  await w.settle(w.store.grantLease(30).then((lease) => w.store.acquire(KEY, 'b', lease.id)));
  a.agent.start();
  await w.advance(500);
  t.deepEqual(w.holders(), []);
  t.true(a.lines.some((line) => line === '(claim) removed 192.0.2.100/24 from the service interface'));
  for (const refused of [a.agent.switchover(), a.agent.resume(), a.agent.failActive(), a.agent.rehearsalAids()]) {
    const error = await t.throwsAsync(refused);
    t.true(isBatonError(error, 'BAD_REQUEST'));
    t.regex(error?.message ?? '', /^this agent runs etcd mode, which has no .+ yet: /);
  }
  await w.settle(a.agent.shutdown());
});
