// The plans as data: the runbook's order, which side runs each step, and the rollback of what was applied.

import test from 'ava';
import {
  isSwitchStepName, LOCAL_PLANS, LOCAL_STEP_NAMES, planRollback, sideOf, SWITCH_STEP_NAMES, SWITCHOVER_PLAN, switchoverPlan,
} from '../../../agent/plans/plans.js';

test('without a drain the switchover is the runbook order: taker down, assign, giver down, taker up, confirm', (t) => {
  t.deepEqual(switchoverPlan(false).map((s) => `${s.on} ${s.name}`),
    ['taker backup-net-down', 'taker assign-ip', 'giver primary-net-down', 'taker backup-net-up', 'taker confirm-traffic']);
  t.is(sideOf('primary-net-down'), 'giver');
  t.is(sideOf('backup-net-up'), 'taker');
});

test('with a drain, both preparations come before the giver lets go, and the drain and the tidying after the confirmation', (t) => {
  t.deepEqual(switchoverPlan(true).map((s) => `${s.on} ${s.name}`), [
    'taker backup-net-down', 'taker assign-ip', 'taker forward-strays', 'giver hold-connections', 'giver primary-net-down',
    'taker backup-net-up', 'taker confirm-traffic', 'giver drain-connections', 'taker end-forwarding', 'giver end-hold',
  ]);
  t.deepEqual(SWITCHOVER_PLAN.map((s) => s.name), [...SWITCH_STEP_NAMES], 'the step names are the drained plan\'s, in order');
  t.deepEqual(switchoverPlan(true), SWITCHOVER_PLAN);
});

test('a rollback undoes only what was applied, newest first, never confirm-traffic nor what follows it', (t) => {
  t.deepEqual(planRollback(['backup-net-down', 'assign-ip', 'primary-net-down']).map((s) => `${s.on} ${s.name}`),
    ['giver primary-net-down', 'taker assign-ip', 'taker backup-net-down']);
  t.deepEqual(planRollback([...SWITCH_STEP_NAMES]).map((s) => s.name),
    ['backup-net-up', 'primary-net-down', 'hold-connections', 'forward-strays', 'assign-ip', 'backup-net-down']);
  t.deepEqual(planRollback([]), []);
});

test('a host\'s own plans use only its own steps; a takeover probes before it adds', (t) => {
  for (const steps of Object.values(LOCAL_PLANS)) {
    for (const step of steps) t.true((LOCAL_STEP_NAMES as readonly string[]).includes(step), step);
  }
  t.deepEqual(LOCAL_PLANS.takeover, ['probe-address', 'take-ip', 'announce']);
  t.true(isSwitchStepName('assign-ip'));
  t.false(isSwitchStepName('take-ip'), 'a takeover step is not a switch step: peers cannot ask for it');
  t.false(isSwitchStepName(3));
});
