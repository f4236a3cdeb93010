import test from 'ava';
import type {Beacon} from '../../agent/peer/beacon-codec.js';
import {epochAbove, MAX_EPOCH} from '../../agent/epoch.js';
import {LOCAL_PLANS} from '../../agent/plans/plans.js';
import {initialState, step, winsConflict, type AgentEvent, type MachineState} from '../../agent/state-machine.js';

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

test('a primary at start with the IP free saves an epoch above the peer\'s, then runs the acquire plan', (t) => {
  const {state, effects} = run(initialState('primary', 4),
    {type: 'peer-seen', beacon: peerBeacon({epoch: 6})}, {type: 'peer-lost'},
    {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(state.name, 'starting');
  t.is(state.epoch, 7);
  t.deepEqual(effects, ['save-epoch 7', 'run-plan acquire take-ip,announce']);
  const alone = run(initialState('primary', 4), {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(alone.state.epoch, 4, 'already above every epoch it knows: kept, nothing to save');
  t.deepEqual(alone.effects, ['run-plan acquire take-ip,announce']);
  t.deepEqual(LOCAL_PLANS.acquire, ['take-ip', 'announce']);
});

test('a takeover under a peer at the largest epoch stays at the largest epoch, and the tie goes to the primary', (t) => {
  const {state, effects} = run(initialState('primary', 3),
    {type: 'peer-seen', beacon: peerBeacon({epoch: MAX_EPOCH})}, {type: 'peer-lost'},
    {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(state.epoch, MAX_EPOCH);
  t.deepEqual(effects, [`save-epoch ${MAX_EPOCH}`, 'run-plan acquire take-ip,announce']);
  t.true(winsConflict(state, {alive: true, state: 'active', holdsIp: true, epoch: MAX_EPOCH}));
  t.false(winsConflict({...state, role: 'backup'}, {alive: true, state: 'active', holdsIp: true, epoch: MAX_EPOCH}));
  t.is(epochAbove(MAX_EPOCH - 1, 7), MAX_EPOCH);
  t.is(epochAbove(MAX_EPOCH, MAX_EPOCH), MAX_EPOCH);
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
  const {state} = run(probed.state, {type: 'plan-finished', planId: probed.state.plan?.id ?? '', ok: false, error: 'take-ip: Operation not permitted'});
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

test('at start, winning against a live peer that also holds the IP: active, and an announcement once the peer let go', (t) => {
  // The loser may release before this host ever sees it as active: the split brain must be known from the start.
  const {state, effects} = run(initialState('primary', 3),
    {type: 'peer-seen', beacon: peerBeacon({state: 'switching', holdsIp: true, epoch: 2})},
    {type: 'probed', holdsIp: true, addressInUse: false});
  t.is(state.name, 'active');
  t.true(state.splitBrain);
  t.regex(state.reason, /split brain at start: the peer also holds the service IP \(epoch 2, ours 3\)/);
  t.deepEqual(effects, ['send-beacon']);
  const over = run(state, {type: 'peer-seen', beacon: peerBeacon({state: 'standby', holdsIp: false, epoch: 2})});
  t.deepEqual(over.effects, ['announce-again', 'send-beacon']);
  t.false(over.state.splitBrain);
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

function settledAs(role: 'primary' | 'backup', name: 'active' | 'standby', epoch: number): MachineState {
  return {...initialState(role, epoch), name};
}

test('a standby whose peer goes silent runs the takeover plan, probing first, under a higher epoch', (t) => {
  const start = run(settledAs('backup', 'standby', 0), {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'active', holdsIp: true, epoch: 3})});
  const {state, effects} = run(start.state, {type: 'peer-lost'});
  t.deepEqual(effects, ['save-epoch 4', 'run-plan takeover probe-address,take-ip,announce']);
  t.is(state.epoch, 4);
  t.is(run(state, {type: 'plan-finished', planId: state.plan?.id ?? '', ok: true}).state.name, 'active');
});

test('a takeover stopped by an IP that still answers leaves the standby ready and probing, not in fault', (t) => {
  const lost = run(settledAs('backup', 'standby', 0), {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'active', holdsIp: true})}, {type: 'peer-lost'});
  const blocked = run(lost.state, {type: 'plan-finished', planId: lost.state.plan?.id ?? '', ok: false, error: 'probe-address: x', addressInUse: true});
  t.is(blocked.state.name, 'standby');
  t.regex(blocked.state.reason, /peer silent but service IP alive/);
  const again = run(blocked.state, {type: 'peer-still-silent'});
  t.deepEqual(again.effects.at(-1), 'run-plan takeover probe-address,take-ip,announce');
  t.is(again.state.reason, blocked.state.reason, 'probing again is not news');
  const broken = run(lost.state, {type: 'plan-finished', planId: lost.state.plan?.id ?? '', ok: false, error: 'take-ip: permission denied'});
  t.is(broken.state.name, 'fault');
});

test('released and fault hosts never take the IP when the peer goes silent', (t) => {
  for (const name of ['released', 'fault'] as const) {
    const state = {...initialState('backup', 0), name};
    const {effects} = run(state, {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'active', holdsIp: true})}, {type: 'peer-lost'}, {type: 'peer-still-silent'});
    t.deepEqual(effects, [], name);
  }
});

test('a standby takes a free IP at once when the live peer says it stopped and released it', (t) => {
  const {effects} = run(settledAs('backup', 'standby', 1), {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'stopping', holdsIp: false, epoch: 1})});
  t.deepEqual(effects, ['save-epoch 2', 'run-plan takeover probe-address,take-ip,announce']);
});

test('a standby leaves the IP alone when the stopping peer keeps it (on_stop: keep)', (t) => {
  const {effects} = run(settledAs('backup', 'standby', 1), {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'stopping', holdsIp: true, epoch: 1})});
  t.deepEqual(effects, []);
});

