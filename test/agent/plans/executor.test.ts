// The one executor: journal before and after each step, a deadline on every step, and a failed plan undoing what
// it had done, newest first, with an outcome that says what happened.

import test from 'ava';
import {BatonError} from '../../../agent/errors.js';
import {executeStep, runPlan, STEP_DEADLINE_MS, type StepRun} from '../../../agent/plans/executor.js';
import {LOCAL_PLANS} from '../../../agent/plans/plans.js';
import {FakeClock} from '../../fakes/fake-clock.js';
import {FakeDrainDriver} from '../../fakes/fake-drain-driver.js';
import {FakeNetworkDriver, FakeSegment} from '../../fakes/fake-network-driver.js';
import {SERVICE_IP} from '../../fakes/test-config.js';

function host(): {network: FakeNetworkDriver; other: FakeNetworkDriver; clock: FakeClock; run: StepRun} {
  const segment = new FakeSegment();
  const network = new FakeNetworkDriver('self', segment);
  const other = new FakeNetworkDriver('other', segment);
  const clock = new FakeClock();
  const service = {ip: SERVICE_IP, ips: [SERVICE_IP], interface: 'eth0', mode: 'address'} as const;
  return {network, other, clock, run: {mode: 'address', clock, ctx: {
    service, network, announce: () => network.announce(SERVICE_IP), probe: () => network.isAddressInUse(SERVICE_IP),
    drain: new FakeDrainDriver(), giverAddresses: () => [],
  }}};
}

test('a takeover runs probe, add and announce in order and reports each step', async (t) => {
  const h = host();
  const outcome = await runPlan(LOCAL_PLANS.takeover, h.run);
  t.true(outcome.ok);
  t.deepEqual(outcome.steps.map((s) => s.step), ['probe-address', 'take-ip', 'announce']);
  t.deepEqual(h.network.actions(), ['isAddressInUse 192.0.2.100/24', 'addAddress 192.0.2.100/24', 'announce 192.0.2.100/24']);
});

test('a step that fails after others undoes the done ones, newest first, and names the failed step once', async (t) => {
  const h = host();
  h.network.failNext('announce');
  const outcome = await runPlan(LOCAL_PLANS.takeover, h.run);
  if (outcome.ok) return t.fail('the plan should fail');
  t.is(outcome.failed, 'announce');
  t.is(outcome.message, 'announce: announce failed (injected)');
  t.deepEqual(outcome.undone, ['take-ip', 'probe-address'], 'newest first; probe-address had nothing to take back');
  t.false(h.network.addresses.has(SERVICE_IP.address), 'the address added by take-ip is gone again');
});

test('a takeover stopped by an answering IP changes nothing and keeps the error code', async (t) => {
  const h = host();
  h.other.addresses.add(SERVICE_IP.address);
  const outcome = await runPlan(LOCAL_PLANS.takeover, h.run);
  if (outcome.ok) return t.fail('the plan should fail');
  t.is(outcome.failed, 'probe-address');
  t.is((outcome.error as BatonError).code, 'ADDRESS_IN_USE');
  t.deepEqual(h.network.actions(), ['isAddressInUse 192.0.2.100/24']);
});

test('the journal is written before the step and after its verify, and not after a failed one', async (t) => {
  const h = host();
  const order: string[] = [];
  const journal = {
    before: async (step: string) => void order.push(`before ${step}`),
    after: async (step: string) => void order.push(`after ${step}`),
  };
  await executeStep('take-ip', h.run, journal);
  h.network.failNext('removeAddress');
  await t.throwsAsync(executeStep('release-ip', h.run, journal));
  t.deepEqual(order, ['before take-ip', 'after take-ip', 'before release-ip']);
});

test('a step that hangs fails at the deadline with STEP_FAILED naming the step', async (t) => {
  const h = host();
  h.network.addAddress = () => new Promise(() => undefined);
  const running = executeStep('take-ip', h.run);
  const failed = t.throwsAsync(running);
  await h.clock.advance(STEP_DEADLINE_MS - 1);
  t.is(h.clock.pendingSleepers(), 1, 'still waiting just before the deadline');
  await h.clock.advance(1);
  const error = await failed;
  t.is((error as BatonError).code, 'STEP_FAILED');
  t.is(error?.message, `take-ip did not finish within ${STEP_DEADLINE_MS} ms`);
});
