// What check-config says about the drain on this host (on, off by the config, impossible in link mode, or a
// warning naming why nftables refuses it) and about the replay protection the file chose.

import test from 'ava';
import {describeDrain, describeReplayProtection} from '../../cli/commands/check-config.js';
import {FakeDrainDriver} from '../fakes/fake-drain-driver.js';
import {testConfig} from '../fakes/test-config.js';

test('check-config says how the drain runs, or why it cannot run on this host', async (t) => {
  const drain = new FakeDrainDriver();
  const config = testConfig('primary');
  t.is(await describeDrain(config, drain), 'drain: on; connections get 5 s to end, no graceful command (connections must end by themselves), 60 s in all');
  const graceful = {...config, drain: {...config.drain, graceful: {path: '/usr/sbin/nginx', args: ['-s', 'reload']}}};
  t.regex(await describeDrain(graceful, drain), /then \/usr\/sbin\/nginx -s reload, 60 s in all$/);
  t.regex(await describeDrain({...config, drain: {...config.drain, enabled: false}}, drain), /^drain: off \(drain\.enabled: false\)/);
  t.regex(await describeDrain({...config, service: {...config.service, mode: 'link'}}, drain), /^drain: none in link mode/);
  const v6 = {address: '2001:db8::100', prefixLength: 64, family: 6, cidr: '2001:db8::100/64'} as const;
  t.regex(await describeDrain({...config, service: {...config.service, ip: v6}}, drain), /^drain: none for an IPv6 service address/);
  drain.cannot = 'nftables cannot take the drain\'s rules here: Error: Could not process rule: No such file or directory';
  t.is(await describeDrain(config, drain), 'WARNING drain: this host cannot drain: nftables cannot take the drain\'s rules here: ' +
    'Error: Could not process rule: No such file or directory; a planned switch will cut the connections open at the move');
});

test('check-config says which replay protection the file chose and what it asks of the hosts', (t) => {
  const config = testConfig('primary');
  t.is(describeReplayProtection(config), 'replay protection: clock (sent-at within 5000 ms of this host\'s clock: keep both hosts on NTP)');
  t.is(describeReplayProtection({...config, heartbeat: {...config.heartbeat, replayProtection: 'acknowledged'}}),
    'replay protection: acknowledged (the clocks are not compared; beacons must pass both ways, and the peer should say acknowledged too)');
});
