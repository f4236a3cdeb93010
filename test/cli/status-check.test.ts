// What `baton status` exits with, for each state of this host against each condition of its peer, and for the
// holders of the service IP as this agent knows them.

import test from 'ava';
import type {StatusReport} from '../../agent/control-protocol.js';
import {BatonError} from '../../agent/errors.js';
import {AGENT_STATE_NAMES, type AgentStateName} from '../../agent/state-machine.js';
import {checkFailure, checkStatus, type ProblemCode} from '../../cli/status-check.js';
import {formatStatus} from '../../cli/format.js';
import {statusReport} from '../fakes/status-fixture.js';

// Written out here rather than read from STATE_LEVEL, so that a change to the table is a change to this test too:
// what an operator is paged for must not move by accident.
const STATE_EXIT: Readonly<Record<AgentStateName, number>> = {
  starting: 1, active: 0, standby: 0, released: 1, fault: 1, switching: 0, stopping: 1,
};

type PeerCondition = {readonly name: string; readonly peer: Partial<StatusReport['peer']>; readonly exit: number; readonly code?: ProblemCode};
const LEVEL_OF_EXIT: readonly string[] = ['ok', 'warning', 'critical', 'unknown'];

const PEER_CONDITIONS: readonly PeerCondition[] = [
  ...AGENT_STATE_NAMES.map((state): PeerCondition => ({
    name: `alive, ${state}`, peer: {alive: true, state, holdsIp: false}, exit: STATE_EXIT[state],
    ...(STATE_EXIT[state] === 0 ? {} : {code: 'peer-state'}),
  })),
  {name: 'silent for 30 s', peer: {alive: false, lastSeenMsAgo: 30_000, state: 'standby', holdsIp: false}, exit: 1, code: 'peer-silent'},
  {name: 'never heard', peer: {alive: false, lastSeenMsAgo: undefined, host: undefined, state: undefined, holdsIp: undefined, epoch: undefined,
    health: undefined, version: undefined, rttMs: undefined, loss: undefined}, exit: 1, code: 'peer-silent'},
];

// This host holds the IP and the peer does not, in every case: the holders are judged by the tests below.
for (const state of AGENT_STATE_NAMES) {
  for (const condition of PEER_CONDITIONS) {
    test(`this host ${state}, the peer ${condition.name}: exit ${Math.max(STATE_EXIT[state], condition.exit)}`, (t) => {
      const check = checkStatus(statusReport({self: {state, holdsIp: true}, peer: condition.peer}));
      t.is(check.exitCode, Math.max(STATE_EXIT[state], condition.exit), check.summary);
      t.is(LEVEL_OF_EXIT[check.exitCode], check.level);
      const codes = check.problems.map((p) => p.code);
      t.is(codes.includes('state'), STATE_EXIT[state] !== 0, 'this host\'s state is a problem exactly when it is not ok');
      if (condition.code !== undefined) t.true(codes.includes(condition.code), codes.join(', '));
      t.false(codes.includes('ip-on-both') || codes.includes('ip-on-neither'));
      t.is(check.summary.split(':')[0], check.level.toUpperCase());
    });
  }
}

test('a settled pair is OK, and the summary says who is what and who holds the IP', (t) => {
  const check = checkStatus(statusReport());
  t.is(check.exitCode, 0);
  t.deepEqual(check.problems, []);
  t.is(check.summary, 'OK: the primary (web-a) active, holds the service IP; the backup (web-b) standby');
});

test('the service IP on both hosts is critical', (t) => {
  const check = checkStatus(statusReport({self: {holdsIp: true}, peer: {state: 'active', holdsIp: true}}));
  t.is(check.exitCode, 2);
  t.is(check.summary, 'CRITICAL: the service IP 192.0.2.100/24 is on both hosts: observed here, and the backup (web-b) reports holding it');
});

test('the service IP on neither host is critical, the peer alive or, by its last beacon, silent', (t) => {
  const alive = checkStatus(statusReport({self: {state: 'standby', holdsIp: false}, peer: {state: 'active', holdsIp: false}}));
  t.is(alive.exitCode, 2);
  t.is(alive.summary, 'CRITICAL: nobody holds the service IP 192.0.2.100/24: not observed here, and the backup (web-b) reports not holding it');
  const silent = checkStatus(statusReport({self: {state: 'standby', holdsIp: false}, peer: {alive: false, lastSeenMsAgo: 30_000, state: 'active', holdsIp: false}}));
  t.is(silent.exitCode, 2);
  t.deepEqual(silent.problems.map((p) => [p.code, p.level]), [['ip-on-neither', 'critical'], ['peer-silent', 'warning']], 'worst first');
  t.regex(silent.summary, /did not hold it in its last beacon, 30\.0 s ago; no valid beacon from the backup \(web-b\) for 30\.0 s: no failover$/);
});

