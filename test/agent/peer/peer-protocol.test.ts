import test, {type ExecutionContext} from 'ava';
import {BatonError} from '../../../agent/errors.js';
import type {JsonObject} from '../../../agent/peer/beacon-codec.js';
import {MAX_DROP_S} from '../../../agent/rehearsal.js';
import {decodePeerParams, PEER_OPS, type PeerOp, type PeerParams} from '../../../agent/peer/peer-protocol.js';
import {SWITCH_STEP_NAMES, type SwitchSide, type SwitchStepName} from '../../../agent/plans/plans.js';

const accepts = test.macro({
  exec<Op extends PeerOp>(t: ExecutionContext, op: Op, params: JsonObject, expected: PeerParams<Op>) {
    t.deepEqual(decodePeerParams(op, params), expected);
  },
  title: (given, op: PeerOp, params: JsonObject) => given ?? `${op} accepts ${JSON.stringify(params)}`,
});

const refuses = test.macro({
  exec(t: ExecutionContext, op: PeerOp, params: JsonObject, message: string) {
    const error = t.throws(() => decodePeerParams(op, params), {instanceOf: BatonError, message});
    t.is(error?.code, 'BAD_REQUEST');
  },
  title: (given, op: PeerOp, params: JsonObject) => given ?? `${op} refuses ${JSON.stringify(params)} with BAD_REQUEST`,
});

test('the operations on the wire are these thirteen, in this order', (t) => {
  t.deepEqual(PEER_OPS, ['host-info', 'check-log', 'plan', 'begin', 'can-drain', 'drain', 'apply', 'undo', 'confirm', 'finish', 'resume', 'drop-link', 'rehearsal', 'version']);
});

test('a taker is told where to send strays as an IPv4 or IPv6 address without a zone; the drain\'s timeout is bounded', (t) => {
  t.deepEqual(decodePeerParams('begin', {side: 'taker', epoch: 4, giverAddress: '192.0.2.11'}), {side: 'taker', epoch: 4, giverAddress: '192.0.2.11'});
  t.deepEqual(decodePeerParams('begin', {side: 'taker', epoch: 4, giverAddress: '2001:db8:0:1::11'}), {side: 'taker', epoch: 4, giverAddress: '2001:db8:0:1::11'});
  t.deepEqual(decodePeerParams('begin', {side: 'taker', epoch: 4}), {side: 'taker', epoch: 4}, 'no address: no drain');
  // A dual-stack service's giver names one address of each family.
  t.deepEqual(decodePeerParams('begin', {side: 'taker', epoch: 4, giverAddress: ['192.0.2.11', '2001:db8:0:1::11']}),
    {side: 'taker', epoch: 4, giverAddress: ['192.0.2.11', '2001:db8:0:1::11']});
  t.deepEqual(decodePeerParams('plan', {step: 'forward-strays', giverAddress: ['2001:db8:0:1::11', '192.0.2.11']}),
    {step: 'forward-strays', giverAddress: ['2001:db8:0:1::11', '192.0.2.11']});
  for (const giverAddress of ['fe80::1%eth0', 'example.org', 7, '192.0.2.300', '2001:db8::g', [], ['192.0.2.11', '192.0.2.12'],
    ['192.0.2.11', '2001:db8::11', '2001:db8::12'], ['192.0.2.11', 'fe80::1%eth0'], ['192.0.2.11', 7], {address: '192.0.2.11'}]) {
    t.throws(() => decodePeerParams('begin', {side: 'taker', epoch: 4, giverAddress}),
      {message: 'begin: giverAddress must be an IPv4 or IPv6 address without a zone, or a list of one of each'}, JSON.stringify(giverAddress));
  }
  t.deepEqual(decodePeerParams('drain', {timeoutMs: 60_000}), {timeoutMs: 60_000});
  for (const timeoutMs of [-1, 1.5, 3_600_001, '60000']) t.throws(() => decodePeerParams('drain', {timeoutMs}), {message: /^drain: timeoutMs must be an integer/});
});

test('decoded params carry their types: a step name, a side, numbers, an outcome', (t) => {
  // These assignments are the test as much as the assertions: they fail to compile when a type widens.
  const {step}: {step: SwitchStepName} = decodePeerParams('apply', {step: 'assign-ip'});
  const {side, epoch}: {side: SwitchSide; epoch: number} = decodePeerParams('begin', {side: 'taker', epoch: 4});
  const {unlessHeld}: {unlessHeld: boolean} = decodePeerParams('undo', {step: 'primary-net-down', unlessHeld: true});
  const {outcome}: {outcome: 'done' | 'rolled-back'} = decodePeerParams('finish', {outcome: 'rolled-back', reason: 'r'});
  const {seconds}: {seconds: number} = decodePeerParams('drop-link', {seconds: 60});
  t.deepEqual([step, side, epoch, unlessHeld, outcome, seconds], ['assign-ip', 'taker', 4, true, 'rolled-back', 60]);
});

// Operations without params ignore what they are sent, as they always have.
test(accepts, 'host-info', {}, {});
test(accepts, 'check-log', {}, {});
test(accepts, 'resume', {}, {});
test('resume ignores fields it does not know', accepts, 'resume', {extra: 1}, {});