test('when both are standby and nobody holds the IP, only the primary takes it', (t) => {
  const beacon = peerBeacon({state: 'standby', holdsIp: false});
  t.deepEqual(run(settledAs('primary', 'standby', 1), {type: 'peer-seen', beacon}).effects.at(-1), 'run-plan takeover probe-address,take-ip,announce');
  t.deepEqual(run(settledAs('backup', 'standby', 1), {type: 'peer-seen', beacon: {...beacon, node: 'primary'}}).effects, []);
});

test('split brain: the lower epoch releases, the higher one waits, then announces again when the peer let go', (t) => {
  const both = peerBeacon({state: 'active', holdsIp: true, epoch: 5});
  const loser = run(settledAs('primary', 'active', 4), {type: 'peer-seen', beacon: both});
  t.deepEqual(loser.effects, ['run-plan release release-ip']);
  t.regex(loser.state.reason, /split brain healed/);

  const winner = run(settledAs('backup', 'active', 5), {type: 'peer-seen', beacon: {...both, node: 'primary', epoch: 4}});
  t.deepEqual(winner.effects, ['send-beacon']);
  t.true(winner.state.splitBrain);
  t.deepEqual(run(winner.state, {type: 'peer-seen', beacon: {...both, node: 'primary', epoch: 4}}).effects, [], 'said once');
  const over = run(winner.state, {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'standby', holdsIp: false, epoch: 4})});
  t.deepEqual(over.effects, ['announce-again', 'send-beacon']);
  t.false(over.state.splitBrain);
});

test('observed drift is repaired: a lost address is taken back, a found one is held', (t) => {
  const lost = run(settledAs('primary', 'active', 3), {type: 'observed', holdsIp: false, interfaceRunning: true});
  t.deepEqual(lost.effects, ['run-plan takeover probe-address,take-ip,announce']);
  t.is(lost.state.epoch, 3, 'taking back its own address keeps the epoch');
  const peerHas = run(settledAs('primary', 'active', 3), {type: 'peer-seen', beacon: peerBeacon({state: 'active', holdsIp: true, epoch: 9})});
  t.is(peerHas.state.plan?.name, 'release');
  const found = run(settledAs('backup', 'standby', 0), {type: 'observed', holdsIp: true, interfaceRunning: true});
  t.is(found.state.name, 'active');
  t.deepEqual(run(settledAs('primary', 'active', 3), {type: 'observed', holdsIp: true, interfaceRunning: true}).effects, []);
});