test('the holders are not judged while a host starts or a planned switch runs', (t) => {
  const starting = checkStatus(statusReport({self: {state: 'starting', holdsIp: false}, peer: {holdsIp: false}}));
  t.deepEqual(starting.problems.map((p) => p.code), ['state']);
  const peerStarting = checkStatus(statusReport({self: {state: 'standby', holdsIp: false}, peer: {state: 'starting', holdsIp: false}}));
  t.deepEqual(peerStarting.problems.map((p) => p.code), ['peer-state']);
  // Mid-switch the IP is on neither for a few ms by design, and the peer's word can be an interval behind the move.
  for (const [self, peer] of [[false, false], [true, true]] as const) {
    const switching = checkStatus(statusReport({self: {state: 'switching', holdsIp: self}, peer: {state: 'switching', holdsIp: peer},
      switching: {id: 'sw1', side: 'taker'}}));
    t.is(switching.exitCode, 0, switching.summary);
  }
});

test('a silent peer that last held the IP, and this host not holding it, is a warning: the IP still answers there', (t) => {
  const check = checkStatus(statusReport({self: {state: 'standby', holdsIp: false, reason: 'peer silent but service IP alive'},
    peer: {alive: false, lastSeenMsAgo: 5000, state: 'active', holdsIp: true}}));
  t.is(check.exitCode, 1);
  t.deepEqual(check.problems.map((p) => p.code), ['peer-silent']);
});

test('a silent peer whose last beacon held the IP is not "both" once this host has taken it over', (t) => {
  const check = checkStatus(statusReport({self: {state: 'active', holdsIp: true}, peer: {alive: false, lastSeenMsAgo: 5000, state: 'active', holdsIp: true}}));
  t.is(check.exitCode, 1);
  t.deepEqual(check.problems.map((p) => p.code), ['peer-silent']);
});

test('a peer never heard is not "neither": whether it holds the IP is not known here', (t) => {
  const check = checkStatus(statusReport({self: {state: 'standby', holdsIp: false, uptimeMs: 4000},
    peer: {alive: false, lastSeenMsAgo: undefined, host: undefined, state: undefined, holdsIp: undefined}}));
  t.is(check.exitCode, 1);
  t.is(check.summary, 'WARNING: no valid beacon from the backup since this agent started 4.0 s ago: no failover');
});

test('a silent peer whose datagrams arrive but are rejected says why', (t) => {
  const check = checkStatus(statusReport({peer: {alive: false, lastSeenMsAgo: 20_000,
    rejectedSinceValid: {count: 100, reason: 'stale', detail: 'sent 7.2 s ago by its clock, at most 5 s allowed'}}}));
  t.is(check.exitCode, 1);
  t.deepEqual(check.problems.map((p) => p.code), ['peer-silent', 'peer-rejected']);
  t.regex(check.summary, /100 datagram\(s\) from it were rejected since, the latest stale: sent 7\.2 s ago/);
});

test('failing health checks are a warning on either host; a fault says its reason once', (t) => {
  const self = checkStatus(statusReport({self: {health: 'failing', healthChecks: [{name: 'app', ok: false, detail: 'HTTP 503'}]}}));
  t.is(self.exitCode, 1);
  t.is(self.summary, 'WARNING: this host\'s health checks fail: app (HTTP 503)');
  const peer = checkStatus(statusReport({self: {state: 'standby', holdsIp: false}, peer: {state: 'active', holdsIp: true, health: 'failing'}}));
  t.deepEqual(peer.problems.map((p) => p.code), ['peer-health']);
  const fault = checkStatus(statusReport({self: {state: 'fault', holdsIp: false, health: 'failing', reason: 'health check app failing: HTTP 503'},
    peer: {state: 'active', holdsIp: true}}));
  t.is(fault.summary, 'WARNING: this host, the primary (web-a), is in fault (health check app failing: HTTP 503): it never takes the service IP, so nobody stands by');
});

