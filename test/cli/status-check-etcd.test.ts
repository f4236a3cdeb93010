// `baton status` of a host in etcd mode: what it judges from its own interface and its claim on the key.

import test from 'ava';
import type {EtcdPeer, EtcdServiceStatus, EtcdStatusReport} from '../../agent/control-protocol.js';
import {formatEtcdStatus} from '../../cli/format.js';
import {checkEtcdStatus} from '../../cli/status-check.js';

type Claim = EtcdServiceStatus['claim'];
/** This host, and what it observes of web's address on its interface. */
type Seen = Partial<EtcdStatusReport['self']> & {holdsIp?: boolean; held?: readonly string[]};

const SINCE = '2026-12-06T20:00:00.000Z';
const PEERS: readonly EtcdPeer[] = [
  {host: 'a', present: true, health: 'ok', version: '0.2.0', since: SINCE, holds: ['web']},
  {host: 'c', present: true, health: 'ok', version: '0.2.0', since: SINCE, holds: []},
];

function report(claim: Partial<Claim>, seen: Seen = {}, peers: readonly EtcdPeer[] = PEERS): EtcdStatusReport {
  const {holdsIp = false, held = [], ...self} = seen;
  return {
    coordination: 'etcd',
    self: {host: 'b', hostname: 'web-b', pid: 42, version: '0.2.0', uptimeMs: 60_000, health: 'ok', healthChecks: [], ...self},
    services: [{
      name: 'web', service: {address: '192.0.2.100/24', addresses: ['192.0.2.100/24'], interface: 'eth0', mode: 'address'}, holdsIp, held,
      claim: {phase: 'standing-by', holder: 'a', epoch: 7, error: undefined, deadlineInMs: undefined, since: {phaseForMs: 30_000}, ...claim},
      hosts: ['a', 'b', 'c'], key: '/baton/services/web/holder',
    }],
    hosts: ['a', 'b', 'c'], peers, peersReadMsAgo: 300, watching: true,
    etcd: {endpoints: ['http://192.0.2.31:2379'], prefix: '/baton/', leaseTtlS: 10, renewMarginMs: 2000, onEtcdLoss: 'drop'},
    control: {refusedBusy: 0, timedOut: 0, extraRequests: 0},
  };
}

const HOLDING = {phase: 'holding', holder: 'b', epoch: 9, deadlineInMs: 6000} as const;
const codes = (status: EtcdStatusReport): string[] => checkEtcdStatus(status).problems.map((problem) => problem.code);