for (const step of SWITCH_STEP_NAMES) {
  test(accepts, 'plan', {step}, {step});
  test(accepts, 'apply', {step}, {step});
}
test(accepts, 'undo', {step: 'primary-net-down', unlessHeld: true}, {step: 'primary-net-down', unlessHeld: true});
test(accepts, 'undo', {step: 'backup-net-up', unlessHeld: false}, {step: 'backup-net-up', unlessHeld: false});
test('undo without unlessHeld is a plain undo', accepts, 'undo', {step: 'assign-ip'}, {step: 'assign-ip', unlessHeld: false});
test('undo reads only true as unlessHeld', accepts, 'undo', {step: 'assign-ip', unlessHeld: 'yes'}, {step: 'assign-ip', unlessHeld: false});

const unknownStep = (step: unknown): string => `unknown step ${JSON.stringify(step)}`;
test('plan without a step is refused', refuses, 'plan', {}, 'unknown step undefined');
test(refuses, 'plan', {step: 'assign-IP'}, unknownStep('assign-IP'));
test(refuses, 'apply', {step: 3}, 'unknown step 3');
test(refuses, 'apply', {step: null}, 'unknown step null');
test('a role-machine step name is not a switch step', refuses, 'apply', {step: 'probe-address'}, unknownStep('probe-address'));
test(refuses, 'undo', {step: 'reboot', unlessHeld: true}, unknownStep('reboot'));
test(refuses, 'undo', {unlessHeld: true}, 'unknown step undefined');

test(accepts, 'begin', {side: 'giver', epoch: 0}, {side: 'giver', epoch: 0});
test(accepts, 'begin', {side: 'taker', epoch: 12}, {side: 'taker', epoch: 12});
test(refuses, 'begin', {side: 'primary', epoch: 1}, 'begin: side must be giver or taker');
test('begin without a side is refused', refuses, 'begin', {epoch: 1}, 'begin: side must be giver or taker');
test('a side is checked before the epoch', refuses, 'begin', {side: 'both', epoch: -1}, 'begin: side must be giver or taker');
test('a negative epoch is refused', refuses, 'begin', {side: 'taker', epoch: -1}, 'begin: epoch must be an integer 0..2147483647');
test(refuses, 'begin', {side: 'taker', epoch: 1.5}, 'begin: epoch must be an integer 0..2147483647');
test(refuses, 'begin', {side: 'taker', epoch: '3'}, 'begin: epoch must be an integer 0..2147483647');
test(refuses, 'begin', {side: 'taker', epoch: 2 ** 53}, 'begin: epoch must be an integer 0..2147483647');
test('an epoch above 2^31 − 1 is refused', refuses, 'begin', {side: 'taker', epoch: 2 ** 31}, 'begin: epoch must be an integer 0..2147483647');
test(accepts, 'begin', {side: 'taker', epoch: 2 ** 31 - 1}, {side: 'taker', epoch: 2 ** 31 - 1});
test('begin without an epoch is refused', refuses, 'begin', {side: 'taker'}, 'begin: epoch must be an integer 0..2147483647');

test(accepts, 'confirm', {needed: 3, timeoutMs: 30_000}, {needed: 3, timeoutMs: 30_000});
test(refuses, 'confirm', {needed: '3', timeoutMs: 30_000}, 'confirm: needed and timeoutMs are numbers');
test('confirm without timeoutMs is refused', refuses, 'confirm', {needed: 3}, 'confirm: needed and timeoutMs are numbers');
test('confirm without params is refused', refuses, 'confirm', {}, 'confirm: needed and timeoutMs are numbers');

test(accepts, 'finish', {outcome: 'done', reason: 'switch k3F9 done'}, {outcome: 'done', reason: 'switch k3F9 done'});
test(accepts, 'finish', {outcome: 'rolled-back', reason: ''}, {outcome: 'rolled-back', reason: ''});
test('only the coordinator-side outcomes are asked of the peer', refuses, 'finish', {outcome: 'interrupted', reason: 'r'}, 'finish: outcome and reason');
test('finish without a reason is refused', refuses, 'finish', {outcome: 'done'}, 'finish: outcome and reason');
test(refuses, 'finish', {outcome: 'done', reason: 5}, 'finish: outcome and reason');

const badSeconds = `drop-link: seconds must be an integer 1..${MAX_DROP_S}`;
test('a link drop lasts at most 300 s', (t) => {
  t.is(MAX_DROP_S, 300);
});
test(accepts, 'drop-link', {seconds: 1}, {seconds: 1});
test(accepts, 'drop-link', {seconds: MAX_DROP_S}, {seconds: MAX_DROP_S});
test(refuses, 'drop-link', {seconds: 0}, badSeconds);
test(refuses, 'drop-link', {seconds: MAX_DROP_S + 1}, badSeconds);
test(refuses, 'drop-link', {seconds: 1.5}, badSeconds);
test(refuses, 'drop-link', {seconds: '60'}, badSeconds);
test('drop-link without seconds is refused', refuses, 'drop-link', {}, badSeconds);
