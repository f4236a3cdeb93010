// Several services on one set of hosts in etcd mode: each under its own key, placed by its own order of hosts; status
// says which host holds which; a switch moves the one it names; a drain moves every service of the drained host.

import test from 'ava';
import type {EtcdService} from '../../../agent/config/schema.js';
import {EtcdAgent} from '../../../agent/coordination/etcd-agent.js';
import type {StateChange} from '../../../agent/hooks.js';
import type {ServiceIp} from '../../../agent/state-machine.js';
import {checkEtcdStatus} from '../../../cli/status-check.js';
import {FakeAccessLog} from '../../fakes/fake-access-log.js';
import {advanceUntilDone, FakeClock} from '../../fakes/fake-clock.js';
import {keptLog} from '../../fakes/kept-log.js';
import {FakeDrainDriver} from '../../fakes/fake-drain-driver.js';
import {FakeHealthProbe} from '../../fakes/fake-health-probe.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import {SharedEtcd} from '../../fakes/shared-etcd.js';
import {RecordingRunner} from '../../fakes/recording-runner.js';
import {testEtcdConfig, testEtcdService} from '../../fakes/test-config.js';

const SHOP_IP: ServiceIp = {address: '192.0.2.100', prefixLength: 24, family: 4, cidr: '192.0.2.100/24'};
const BLOG_IP: ServiceIp = {address: '192.0.2.101', prefixLength: 24, family: 4, cidr: '192.0.2.101/24'};
const OPTIONS = {dryRun: false, strict: false, minRequests: 2, confirmTimeoutS: undefined, pauseAfter: undefined} as const;


/** Hosts a, b and c serving shop (a first) and blog (b first), each with one access log that sees both services' clients. */
function world() {
  const clock = new FakeClock();
  const etcd = new SharedEtcd(clock);
  const segment = new FakeSegment();
  const names = ['a', 'b', 'c'];
  const services = (accessLog: string): EtcdService[] => [
    testEtcdService({name: 'shop', service: {ip: SHOP_IP, ips: [SHOP_IP], interface: 'eth0', mode: 'address'}, hosts: ['a', 'b', 'c'],
      confirm: {...testEtcdService().confirm, accessLog, timeoutS: 5}, place: 'services[0]'}),
    testEtcdService({name: 'blog', service: {ip: BLOG_IP, ips: [BLOG_IP], interface: 'eth0', mode: 'address'}, hosts: ['b', 'a', 'c'],
      confirm: {...testEtcdService().confirm, accessLog, timeoutS: 5}, place: 'services[1]'}),
  ];
  const hosts = names.map((name) => {
    const network = new FakeNetworkDriver(name, segment);
    const changes: StateChange[] = [];
    const lines: string[] = [];
    const accessLog = new FakeAccessLog();
    const config = testEtcdConfig(name, {
      services: services('/var/log/nginx/access.log'),
      coordination: {...testEtcdConfig(name).coordination, hosts: names, leaseTtlS: 3, renewMarginMs: 600},
    });
    const agent = new EtcdAgent({
      config, clock, store: etcd.viewFrom({cut: false}), network: () => network, drain: () => new FakeDrainDriver(), runner: new RecordingRunner(),
      healthProbe: new FakeHealthProbe(), log: keptLog(lines),
      hooks: {notify: (change) => void changes.push(change), drain: async () => undefined},
      hostname: `host-${name}`, pid: 1000, accessLog: () => accessLog, newId: () => `switch-to-${name}`,
    });
    return {name, agent, network, changes, lines, accessLog};
  });
  const holders = (ip: ServiceIp): string[] => segment.holders(ip.address).map((driver) => driver.name);
  const advance = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 10) await clock.advance(10);
  };
  /** Advances time in 1 ms steps while `work` runs, counting the moments either address was on two hosts; clients of
   *  both services keep coming to whichever host has their address. */
  const watch = async <T>(work: Promise<T>): Promise<{value: T; doubles: number}> => {
    let done = false;
    let doubles = 0;
    const watched = work.finally(() => {
      done = true;
    });
    for (let t = 0; t < 60_000 && !done; t += 1) {
      await clock.advance(1);
      for (const ip of [SHOP_IP, BLOG_IP]) {
        const now = holders(ip);
        if (now.length > 1) doubles += 1;
        if (t % 50 === 0) for (const host of hosts) if (now[0] === host.name) host.accessLog.request();
      }
    }
    return {value: await watched, doubles};
  };
  const settle = <T>(work: Promise<T>): Promise<T> => advanceUntilDone(clock, work);
  return {clock, store: etcd.store, hosts, holders, advance, watch, settle};
}

