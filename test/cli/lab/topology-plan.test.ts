// The lab's topology plan: names of every part, and the address checks that keep the lab inside TEST-NET.

import test, {type ExecutionContext} from 'ava';
import {BatonError} from '../../../agent/errors.js';
import {
  DEFAULT_LAB_TOPOLOGY, LAB_ADDRESSES, LINK_MODE_LAB_TOPOLOGY, planTopology, type TopologySpec,
} from '../../../cli/lab/topology-plan.js';

const PREFIX = 'blabc123';

function oneHost(network: string, prefixLength: number, address: string): TopologySpec {
  return {prefix: PREFIX, lans: [{name: 'svc', network, prefixLength}],
    hosts: [{name: 'a', interfaces: [{lan: 'svc', name: 'eth0', address}]}]};
}

function planProblems(t: ExecutionContext, spec: TopologySpec): string[] {
  const error = t.throws(() => planTopology(spec), {instanceOf: BatonError});
  t.is(error?.code, 'LAB_FAILED');
  return (error?.message ?? '').split('\n  - ').slice(1);
}

test('the default and link-mode plans are valid and name namespaces, ports and bridges', (t) => {
  const lab = planTopology({...LINK_MODE_LAB_TOPOLOGY, prefix: PREFIX});
  t.is(lab.switchNamespace, 'blabc123-sw');
  t.is(lab.namespace('backup'), 'blabc123-backup');
  t.is(lab.address('primary', 'mgmt'), LAB_ADDRESSES.primary.mgmt);
  t.is(lab.interfaceName('primary', 'mgmt'), 'eth1');
  t.like(lab.hosts[0]?.interfaces[0], {cidr: '192.0.2.11/25', switchPort: 'primary-svc', bridge: 'br-svc'});
  t.notThrows(() => planTopology({...DEFAULT_LAB_TOPOLOGY, prefix: PREFIX}));
  t.throws(() => lab.address('client', 'mgmt'), {message: /lab host client has no interface on LAN mgmt/});
});

test('a LAN outside the TEST-NET ranges is refused', (t) => {
  t.deepEqual(planProblems(t, oneHost('10.0.0.0', 24, '10.0.0.1')), [
    'LAN svc 10.0.0.0/24: expected a subnet of a TEST-NET range (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24), ' +
      'so the lab can never touch a real network',
  ]);
});

test('a LAN larger than its TEST-NET range, or too small for two hosts, is refused', (t) => {
  t.regex(planProblems(t, oneHost('192.0.2.0', 23, '192.0.2.1'))[0] ?? '', /^LAN svc 192\.0\.2\.0\/23: expected a subnet/);
  t.regex(planProblems(t, oneHost('192.0.2.0', 31, '192.0.2.1'))[0] ?? '', /^LAN svc 192\.0\.2\.0\/31: expected a subnet/);
  t.notThrows(() => planTopology(oneHost('203.0.113.4', 30, '203.0.113.5')));
});

test('a host address outside its LAN, or its network or broadcast address, is refused', (t) => {
  for (const address of ['192.0.2.200', '192.0.2.0', '192.0.2.127', '2001:db8::1', '192.0.2']) {
    t.deepEqual(planProblems(t, oneHost('192.0.2.0', 25, address)),
      [`host a eth0 ${address}: not in LAN svc 192.0.2.0/25`], address);
  }
  t.notThrows(() => planTopology(oneHost('192.0.2.0', 25, '192.0.2.126')));
});

test('a LAN whose network address has host bits set holds no host', (t) => {
  t.deepEqual(planProblems(t, oneHost('192.0.2.5', 25, '192.0.2.11')),
    ['host a eth0 192.0.2.11: not in LAN svc 192.0.2.5/25']);
});