test('a stand-by naming the holder, and a holder with its address, are OK', (t) => {
  t.like(checkEtcdStatus(report({})), {level: 'ok', exitCode: 0, summary: 'OK: a holds web at epoch 7; this host (b) stands by'});
  t.like(checkEtcdStatus(report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24']})),
    {level: 'ok', summary: 'OK: this host (b) holds web at epoch 9, with 192.0.2.100/24'});
});

test('the address without the key, the key without the address, and no holder at all are critical', (t) => {
  const without = checkEtcdStatus(report({}, {holdsIp: true, held: ['192.0.2.100/24']}));
  t.like(without, {level: 'critical', exitCode: 2});
  t.is(without.summary, 'CRITICAL: this host (b) has 192.0.2.100/24 on eth0 without holding web\'s key, which a holds: the address may be on two hosts');
  t.deepEqual(codes(report(HOLDING, {holdsIp: false})), ['key-without-ip']);
  t.deepEqual(codes(report({holder: undefined, epoch: undefined})), ['no-holder']);
});

test('a take or a drop in flight is not judged: the phase must be 2 s old', (t) => {
  t.deepEqual(codes(report({since: {phaseForMs: 500}}, {holdsIp: true, held: ['192.0.2.100/24']})), []);
  t.deepEqual(codes(report({...HOLDING, since: {phaseForMs: 500}})), []);
  t.deepEqual(codes(report({holder: undefined, epoch: undefined, since: {phaseForMs: 500}})), []);
});

test('etcd out of reach and failing health checks are warnings, each saying what it costs', (t) => {
  const unreachable = checkEtcdStatus(report({holder: undefined, epoch: undefined, error: 'no etcd member answered within 1000 ms'}));
  t.like(unreachable, {level: 'warning', exitCode: 1});
  t.deepEqual(unreachable.problems.map((p) => p.code), ['etcd-unreachable'], 'not also no-holder: the key is unknown, not absent');
  const sick = checkEtcdStatus(report({}, {health: 'failing', healthChecks: [{name: 'interface eth0', ok: false, detail: 'no carrier'}]}));
  t.is(sick.summary, 'WARNING: this host\'s health checks fail: interface eth0 (no carrier); it does not campaign for the service');
});

test('the text report says the holder, the deadline and the key', (t) => {
  const text = formatEtcdStatus(report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24']}));
  t.is(text, 'OK: this host (b) holds web at epoch 9, with 192.0.2.100/24\n' +
    'host b in etcd mode (web-b, pid 42, baton 0.2.0), number 2 of a, b, c, up 60.0 s\n' +
    'service web\n' +
    '  claim       holding for 30.0 s; holder: this host, epoch 9; the address goes in 6.0 s unless a renewal succeeds\n' +
    '  service IP  192.0.2.100/24 on eth0 (address mode): held here\n' +
    '  key         /baton/services/web/holder\n' +
    'other hosts   as read 300 ms ago\n' +
    `  a           present, health ok since ${SINCE}, baton 0.2.0; holds web\n` +
    `  c           present, health ok since ${SINCE}, baton 0.2.0\n` +
    'etcd          http://192.0.2.31:2379; prefix /baton/; lease 10 s, margin 2000 ms, on etcd loss drop; watching for changes\n' +
    'control       socket refused none\n');
});

test('no host but the holder present and healthy is a warning: nobody would take over', (t) => {
  const absent = (host: string): EtcdPeer => ({host, present: false, health: undefined, version: undefined, since: undefined, holds: []});
  const failing = (host: string): EtcdPeer => ({host, present: true, health: 'failing', version: '0.2.0', since: SINCE, holds: []});
  // b holds; a is absent and c fails.
  const alone = checkEtcdStatus(report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24']}, [absent('a'), failing('c')]));
  t.like(alone, {level: 'warning', exitCode: 1});
  t.is(alone.summary, 'WARNING: nobody would take web over if this host (b) failed: a is absent, c fails its health checks');
  // One standby is enough, this host included.
  t.deepEqual(codes(report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24']}, [absent('a'), PEERS[1] as EtcdPeer])), []);
  t.deepEqual(codes(report({}, {}, [{...PEERS[0] as EtcdPeer}, absent('c')])), [], 'b stands by itself');
  // a holds, b (this host) fails, c is absent.
  t.deepEqual(checkEtcdStatus(report({}, {health: 'failing', healthChecks: [{name: 'interface eth0', ok: false, detail: 'no carrier'}]},
    [PEERS[0] as EtcdPeer, absent('c')])).problems.map((p) => p.text).slice(-1),
  ['nobody would take web over if a failed: this host (b) fails its health checks, c is absent']);
  // Not judged: presence unread, etcd out of reach, nobody holding, or too soon after the start.
  t.deepEqual(codes({...report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24']}, []), peersReadMsAgo: undefined}), []);
  t.deepEqual(codes(report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24'], uptimeMs: 2000}, [absent('a'), absent('c')])), []);
  t.deepEqual(codes(report({holder: undefined, epoch: undefined, error: 'no answer'}, {}, [absent('a'), absent('c')])), ['etcd-unreachable']);
  t.deepEqual(codes(report({holder: undefined, epoch: undefined}, {health: 'failing'}, [absent('a'), absent('c')])), ['no-holder', 'health']);
  t.regex(formatEtcdStatus(report(HOLDING, {holdsIp: true, held: ['192.0.2.100/24']}, [absent('a'), failing('c')])),
    /\n {2}a {11}ABSENT: its agent is not running or does not reach etcd\n {2}c {11}present, health FAILING since /);
});