test('each service goes to the first host of its own order; status says which host holds which, per service', async (t) => {
  const w = world();
  const [a, b, c] = w.hosts;
  if (a === undefined || b === undefined || c === undefined) return t.fail();
  for (const host of w.hosts) host.agent.start();
  await w.advance(2000);
  await w.settle(Promise.all(w.hosts.map((host) => host.agent.ready())));
  t.deepEqual(w.holders(SHOP_IP), ['a']);
  t.deepEqual(w.holders(BLOG_IP), ['b']);
  const ofA = await a.agent.status();
  t.deepEqual(ofA.services.map((s) => [s.name, s.claim.phase, s.claim.holder, s.holdsIp, s.key]), [
    ['shop', 'holding', 'a', true, '/baton/services/shop/holder'],
    ['blog', 'standing-by', 'b', false, '/baton/services/blog/holder'],
  ]);
  t.like(ofA, {peers: [{host: 'b', present: true, holds: ['blog']}, {host: 'c', present: true, holds: []}]});
  const check = checkEtcdStatus({...ofA, control: {refusedBusy: 0, timedOut: 0, extraRequests: 0}});
  t.is(check.summary, 'OK: this host (a) holds shop at epoch ' + String(ofA.services[0]?.claim.epoch) +
    ', with 192.0.2.100/24; b holds blog at epoch ' + String(ofA.services[1]?.claim.epoch) + '; this host (a) stands by');
  // The hook hears each service's changes, named.
  t.deepEqual(a.changes.map((change) => [change.service, change.newState]), [['shop', 'standby'], ['blog', 'standby'], ['shop', 'active']]);
  await w.settle(Promise.all(w.hosts.map((host) => host.agent.shutdown())));
});

test('a switch of a host with several services must name one; --service moves that one only', async (t) => {
  const w = world();
  const [a, b] = w.hosts;
  if (a === undefined || b === undefined) return t.fail();
  for (const host of w.hosts) host.agent.start();
  await w.advance(2000);
  const refused = await t.throwsAsync(w.settle(a.agent.switchover({...OPTIONS, to: 'a'}, () => undefined)));
  t.is(refused?.message, 'this host serves shop, blog: say which to move with --service NAME');
  const unknown = await t.throwsAsync(w.settle(a.agent.switchover({...OPTIONS, to: 'a', service: 'wiki'}, () => undefined)));
  t.is(unknown?.message, 'no service wiki on this host: it serves shop, blog');
  const {value: result, doubles} = await w.watch(a.agent.switchover({...OPTIONS, to: 'a', service: 'blog'}, () => undefined));
  t.is(result.outcome, 'done', result.reason);
  t.is(doubles, 0, 'neither address was ever on two hosts');
  t.deepEqual(w.holders(BLOG_IP), ['a']);
  t.deepEqual(w.holders(SHOP_IP), ['a'], 'shop did not move');
  await w.settle(Promise.all(w.hosts.map((host) => host.agent.shutdown())));
});

test('a drain moves every service of the drained host, each to the next of its own hosts; the host takes none until resumed', async (t) => {
  const w = world();
  const [a, b, c] = w.hosts;
  if (a === undefined || b === undefined || c === undefined) return t.fail();
  for (const host of w.hosts) host.agent.start();
  await w.advance(2000);
  // a takes blog too: it holds both now.
  const moved = await w.watch(a.agent.switchover({...OPTIONS, to: 'a', service: 'blog'}, () => undefined));
  t.is(moved.value.outcome, 'done', moved.value.reason);
  await w.advance(1000);
  // Asked on c: shop goes to b (next in its order), blog to b (next in its order, b first).
  const notes: string[] = [];
  const {value: drained, doubles} = await w.watch(c.agent.drain('a', (p) => {
    if (p.kind === 'note') notes.push(p.text);
  }));
  t.is(doubles, 0);
  t.deepEqual(drained.stuck, []);
  t.is(drained.text, 'host a is drained and free: host b serves shop; host b serves blog');
  t.deepEqual(w.holders(SHOP_IP), ['b']);
  t.deepEqual(w.holders(BLOG_IP), ['b']);
  t.is(notes[0], 'host a is drained: it does not take shop, blog until `baton resume` there');
  // b stops: both go to c, never to the drained a.
  await w.settle(b.agent.shutdown());
  await w.advance(4000);
  t.deepEqual(w.holders(SHOP_IP), ['c']);
  t.deepEqual(w.holders(BLOG_IP), ['c'], a.lines.join('\n'));
  t.like(await w.settle(a.agent.resume(false)), {reason: 'host a is no longer drained: it may take shop, blog again'});
  await w.settle(Promise.all([a, c].map((host) => host.agent.shutdown())));
});
