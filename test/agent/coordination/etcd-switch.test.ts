// The switch record in etcd: what a host acts on, and what it refuses to (a record of another version, or forged).

import test from 'ava';
import {decodeSwitchRecord, switchKey} from '../../../agent/coordination/etcd-switch.js';

const GOOD = {id: 'k3Jd', giver: 'a', taker: 'b', epoch: 42, phase: 'giver-down', giverLease: '7587'};

test('a record reads back as written, and lives beside the service key', (t) => {
  t.deepEqual(decodeSwitchRecord(JSON.stringify(GOOD)), GOOD);
  t.deepEqual(decodeSwitchRecord(JSON.stringify({...GOOD, giverLease: undefined, reason: 'b went silent'})),
    {id: 'k3Jd', giver: 'a', taker: 'b', epoch: 42, phase: 'giver-down', reason: 'b went silent'});
  t.is(switchKey('/baton/', 'web'), '/baton/services/web/switch');
});

test('a record that is not one is named and not acted on', (t) => {
  t.is(decodeSwitchRecord('{"id":'), 'not JSON');
  t.is(decodeSwitchRecord('[]'), 'id, giver and taker must be strings');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, phase: 'take-everything'})), 'unknown phase take-everything');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, epoch: -1})), 'epoch must be a positive integer');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, epoch: 1.5})), 'epoch must be a positive integer');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, giver: 7})), 'id, giver and taker must be strings');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, giverLease: 7})), 'giverLease must be a string');
});

test('a drain\'s fields read back as written; forged addresses, steps and counts are refused', (t) => {
  const drains = {...GOOD, giverAddresses: ['192.0.2.11'], drainTimeoutS: 60, holdMs: 3, failedStep: 'hold-connections',
    drained: {left: 2, ms: 60000, graceful: '/usr/sbin/nginx -s reload ran with 2 connection(s) open'}, problem: 'end-hold on a: nft failed'};
  t.deepEqual(decodeSwitchRecord(JSON.stringify(drains)), drains);
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, giverAddresses: ['192.0.2.11; reboot']})), 'giverAddresses must be one or two IP addresses');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, giverAddresses: []})), 'giverAddresses must be one or two IP addresses');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, failedStep: 'rm-rf'})), 'unknown failedStep rm-rf');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, drainTimeoutS: 0})), 'drainTimeoutS must be an integer 1..3600');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, drained: {left: -1, ms: 3}})), 'drained: left and ms are required');
  t.is(decodeSwitchRecord(JSON.stringify({...GOOD, result: {outcome: 'done', reason: 'x', totalMs: 5, drain: {ms: 1}}})),
    'result: drain: problems must be a list of strings');
});