test('part of a dual-stack service IP on a standby or faulted host is released; an active host takes the rest back', (t) => {
  const partly = {type: 'observed', holdsIp: false, interfaceRunning: true, partlyHeld: true} as const;
  const standby = run(settledAs('backup', 'standby', 0), partly);
  t.deepEqual(standby.effects, ['run-plan release release-ip']);
  t.is(standby.state.reason, 'found part of the service IP on this host while standby: releasing it');
  t.is(run(standby.state, {type: 'plan-finished', planId: standby.state.plan?.id ?? '', ok: true}).state.name, 'standby');
  const fault = run({...settledAs('backup', 'standby', 0), name: 'fault'}, partly);
  t.deepEqual(fault.effects, ['run-plan release release-ip']);
  // A link cut: the addresses come off while the link is down (an IPv4 one would stay on it), then fault until it runs.
  const cut = run(settledAs('primary', 'active', 3), {type: 'observed', holdsIp: false, interfaceRunning: false});
  t.deepEqual(cut.effects, ['run-plan release release-ip']);
  const down = run(cut.state, {type: 'plan-finished', planId: cut.state.plan?.id ?? '', ok: true});
  t.is(down.state.name, 'fault');
  // Part of it still there when the link returns (added by hand meanwhile): released before the fault ends.
  const back = run(down.state, partly);
  t.deepEqual(back.effects, ['run-plan release release-ip']);
  const released = run(back.state, {type: 'plan-finished', planId: back.state.plan?.id ?? '', ok: true});
  t.is(run(released.state, {type: 'observed', holdsIp: false, interfaceRunning: true}).state.name, 'standby');
  const active = run(settledAs('primary', 'active', 3), partly);
  t.deepEqual(active.effects, ['run-plan takeover probe-address,take-ip,announce'], 'the missing address is taken back');
  const peerHolds = run(settledAs('primary', 'active', 3), {type: 'peer-seen', beacon: peerBeacon({state: 'active', holdsIp: true, epoch: 9})});
  t.is(run({...peerHolds.state, plan: undefined}, partly).state.name, 'standby', 'the peer holds it all: stand by, then release the rest');
  t.deepEqual(run(settledAs('backup', 'standby', 0), {type: 'observed', holdsIp: false, interfaceRunning: true}).effects, [], 'nothing there: nothing to do');
});

test('part of a dual-stack service IP on a released host is released, and the host stays released until `baton resume`', (t) => {
  const partly = {type: 'observed', holdsIp: false, interfaceRunning: true, partlyHeld: true} as const;
  const found = run({...settledAs('primary', 'active', 4), name: 'released'}, partly);
  t.deepEqual(found.effects, ['run-plan release release-ip'], 'a released host holds neither address');
  t.is(found.state.reason, 'found part of the service IP on this host while released: releasing it');
  const done = run(found.state, {type: 'plan-finished', planId: found.state.plan?.id ?? '', ok: true});
  t.is(done.state.name, 'released', 'not standby: hands off until `baton resume`');
  t.is(done.state.epoch, 4);
  // A release that failed leaves the address there: the next look tries again, and the host is still released.
  const failed = run(found.state, {type: 'plan-finished', planId: found.state.plan?.id ?? '', ok: false, error: 'release-ip: 2001:db8::100 is still on eth0'});
  t.is(failed.state.name, 'released');
  t.regex(failed.state.reason, /could not release part of the service IP .*2001:db8::100 is still on eth0; trying again/);
  t.deepEqual(run(failed.state, partly).effects, ['run-plan release release-ip']);
  t.deepEqual(run(done.state, {type: 'observed', holdsIp: false, interfaceRunning: true}).effects, [], 'nothing there: nothing to do');
});

