// The etcd lab's parts that need no namespace: the config each host gets, read by the agent's own parser; the
// topology, checked by the planner; and the judgement of "settled" from the agents' status.

import test from 'ava';
import {isEtcdConfig, parseAnyConfig} from '../../../agent/config/schema.js';
import type {EtcdStatusReport} from '../../../agent/control-protocol.js';
import {ETCD_LAB_HOSTS, etcdLabConfig, etcdLabTopology, settledOf} from '../../../cli/lab/etcd-lab.js';
import {planTopology} from '../../../cli/lab/topology-plan.js';
import {DEFAULT_SECRET, programs, PROGRAMS} from '../../fakes/config-fixtures.js';

const ENDPOINTS = ['http://192.0.2.31:2379', 'http://192.0.2.32:2379', 'http://192.0.2.33:2379'];

test('each host\'s config is a valid etcd host of a, b and c, with the lab\'s short TTL and its access log', (t) => {
  for (const host of ETCD_LAB_HOSTS) {
    const yaml = etcdLabConfig({host, endpoints: ENDPOINTS, leaseTtlS: 3, accessLog: `/tmp/lab/${host}/web/access.log`,
      stateDir: `/tmp/lab/${host}/state`, socket: `/tmp/lab/${host}/control.sock`});
    const config = parseAnyConfig(yaml, 'baton.yaml', DEFAULT_SECRET, PROGRAMS);
    t.like(config.coordination, {mode: 'etcd', endpoints: ENDPOINTS, leaseTtlS: 3, host, hosts: ['a', 'b', 'c']});
    t.true(isEtcdConfig(config));
    if (!isEtcdConfig(config)) return;
    t.like(config.services[0], {name: 'lab', hosts: ['a', 'b', 'c']});
    t.is(config.services[0]?.service.ip.cidr, '192.0.2.100/25');
    t.is(config.services[0]?.confirm.accessLog, `/tmp/lab/${host}/web/access.log`);
  }
});

test('with the web server\'s graceful command the drain runs it, as the pair lab\'s does', (t) => {
  const yaml = etcdLabConfig({host: 'a', endpoints: ENDPOINTS, leaseTtlS: 3, accessLog: '/tmp/lab/a/web/access.log', stateDir: '/tmp/lab/a/state',
    socket: '/tmp/lab/a/control.sock', graceful: {path: '/usr/bin/kill', args: ['-HUP', '42']}});
  const config = parseAnyConfig(yaml, 'baton.yaml', DEFAULT_SECRET, programs({'/usr/bin/kill': 0o100755})) as {drain?: unknown};
  t.like(config.drain, {enabled: true, graceful: {path: '/usr/bin/kill', args: ['-HUP', '42']}, timeoutS: 20});
});

test('the topology is the three hosts, the three members and the client on one TEST-NET LAN', (t) => {
  const topology = planTopology(etcdLabTopology('blu00000'));
  t.deepEqual(topology.hosts.map((h) => h.namespace), ['a', 'b', 'c', 'm1', 'm2', 'm3', 'client'].map((h) => `blu00000-${h}`));
  t.deepEqual(['m1', 'm2', 'm3'].map((m) => topology.address(m, 'svc')), ['192.0.2.31', '192.0.2.32', '192.0.2.33']);
  t.is(topology.address('c', 'svc'), '192.0.2.13');
});

function status(host: string, phase: 'holding' | 'standing-by', holder: string, held: boolean, switching?: string): EtcdStatusReport {
  return {
    self: {host},
    services: [{name: 'web', holdsIp: held, held: held ? ['192.0.2.100/25'] : [], claim: {phase, holder, epoch: 7, switching}}],
  } as unknown as EtcdStatusReport;
}

test('settled: one holder with the address, the others standing by for it; anything else says what each host said', (t) => {
  t.deepEqual(settledOf(['a', 'b', 'c'], [status('a', 'holding', 'a', true), status('b', 'standing-by', 'a', false), status('c', 'standing-by', 'a', false)]),
    {holder: 'a', epoch: 7, standing: ['b', 'c']});
  // A host standing by for an old holder, one that still has the address, a switch going on, an agent not answering.
  t.regex(settledOf(['a', 'b'], [status('a', 'holding', 'a', true), status('b', 'standing-by', 'c', false)]) as string, /b standing-by \(holder c\)/);
  t.is(typeof settledOf(['a', 'b'], [status('a', 'holding', 'a', true), status('b', 'standing-by', 'a', true)]), 'string');
  t.is(typeof settledOf(['a', 'b'], [status('a', 'holding', 'a', true, 'x1'), status('b', 'standing-by', 'a', false)]), 'string');
  t.regex(settledOf(['a', 'b'], [status('a', 'holding', 'a', true), new Error('connect ENOENT')]) as string, /b: connect ENOENT/);
});
