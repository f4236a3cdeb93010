// The role state machine: pure step(state, event) → {state, effects}. No I/O, no clock, no randomness.
//
//                  probed: IP free, role primary
//     ┌──────────┐ ──────────────────────────────► (acquire plan) ──ok──► ┌────────┐
//     │ starting │                                                         │ active │
//     └──────────┘ ──probed: IP held here (peer not holding it)──────────► └────────┘
//        │    │                                                               ▲
//        │    └──acquire plan failed──► ┌───────┐                             │ (issue 4: takeover
//        │                              │ fault │                             │  after peer-lost)
//        │                              └───────┘                             │
//        └──probed: role backup, or the IP answers ARP, or the peer holds it──► ┌─────────┐
//                                                                               │ standby │
//                                                                               └─────────┘
//   `released` and `switching` belong to the planned switchover (issue 3).
//
// Decisions are made on observations only: `probed` carries what the interface and an ARP probe showed,
// `peer-seen` what the peer's authenticated beacon reported about itself.

import type {AgentStateName, Beacon} from './beacon-codec.js';
import {assertNever} from './errors.js';
import type {Role} from './ports.js';

/** Stable kebab-case step ids, the same in plans, journal, logs, CLI and docs. */
export type StepName = 'assign-ip' | 'announce' | 'release-ip';
export type PlanName = 'acquire' | 'release';

export interface PeerView {
  readonly alive: boolean;
  readonly state: AgentStateName;
  readonly holdsIp: boolean;
  readonly epoch: number;
}

export interface MachineState {
  readonly name: AgentStateName;
  readonly role: Role;
  /** Raised each time this host takes the service IP; the higher epoch wins a conflict. Persisted. */
  readonly epoch: number;
  /** Why the machine is in this state, in words for status and the log. */
  readonly reason: string;
  /** undefined until the first valid beacon. */
  readonly peer: PeerView | undefined;
  /** The plan being run, if any. */
  readonly plan: {readonly id: string; readonly name: PlanName} | undefined;
  /** Counter behind plan ids, so ids stay deterministic. */
  readonly plansStarted: number;
}

export type AgentEvent =
  | {readonly type: 'probed'; readonly holdsIp: boolean; readonly addressInUse: boolean}
  | {readonly type: 'peer-seen'; readonly beacon: Beacon}
  | {readonly type: 'peer-lost'}
  | {readonly type: 'plan-finished'; readonly planId: string; readonly ok: boolean; readonly error?: string};

export type Effect =
  | {readonly type: 'save-epoch'; readonly epoch: number}
  | {readonly type: 'run-plan'; readonly planId: string; readonly plan: PlanName; readonly steps: readonly StepName[]}
  | {readonly type: 'send-beacon'};

export interface Transition {
  readonly state: MachineState;
  readonly effects: readonly Effect[];
}

export const PLAN_STEPS: Readonly<Record<PlanName, readonly StepName[]>> = {
  // Announce after the address is in place: clients and switches must learn the new MAC at once.
  acquire: ['assign-ip', 'announce'],
  release: ['release-ip'],
};

export function initialState(role: Role, epoch: number): MachineState {
  return {name: 'starting', role, epoch, reason: 'agent started', peer: undefined, plan: undefined, plansStarted: 0};
}

export function step(state: MachineState, event: AgentEvent): Transition {
  switch (event.type) {
    case 'probed':
      return onProbed(state, event.holdsIp, event.addressInUse);
    case 'peer-seen':
      return stay({...state, peer: viewOf(event.beacon)});
    case 'peer-lost':
      return stay({...state, peer: state.peer === undefined ? undefined : {...state.peer, alive: false}});
    case 'plan-finished':
      return onPlanFinished(state, event.planId, event.ok, event.error);
    default:
      return assertNever(event);
  }
}

function onProbed(state: MachineState, holdsIp: boolean, addressInUse: boolean): Transition {
  if (state.name !== 'starting' || state.plan !== undefined) return stay(state);
  const peer = state.peer?.alive === true ? state.peer : undefined;
  if (holdsIp) {
    if (peer?.holdsIp === true && !winsConflict(state, peer)) {
      return startPlan(state, 'release', `the peer also holds the service IP with epoch ${peer.epoch} (ours ${state.epoch}): releasing it`);
    }
    // Found the IP on our interface (e.g. the agent restarted with on_stop: keep): keep serving, announce again.
    return transition({...state, name: 'active', reason: 'service IP already on this host at start'}, [{type: 'send-beacon'}]);
  }
  if (peer !== undefined && (peer.holdsIp || peer.state === 'active')) {
    return transition({...state, name: 'standby', reason: `the peer is ${peer.state} and holds the service IP`}, [{type: 'send-beacon'}]);
  }
  if (addressInUse) {
    return transition({...state, name: 'standby', reason: 'the service IP answered an ARP probe: another host holds it'}, [{type: 'send-beacon'}]);
  }
  if (state.role === 'backup') {
    return transition({...state, name: 'standby', reason: 'backup at start, ready to take over'}, [{type: 'send-beacon'}]);
  }
  const epoch = Math.max(state.epoch, state.peer?.epoch ?? 0) + 1;
  return startPlan({...state, epoch}, 'acquire', 'primary at start and no one answers for the service IP', [{type: 'save-epoch', epoch}]);
}

function onPlanFinished(state: MachineState, planId: string, ok: boolean, error: string | undefined): Transition {
  if (state.plan?.id !== planId) return stay(state);
  const done = {...state, plan: undefined};
  switch (state.plan.name) {
    case 'acquire':
      return ok
        ? transition({...done, name: 'active', reason: 'took the service IP'}, [{type: 'send-beacon'}])
        : transition({...done, name: 'fault', reason: `could not take the service IP: ${error ?? 'unknown error'}`}, [{type: 'send-beacon'}]);
    case 'release':
      return ok
        ? transition({...done, name: 'standby', reason: 'released the service IP to the peer'}, [{type: 'send-beacon'}])
        : transition({...done, name: 'fault', reason: `could not release the service IP: ${error ?? 'unknown error'}`}, [{type: 'send-beacon'}]);
    default:
      return assertNever(state.plan.name);
  }
}

/** Higher epoch wins; on a tie the primary wins, so both sides reach the same verdict. */
export function winsConflict(state: MachineState, peer: PeerView): boolean {
  if (state.epoch !== peer.epoch) return state.epoch > peer.epoch;
  return state.role === 'primary';
}

function startPlan(state: MachineState, plan: PlanName, reason: string, before: readonly Effect[] = []): Transition {
  const id = `p${state.plansStarted + 1}`;
  return transition(
    {...state, reason, plan: {id, name: plan}, plansStarted: state.plansStarted + 1},
    [...before, {type: 'run-plan', planId: id, plan, steps: PLAN_STEPS[plan]}],
  );
}

function viewOf(beacon: Beacon): PeerView {
  return {alive: true, state: beacon.state, holdsIp: beacon.holdsIp, epoch: beacon.epoch};
}

function stay(state: MachineState): Transition {
  return {state, effects: []};
}

function transition(state: MachineState, effects: readonly Effect[]): Transition {
  return {state, effects};
}