test('an active host whose service interface stops running is in fault, not taking its address back, and stands by when it runs again', (t) => {
  // The host no longer serves (an IPv6 address goes with the link), and a takeover through a down link would fail:
  // it releases the address instead, so that an IPv4 one, which stays on a downed link, cannot answer when it returns.
  const releasing = run(settledAs('primary', 'active', 3), {type: 'observed', holdsIp: false, interfaceRunning: false});
  t.deepEqual(releasing.effects, ['run-plan release release-ip'], 'no takeover plan');
  t.true(releasing.state.interfaceDown, 'remembered through the release');
  const planId = releasing.state.plan?.id ?? 'no plan';
  const down = run(releasing.state, {type: 'plan-finished', planId, ok: true});
  t.is(down.state.name, 'fault');
  t.deepEqual(down.effects, ['send-beacon']);
  t.regex(down.state.reason, /the service interface does not run .*released the service IP/);
  t.is(run(down.state, {type: 'observed', holdsIp: false, interfaceRunning: false}).state.name, 'fault', 'still down: still fault');
  const back = run(down.state, {type: 'observed', holdsIp: false, interfaceRunning: true});
  t.is(back.state.name, 'standby');
  t.is(back.state.reason, 'the service interface runs again');
  t.false(back.state.interfaceDown, 'forgotten once out of fault');
  // A fault of its health checks is theirs to end, even when the interface went down and came back meanwhile.
  const failing = {...down.state, health: 'failing' as const};
  t.is(run(failing, {type: 'observed', holdsIp: false, interfaceRunning: true}).state.name, 'fault');
  // A fault that did not come with the interface (a failed takeover on a running one) does not end by it running.
  const failed = {...settledAs('backup', 'standby', 0), name: 'fault' as const};
  t.is(run(failed, {type: 'observed', holdsIp: false, interfaceRunning: true}).state.name, 'fault');
  const seenDown = run(failed, {type: 'observed', holdsIp: false, interfaceRunning: false});
  t.true(seenDown.state.interfaceDown);
  t.deepEqual(seenDown.effects, []);
  t.is(run(seenDown.state, {type: 'observed', holdsIp: false, interfaceRunning: true}).state.name, 'standby',
    'a takeover that failed with the link down ends when the link is back');
});

test('a peer that holds the IP without serving it (starting with it on its interface) is a split brain: the IP is announced again when it lets go', (t) => {
  const active = settledAs('backup', 'active', 5);
  const seen = run(active, {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'starting', holdsIp: true, epoch: 9})});
  t.true(seen.state.splitBrain, 'even with a higher epoch: a starting peer does not serve, this host keeps the IP');
  t.is(seen.state.plan, undefined, 'no release');
  const over = run(seen.state, {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'standby', holdsIp: false, epoch: 9})});
  t.deepEqual(over.effects, ['announce-again', 'send-beacon'], 'clients that followed the peer\'s ARP answers come back');
});

test('a host released before a restart stays released after it, not standby', (t) => {
  const {state} = run(initialState('primary', 3, true), {type: 'probed', holdsIp: false, addressInUse: false});
  t.is(state.name, 'released');
  t.regex(state.reason, /baton resume/);
});

test('a standby probing again and again while the IP answers does not count its epoch up', (t) => {
  const lost = run(settledAs('backup', 'standby', 0), {type: 'peer-seen', beacon: peerBeacon({node: 'primary', state: 'active', holdsIp: true, epoch: 3})}, {type: 'peer-lost'});
  const blocked = run(lost.state, {type: 'plan-finished', planId: lost.state.plan?.id ?? '', ok: false, error: 'x', addressInUse: true});
  const again = run(blocked.state, {type: 'peer-still-silent'});
  t.is(lost.state.epoch, 4);
  t.is(again.state.epoch, 4);
  t.false(again.effects.some((e) => e.startsWith('save-epoch')));
});

test('stopping says whether the IP was released', (t) => {
  t.regex(run(settledAs('primary', 'active', 1), {type: 'stop-requested', released: true}).state.reason, /released the service IP/);
  t.is(run(settledAs('primary', 'active', 1), {type: 'stop-requested', released: false}).state.name, 'stopping');
});
