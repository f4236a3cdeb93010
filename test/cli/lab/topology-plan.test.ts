// The lab's topology plan: names of every part, and the address checks that keep the lab inside TEST-NET and
// 2001:db8::/32.

import test, {type ExecutionContext} from 'ava';
import {BatonError} from '../../../agent/errors.js';
import {
  DEFAULT_LAB_TOPOLOGY, httpUrl, LAB_ADDRESSES, LAB_ADDRESSES6, labServiceAddress, labServiceCidr, LINK_MODE_LAB_TOPOLOGY, planTopology,
  type TopologySpec,
} from '../../../cli/lab/topology-plan.js';

const PREFIX = 'blabc123';

function oneHost(network: string, prefixLength: number, address: string): TopologySpec {
  return {prefix: PREFIX, lans: [{name: 'svc', network, prefixLength, ipv6: {network: '2001:db8:0:1::', prefixLength: 64}}],
    hosts: [{name: 'a', interfaces: [{lan: 'svc', name: 'eth0', address, address6: '2001:db8:0:1::11'}]}]};
}

function oneHost6(network: string, prefixLength: number, address6: string): TopologySpec {
  return {prefix: PREFIX, lans: [{name: 'svc', network: '192.0.2.0', prefixLength: 25, ipv6: {network, prefixLength}}],
    hosts: [{name: 'a', interfaces: [{lan: 'svc', name: 'eth0', address: '192.0.2.11', address6}]}]};
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

test('every LAN is dual-stack: each host interface has an IPv6 address in its LAN\'s /64 of 2001:db8::/32', (t) => {
  const lab = planTopology({...LINK_MODE_LAB_TOPOLOGY, prefix: PREFIX});
  t.like(lab.hosts[0]?.interfaces[0], {address6: '2001:db8:0:1::11', cidr6: '2001:db8:0:1::11/64'});
  t.like(lab.hosts[0]?.interfaces[1], {address6: '2001:db8:0:2::141', cidr6: '2001:db8:0:2::141/64'});
  t.is(lab.address('backup', 'svc', 6), LAB_ADDRESSES6.backup.svc);
  t.is(lab.address('backup', 'mgmt', 6), '2001:db8:0:2::142');
  t.is(lab.address('backup', 'svc', 4), LAB_ADDRESSES.backup.svc);
  t.is(lab.address('client', 'svc', 6), '2001:db8:0:1::20');
});

test('the service address and its URL in either family', (t) => {
  t.is(labServiceCidr(4), '192.0.2.100/25');
  t.is(labServiceCidr(6), '2001:db8:0:1::100/64');
  t.is(httpUrl(labServiceAddress(4)), 'http://192.0.2.100/');
  t.is(httpUrl(labServiceAddress(6)), 'http://[2001:db8:0:1::100]/');
});

test('an IPv6 LAN outside 2001:db8::/32, larger than it, or too small for two hosts, is refused', (t) => {
  const refusal = (network: string, prefixLength: number): string => `LAN svc ${network}/${prefixLength}: expected a subnet of the IPv6 ` +
    'documentation prefix 2001:db8::/32, /32 to /126, so the lab can never touch a real network';
  t.deepEqual(planProblems(t, oneHost6('fd00::', 64, 'fd00::11')), [refusal('fd00::', 64)]);
  t.deepEqual(planProblems(t, oneHost6('2001:db9::', 64, '2001:db9::11')), [refusal('2001:db9::', 64)]);
  t.deepEqual(planProblems(t, oneHost6('2001:db8::', 31, '2001:db8::11')), [refusal('2001:db8::', 31)]);
  t.deepEqual(planProblems(t, oneHost6('2001:db8::', 127, '2001:db8::1')), [refusal('2001:db8::', 127)]);
  t.deepEqual(planProblems(t, oneHost6('192.0.2.0', 25, '192.0.2.11')), [refusal('192.0.2.0', 25)]);
  t.notThrows(() => planTopology(oneHost6('2001:db8:ffff::', 48, '2001:db8:ffff::1')));
  t.notThrows(() => planTopology(oneHost6('2001:db8::4', 126, '2001:db8::5')));
});

test('an IPv6 host address outside its LAN, its subnet-router anycast address, or an IPv4 one, is refused', (t) => {
  for (const address6 of ['2001:db8:0:2::11', '2001:db8:0:1::', '192.0.2.11', '2001:db8:0:1::11/64', 'fe80::1']) {
    t.deepEqual(planProblems(t, oneHost6('2001:db8:0:1::', 64, address6)),
      [`host a eth0 ${address6}: not in LAN svc 2001:db8:0:1::/64`], address6);
  }
  t.notThrows(() => planTopology(oneHost6('2001:db8:0:1::', 64, '2001:db8:0:1:ffff:ffff:ffff:ffff')));
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
