// The real HostProbe's readings of this host's own texts: `ip -j address show` and /proc/net/dev.

import test from 'ava';
import {parseIpAddressJson, parseNetDev} from '../../agent/adapters/host-probe.js';

test('`ip -j address show` gives every interface with its addresses, one without carrier or down too', (t) => {
  // What iproute2 6.1 printed for lo, a veth whose peer is down (NO-CARRIER, so libuv leaves it out) and the peer.
  const stdout = JSON.stringify([
    {ifindex: 1, ifname: 'lo', flags: ['LOOPBACK'], operstate: 'DOWN', addr_info: [{family: 'inet', local: '127.0.0.1', prefixlen: 8}]},
    {ifindex: 3, ifname: 'eth0', link: 'eth1', flags: ['BROADCAST', 'MULTICAST', 'UP'], operstate: 'LOWERLAYERDOWN',
      addr_info: [{family: 'inet', local: '192.0.2.11', prefixlen: 24}, {family: 'inet6', local: 'fe80::1', prefixlen: 64}]},
    {ifindex: 2, ifname: 'eth1', link: 'eth0', flags: ['BROADCAST', 'MULTICAST'], operstate: 'DOWN', addr_info: []},
  ]);
  t.deepEqual([...parseIpAddressJson(stdout)], [['eth0', ['192.0.2.11', 'fe80::1']], ['eth1', []], ['lo', ['127.0.0.1']]]);
  t.throws(() => parseIpAddressJson('Object "address" is unknown'));
});

test('/proc/net/dev gives the interface names after its two heading lines', (t) => {
  const text = 'Inter-|   Receive                            |  Transmit\n' +
    ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n' +
    '    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n' +
    '  eth0:     908      10    0    0    0     0          0         0     1046      11    0    0    0     0       0          0\n';
  t.deepEqual(parseNetDev(text), ['lo', 'eth0']);
});
