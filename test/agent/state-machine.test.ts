import test from 'ava';
import type {Beacon} from '../../agent/beacon-codec.js';
import {initialState, PLAN_STEPS, step, winsConflict, type AgentEvent, type MachineState} from '../../agent/state-machine.js';

function peerBeacon(overrides: Partial<Beacon> = {}): Beacon {
  return {
    pair: 'web', node: 'backup', host: 'web-b', boot: 'b1', seq: 1, sentAt: 0, state: 'standby', epoch: 0,
    holdsIp: false, health: 'ok', switchId: '', ack: undefined, ...overrides,
  };
}

function run(state: MachineState, ...events: AgentEvent[]): {state: MachineState; effects: string[]} {
  let current = state;
  const effects: string[] = [];
  for (const event of events) {
    const next = step(current, event);
    current = next.state;
    effects.push(...next.effects.map((e) => (e.type === 'run-plan' ? `run-plan ${e.plan} ${e.steps.join(',')}` : e.type === 'save-epoch' ? `save-epoch ${e.epoch}` : e.type)));
  }
  return {state: current, effects};
}

test('a primary at start with the IP free saves a new epoch, then runs the acquire plan', (t) => {
  const {state, effects} = run(initialState('primary', 4), {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(state.name, 'starting');
  t.is(state.epoch, 5);
  t.deepEqual(effects, ['save-epoch 5', 'run-plan acquire assign-ip,announce']);
  t.deepEqual(PLAN_STEPS.acquire, ['assign-ip', 'announce']);
});

test('the acquire plan succeeding makes the primary active and sends a beacon at once', (t) => {
  const probed = run(initialState('primary', 0), {type: 'probed', holdsIp: false, addressInUse: false});
  const planId = probed.state.plan?.id ?? '';
  const {state, effects} = run(probed.state, {type: 'plan-finished', planId, ok: true});
  t.is(state.name, 'active');
  t.is(state.plan, undefined);
  t.deepEqual(effects, ['send-beacon']);
});

test('the acquire plan failing puts the primary in fault with the step error as reason', (t) => {
  const probed = run(initialState('primary', 0), {type: 'probed', holdsIp: false, addressInUse: false});
  const {state} = run(probed.state, {type: 'plan-finished', planId: probed.state.plan?.id ?? '', ok: false, error: 'assign-ip: Operation not permitted'});
  t.is(state.name, 'fault');
  t.regex(state.reason, /Operation not permitted/);
});

test('a finish for another plan id changes nothing', (t) => {
  const probed = run(initialState('primary', 0), {type: 'probed', holdsIp: false, addressInUse: false});
  const {state, effects} = run(probed.state, {type: 'plan-finished', planId: 'p99', ok: true});
  t.is(state, probed.state);
  t.deepEqual(effects, []);
});

test('a primary at start does not take an IP that answers ARP: it stands by', (t) => {
  const {state, effects} = run(initialState('primary', 0), {type: 'probed', holdsIp: false, addressInUse: true});
  t.is(state.name, 'standby');
  t.regex(state.reason, /answered an ARP probe/);
  t.deepEqual(effects, ['send-beacon']);
});

test('a primary at start stands by when the live peer reports holding the IP (no preemption)', (t) => {
  const {state, effects} = run(initialState('primary', 2),
    {type: 'peer-seen', beacon: peerBeacon({state: 'active', holdsIp: true, epoch: 3})},
    {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(state.name, 'standby');
  t.false(effects.some((e) => e.startsWith('run-plan')));
});

test('a primary at start ignores a peer that was seen but is no longer alive', (t) => {
  const {state} = run(initialState('primary', 2),
    {type: 'peer-seen', beacon: peerBeacon({state: 'active', holdsIp: true, epoch: 3})},
    {type: 'peer-lost'},
    {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(state.plan?.name, 'acquire');
  t.is(state.epoch, 4, 'the new epoch is above the highest seen');
});

test('a backup at start stands by, whatever the probe says', (t) => {
  for (const addressInUse of [false, true]) {
    const {state, effects} = run(initialState('backup', 0), {type: 'probed', holdsIp: false, addressInUse});
    t.is(state.name, 'standby');
    t.deepEqual(effects, ['send-beacon']);
  }
});

test('a host that finds the IP already on its interface at start stays active', (t) => {
  const {state, effects} = run(initialState('backup', 6), {type: 'probed', holdsIp: true, addressInUse: false});
  t.is(state.name, 'active');
  t.is(state.epoch, 6);
  t.deepEqual(effects, ['send-beacon']);
});

test('at start, holding the IP while the live peer also holds it with a higher epoch releases it', (t) => {
  const {state, effects} = run(initialState('primary', 2),
    {type: 'peer-seen', beacon: peerBeacon({state: 'active', holdsIp: true, epoch: 3})},
    {type: 'probed', holdsIp: true, addressInUse: false});
  t.deepEqual(effects, ['run-plan release release-ip']);
  const done = run(state, {type: 'plan-finished', planId: state.plan?.id ?? '', ok: true});
  t.is(done.state.name, 'standby');
});

test('conflicts are won by the higher epoch, and a tie by the primary, so both sides agree', (t) => {
  const peer = {alive: true, state: 'active' as const, holdsIp: true, epoch: 5};
  t.true(winsConflict({...initialState('backup', 6)}, peer));
  t.false(winsConflict({...initialState('primary', 4)}, peer));
  t.true(winsConflict({...initialState('primary', 5)}, peer));
  t.false(winsConflict({...initialState('backup', 5)}, peer));
});

test('a second probe after the decision changes nothing', (t) => {
  const first = run(initialState('backup', 0), {type: 'probed', holdsIp: false, addressInUse: false});
  const second = run(first.state, {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(second.state, first.state);
  t.deepEqual(second.effects, []);
});

test('peer beacons update the peer view without changing the state', (t) => {
  const {state} = run(initialState('backup', 0),
    {type: 'probed', holdsIp: false, addressInUse: false},
    {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'active', holdsIp: true, epoch: 9})});
  t.is(state.name, 'standby');
  t.deepEqual(state.peer, {alive: true, state: 'active', holdsIp: true, epoch: 9});
  t.false(run(state, {type: 'peer-lost'}).state.peer?.alive);
});
