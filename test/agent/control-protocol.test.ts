// The CLI's side of the control protocol: a reply is read only when it names this protocol and has the shape the
// CLI needs; otherwise one line says what does not match (what a new baton talking to an old agent sees).

import test, {type ExecutionContext} from 'ava';
import {checkResult, CONTROL_PROTOCOL, decodeReply, decodeRequest} from '../../agent/control-protocol.js';
import {BatonError} from '../../agent/errors.js';
import {VERSION} from '../../agent/version.js';
import {overTheWire, statusReport} from '../fakes/status-fixture.js';

/** "CODE: message" of what fn throws, which must be a BatonError. */
function mismatch(t: ExecutionContext, fn: () => unknown): string {
  const error = t.throws(fn, {instanceOf: BatonError});
  return `${error?.code ?? 'nothing thrown'}: ${error?.message ?? ''}`;
}

/** A result line; protocol 'none' for one without, as an agent of baton 0.1.0 wrote it. */
const result = (value: unknown, protocol: number | 'none' = CONTROL_PROTOCOL): string =>
  JSON.stringify({id: 'status', type: 'result', ...(protocol === 'none' ? {} : {protocol}), ok: true, result: value});

test('a reply of this protocol is read, and a status report as the agent sends it passes the check', (t) => {
  const reply = decodeReply(result(overTheWire(statusReport())));
  t.true(reply.type === 'result' && reply.ok);
  if (reply.type !== 'result' || !reply.ok) return;
  t.notThrows(() => checkResult('status', reply.result));
  // Optional fields are absent on the wire when unknown: a peer never heard, no switch yet.
  t.notThrows(() => checkResult('status', overTheWire(statusReport({peer: {alive: false, lastSeenMsAgo: undefined, host: undefined,
    bootId: undefined, version: undefined, state: undefined, holdsIp: undefined, epoch: undefined, health: undefined, rttMs: undefined,
    loss: undefined}}))));
});

test('an agent of baton 0.1.0 (no protocol in its reply) is named as older, with the way out, in one line', (t) => {
  const old = overTheWire({...statusReport(), self: {...statusReport().self, version: undefined}});
  const said = mismatch(t, () => decodeReply(result(old, 'none')));
  t.is(said, `PROTOCOL_MISMATCH: speaks control protocol 1 (baton 0.1.0), older than this baton's: this baton ${VERSION} speaks ${CONTROL_PROTOCOL}. ` +
    'If baton was just upgraded on this host, restart the agent (`systemctl restart baton-agent`) to finish the upgrade; else use the baton installed with the agent');
  t.false(said.includes('\n'));
  // Its refusals too: an error reply without a protocol is the same mismatch, not the agent's word.
  t.regex(mismatch(t, () => decodeReply('{"id":"?","type":"result","ok":false,"error":{"code":"BAD_REQUEST","message":"request type"}}')),
    /^PROTOCOL_MISMATCH: speaks control protocol 1 \(baton 0\.1\.0\), older/);
});

test('an agent of a newer protocol is named as newer', (t) => {
  t.regex(mismatch(t, () => decodeReply(result(overTheWire(statusReport()), CONTROL_PROTOCOL + 1))),
    new RegExp(`^PROTOCOL_MISMATCH: speaks control protocol ${CONTROL_PROTOCOL + 1}, newer than this baton's: .* Use the baton installed with the agent$`));
});

test('a status of the wrong shape names the field instead of crashing the formatter', (t) => {
  // What printed "Cannot read properties of undefined (reading 'address')" before.
  const {service: _service, ...withoutService} = statusReport();
  t.regex(mismatch(t, () => checkResult('status', overTheWire(withoutService))),
    /^PROTOCOL_MISMATCH: sent a status result this baton cannot read \(service: expected an object, got nothing\), though both speak control protocol \d+: the agent and this baton are different builds/);
  t.regex(mismatch(t, () => checkResult('status', overTheWire(statusReport({self: {holdsIp: 'yes' as unknown as boolean}})))),
    /\(self\.holdsIp: expected a boolean, got "yes"\)/);
  t.regex(mismatch(t, () => checkResult('status', overTheWire(statusReport({self: {state: 'dancing' as 'active'}})))),
    /\(self\.state: expected one of starting, active, standby, released, fault, switching, stopping, got "dancing"\)/);
  t.regex(mismatch(t, () => checkResult('status', {...statusReport(), peer: {...statusReport().peer, lastSeenMsAgo: null}})),
    /\(peer\.lastSeenMsAgo: expected a number, got null\)/);
  t.regex(mismatch(t, () => checkResult('status', overTheWire(statusReport({self: {healthChecks: [{name: 'app', ok: 1 as unknown as boolean, detail: ''}]}})))),
    /\(self\.healthChecks\[0\]\.ok: expected a boolean, got 1\)/);
});

test('the other results and progress lines are checked as the CLI reads them', (t) => {
  const host = {role: 'backup', host: 'web-b'};
  t.notThrows(() => checkResult('resume', {state: 'standby', reason: 'resumed'}));
  t.regex(mismatch(t, () => checkResult('resume', {state: 'standby'})), /\(reason: expected a string, got nothing\)/);
  t.notThrows(() => checkResult('fail-active', {host, seconds: 10}));
  t.notThrows(() => checkResult('switchover', {switchId: 's1', outcome: 'done', giver: host, taker: host, totalMs: 5, confirmedRequests: 3}));
  t.regex(mismatch(t, () => checkResult('switchover', {switchId: 's1', outcome: 'done', giver: host, totalMs: 5})), /\(taker: expected an object, got nothing\)/);
  const progress = (value: unknown): string => JSON.stringify({id: 'x', type: 'progress', protocol: CONTROL_PROTOCOL, progress: value});
  t.notThrows(() => decodeReply(progress({kind: 'step', step: 'assign-ip', host, action: 'apply', status: 'ok', elapsedMs: 3})));
  t.regex(mismatch(t, () => decodeReply(progress({kind: 'step', step: 'assign-ip', action: 'apply', status: 'ok', elapsedMs: 3}))),
    /\(progress\.host: expected an object, got nothing\)/);
  t.regex(mismatch(t, () => decodeReply(progress({kind: 'teleport'}))), /\(progress\.kind: expected one of start, preflight, step, waiting, note, got "teleport"\)/);
});

test('what is not a reply at all says so', (t) => {
  t.is(mismatch(t, () => decodeReply('HTTP/1.1 400 Bad Request')), 'PROTOCOL_MISMATCH: sent a reply that is not JSON: is it a baton-agent?');
  t.regex(mismatch(t, () => decodeReply('[1,2]')), /^PROTOCOL_MISMATCH: sent something that is not a reply \(the value: expected an object, got a list\)/);
  t.regex(mismatch(t, () => decodeReply('{"type":"result"}')), /not a reply \(id: expected a string, got nothing\)/);
  t.regex(mismatch(t, () => decodeReply(JSON.stringify({id: 'x', type: 'result', protocol: CONTROL_PROTOCOL}))), /\(ok: expected a boolean, got nothing\)/);
});

test('a request carries its protocol through the decoder; one without keeps none', (t) => {
  t.deepEqual(decodeRequest(`{"id":"a","type":"status","protocol":${CONTROL_PROTOCOL}}`), {id: 'a', type: 'status', protocol: CONTROL_PROTOCOL});
  t.deepEqual(decodeRequest('{"id":"a","type":"status"}'), {id: 'a', type: 'status'});
  t.is(decodeRequest('{"id":"a","type":"status","protocol":0}'), 'request protocol: expected a positive integer');
});
