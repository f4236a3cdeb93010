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