test('an agent that does not answer is critical; a check that cannot ask is unknown', (t) => {
  const errno = (code: string): Error => Object.assign(new Error(code), {code});
  t.is(checkFailure(new BatonError('AGENT_UNREACHABLE', 'baton-agent is not running: no control socket at /run/baton/control.sock',
    {cause: errno('ENOENT')})).exitCode, 2);
  t.is(checkFailure(new BatonError('AGENT_UNREACHABLE', 'did not answer within 5000 ms')).exitCode, 2);
  const denied = checkFailure(new BatonError('AGENT_UNREACHABLE', 'permission denied on /run/baton/control.sock', {cause: errno('EACCES')}));
  t.is(denied.exitCode, 3);
  t.is(denied.summary, 'UNKNOWN: permission denied on /run/baton/control.sock');
  t.deepEqual(checkFailure(new BatonError('PROTOCOL_MISMATCH', 'speaks control protocol 1')).problems.map((p) => [p.code, p.level]),
    [['protocol-mismatch', 'unknown']]);
  t.is(checkFailure(new BatonError('CONFIG_INVALID', '/etc/baton/baton.yaml:3 control_socket: expected …')).exitCode, 3);
});

test('baton status shows every address of a dual-stack service on its service line', (t) => {
  const dual = statusReport({service: {address: '192.0.2.100/24', addresses: ['192.0.2.100/24', '2001:db8::100/64'], interface: 'eth0', mode: 'address'}});
  t.regex(formatStatus(dual), /^ {2}service IP {2}192\.0\.2\.100\/24 and 2001:db8::100\/64 on eth0 \(address mode\): held here/m);
});

const DUAL = {address: '192.0.2.100/24', addresses: ['192.0.2.100/24', '2001:db8::100/64'], interface: 'eth0', mode: 'address'};

test('part of a dual-stack service on this host is critical, naming the address held and the one missing', (t) => {
  for (const state of ['active', 'standby', 'fault'] as const) {
    const check = checkStatus(statusReport({service: DUAL, self: {state, holdsIp: false, held: ['2001:db8::100/64']},
      peer: {state: state === 'active' ? 'standby' : 'active', holdsIp: false}}));
    t.is(check.exitCode, 2, check.summary);
    t.is(check.problems[0]?.code, 'ip-partly-held');
    t.regex(check.summary, /^CRITICAL: this host, the primary \(web-a\), has the service IP partly held: 2001:db8::100 held, 192\.0\.2\.100 missing/);
    t.false(check.problems.some((p) => p.code === 'ip-on-neither'), 'not "nobody": one address is here');
  }
});

test('part of a dual-stack service here while the peer reports holding all of it: that address is on both hosts', (t) => {
  const check = checkStatus(statusReport({service: DUAL, self: {state: 'standby', holdsIp: false, held: ['192.0.2.100/24']},
    peer: {state: 'active', holdsIp: true}}));
  t.is(check.exitCode, 2);
  t.deepEqual(check.problems.map((p) => p.code).toSorted(), ['ip-on-both', 'ip-partly-held']);
  t.true(check.summary.includes('192.0.2.100/24 is on both hosts: observed here, and the backup (web-b) reports holding the whole service IP'), check.summary);
});

test('a dual-stack service held whole, or not at all, is judged as one address is; part of it is not judged mid-switch', (t) => {
  const whole = checkStatus(statusReport({service: DUAL}));
  t.is(whole.exitCode, 0, whole.summary);
  t.is(formatStatus(statusReport({service: DUAL})).split('\n')[3], '  service IP  192.0.2.100/24 and 2001:db8::100/64 on eth0 (address mode): held here (observed on the interface)');
  const neither = checkStatus(statusReport({service: DUAL, self: {state: 'standby', holdsIp: false}, peer: {state: 'active', holdsIp: false}}));
  t.is(neither.summary, 'CRITICAL: nobody holds the service IP 192.0.2.100/24 and 2001:db8::100/64: not observed here, and the backup (web-b) reports not holding it');
  // Between a switch's two adds (or removes) one address is on and the other not, by design.
  const switching = checkStatus(statusReport({service: DUAL, self: {state: 'switching', holdsIp: false, held: ['192.0.2.100/24']},
    peer: {state: 'switching', holdsIp: false}, switching: {id: 'sw1', side: 'taker'}}));
  t.is(switching.exitCode, 0, switching.summary);
});

test('an agent that does not report which addresses it holds is judged on holdsIp alone', (t) => {
  const older = checkStatus(statusReport({service: DUAL, self: {holdsIp: false, held: undefined, state: 'standby'}, peer: {state: 'active', holdsIp: true}}));
  t.is(older.exitCode, 0, older.summary);
});
