// The plans as data: the runbook's order, which side runs each step, and the rollback of what was applied.

import test from 'ava';
import {isSwitchStepName, LOCAL_PLANS, LOCAL_STEP_NAMES, planRollback, sideOf, SWITCH_STEP_NAMES, SWITCHOVER_PLAN} from '../../../agent/plans/plans.js';

test('the switchover is the runbook order: taker down, assign, giver down, taker up, confirm', (t) => {
  t.deepEqual(SWITCHOVER_PLAN.map((s) => `${s.on} ${s.name}`),
    ['taker backup-net-down', 'taker assign-ip', 'giver primary-net-down', 'taker backup-net-up', 'taker confirm-traffic']);
  t.deepEqual(SWITCHOVER_PLAN.map((s) => s.name), [...SWITCH_STEP_NAMES]);
  t.is(sideOf('primary-net-down'), 'giver');
  t.is(sideOf('backup-net-up'), 'taker');
});

test('a rollback undoes only what was applied, newest first, and never confirm-traffic', (t) => {
  t.deepEqual(planRollback(['backup-net-down', 'assign-ip', 'primary-net-down']).map((s) => `${s.on} ${s.name}`),
    ['giver primary-net-down', 'taker assign-ip', 'taker backup-net-down']);
  t.deepEqual(planRollback([...SWITCH_STEP_NAMES]).map((s) => s.name), ['backup-net-up', 'primary-net-down', 'assign-ip', 'backup-net-down']);
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
