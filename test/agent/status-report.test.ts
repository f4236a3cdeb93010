// What `baton status` shows, assembled from the agent's parts at one moment.

import test from 'ava';
import {initialState} from '../../agent/state-machine.js';
import {assembleStatus, type StatusParts} from '../../agent/status-report.js';
import {testConfig} from '../fakes/test-config.js';

const parts = (over: Partial<StatusParts> = {}): StatusParts => ({
  config: testConfig('backup'),
  now: 10_000, startedAt: 1000, stateSince: 4000,
  machine: {...initialState('backup', 3), name: 'standby', reason: 'backup at start, ready to take over'},
  self: {host: 'web-b', pid: 42, bootId: 'boot1', version: '1.2.3'},
  peerVersion: '1.2.2',
  served: {present: [], absent: testConfig('backup').service.ips},
  health: {health: 'ok', checks: [{name: 'app', ok: true, detail: 'exit 0', consecutive: 3, health: 'ok'}]},
  peer: {alive: true, lastBeacon: undefined, lastSeenAt: 9800, rttMs: {last: 0.123_456, average: 0.2}, loss: 0, accepted: 40,
    rejected: {} as StatusParts['peer']['rejected'], rejectedSinceValid: undefined},
  lastSwitch: {id: 'sw1', outcome: 'done', reason: 'switch sw1: done', endedAt: 7000},
  switching: undefined,
  beacons: {sent: 45, droppedUnread: 0},
  lateness: {p99: 1.5, max: 4, beyondInterval: 0},
  ...over,
});

test('times are shown as ages from now, the peer as the other role, RTT to two decimals', (t) => {
  const report = assembleStatus(parts());
  t.is(report.self.role, 'backup');
  t.is(report.self.state, 'standby');
  t.is(report.self.stateForMs, 6000);
  t.is(report.self.uptimeMs, 9000);
  t.is(report.self.epoch, 3);
  t.is(report.peer.role, 'primary');
  t.is(report.peer.lastSeenMsAgo, 200);
  t.deepEqual(report.peer.rttMs, {last: 0.12, average: 0.2});
  t.deepEqual(report.lastSwitch, {id: 'sw1', outcome: 'done', reason: 'switch sw1: done', endedMsAgo: 3000});
  t.deepEqual(report.self.healthChecks, [{name: 'app', ok: true, detail: 'exit 0'}]);
  t.is(report.service.address, '192.0.2.100/24');
  t.is(report.beacons.sent, 45);
  t.is(report.timers.intervalMs, 200);
  t.is(report.self.version, '1.2.3');
  t.is(report.peer.version, '1.2.2');
});

test('beacon endpoints read as addresses with their ports: an IPv6 address in brackets, an IPv4 one as it is', (t) => {
  const v4 = assembleStatus(parts());
  t.is(v4.self.listen, '192.0.2.12:7411');
  t.is(v4.peer.address, '192.0.2.11:7411');
  const base = testConfig('backup');
  const v6 = assembleStatus(parts({config: {...base, listen: {address: '2001:db8::12', port: 7411}, peer: {address: 'fe80::11%eth1', port: 7412}}}));
  t.is(v6.self.listen, '[2001:db8::12]:7411');
  t.is(v6.peer.address, '[fe80::11%eth1]:7412');
});

test('a peer never heard has no age and no RTT; no switch is no switch', (t) => {
  const report = assembleStatus(parts({
    peer: {alive: false, lastBeacon: undefined, lastSeenAt: undefined, rttMs: undefined, loss: undefined, accepted: 0,
      rejected: {} as StatusParts['peer']['rejected'], rejectedSinceValid: undefined},
    lastSwitch: undefined,
  }));
  t.is(report.peer.lastSeenMsAgo, undefined);
  t.is(report.peer.rttMs, undefined);
  t.is(report.peer.state, undefined);
  t.is(report.lastSwitch, undefined);
});

test('status says whether this agent accepts the rehearsal aids, as its configuration has it', (t) => {
  t.true(assembleStatus(parts({config: testConfig('backup', {rehearsal: {enabled: true}})})).self.rehearsal);
  t.false(assembleStatus(parts({config: testConfig('backup', {rehearsal: {enabled: false}})})).self.rehearsal);
});
