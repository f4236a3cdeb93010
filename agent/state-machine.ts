// The role state machine: pure step(state, event) → {state, effects}. No I/O, no clock, no randomness.
//
//                  probed: IP free, role primary
//     ┌──────────┐ ──────────────────────────────► (acquire plan) ──ok──► ┌────────┐
//     │ starting │                                                         │ active │
//     └──────────┘ ──probed: IP held here (peer not holding it)──────────► └────────┘
//        │    │                                                               ▲
//        │    └──acquire plan failed──► ┌───────┐                             │ takeover
//        │                              │ fault │ ◄── takeover failed ──┐     │ succeeded
//        │                              └───────┘                       │     │
//        └──probed: role backup, or the IP answers ARP, or the peer holds it──► ┌─────────┐
//                                                                               │ standby │
//                                                                               └─────────┘
//   starting ──probed: released when the agent last stopped──► released
//   starting ──probed: IP held here and by the peer, with a higher epoch there──► (release plan)
//   starting ──probed: IP held here and by the peer, with a lower epoch there──► active (split brain: the peer releases)
//
//   standby ──peer-lost, then peer-still-silent each second──► (takeover plan: probe-address, take-ip, announce)
//   standby ──peer-seen: nobody holds the IP, the peer is released, fault or stopping──► (takeover plan)
//   standby ──peer-seen: nobody holds the IP, both standby, this host the primary──► (takeover plan)
//       (takeover plan) ──ok──► active
//                       └──the IP still answers ARP──► standby ("peer silent but service IP alive")
//                       └──any other failure──► fault
//
//   active ──peer-seen: the peer, active, holds the IP too with a higher epoch──► (release plan)
//   active ──peer-seen: the peer holds the IP too, active with a lower epoch or not active──► active (split brain: the peer releases)
//   active (split brain) ──peer-seen: the peer let the IP go──► active, announces the IP again
//       (release plan) ──ok──► standby
//                      └──failed──► fault
//
//   active ──observed: the IP left this host, the peer holds it──► standby
//   active ──observed: the IP left this host, nobody holds it──► (takeover plan: take it back, same epoch)
//   active ──observed: the IP left this host, its service interface does not run──► (release plan) ──ok──► fault
//   standby/released ──observed: the IP is on this host──► active
//   fault ──observed: the IP is on this host──► (release plan)
//   standby/released/fault ──observed: part of a dual-stack service IP is on this host──► (release plan)
//       (release plan of a released host) ──ok or failed──► released (a failed one is tried again at the next look)
//   fault ──observed: the service interface runs again after it did not, checks pass──► standby
//
//   standby ──health-changed: failing──► fault ──health-changed: ok──► standby
//   active ──health-changed: failing──► active, hands over (a planned switchover to a healthy standby)
//
//   active/standby/released ──switch-begun──► switching ──switch-ended──► active (holds the IP) |
//                                                                         released (gave it in a done switch) |
//                                                                         fault (gave it because its checks fail) |
//                                                                         standby
//   released ──resume-requested──► standby
//   any state ──stop-requested──► stopping
//
// Decisions are made on observations only: `probed` carries what the interface and an ARP probe showed,
// `peer-seen` what the peer's authenticated beacon reported about itself.

import {assertNever} from './errors.js';
import {epochAbove} from './epoch.js';
import type {Beacon} from './peer/beacon-codec.js';
import {LOCAL_PLANS, type LocalPlanName, type LocalStepName} from './plans/plans.js';

/** What a host is configured to be (config `node:`); never to be confused with its state. */
export type Role = 'primary' | 'backup';
/** The states of the diagram above; beacons carry them, so they are wire values too. */
export type AgentStateName = 'starting' | 'active' | 'standby' | 'released' | 'fault' | 'switching' | 'stopping';
export const AGENT_STATE_NAMES: readonly AgentStateName[] = ['starting', 'active', 'standby', 'released', 'fault', 'switching', 'stopping'];
/** This host's health checks, as the last flip left them (see health.ts). */
export type Health = 'ok' | 'failing';
/** The service address with its prefix, e.g. 192.0.2.100/24. */
export interface ServiceIp {
  readonly address: string;
  readonly prefixLength: number;
  readonly family: 4 | 6;
  /** address/prefixLength, as `ip` takes it. */
  readonly cidr: string;
}

export type SwitchOutcome = 'done' | 'rolled-back' | 'interrupted';

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
  readonly plan: {readonly id: string; readonly name: LocalPlanName} | undefined;
  /** Counter behind plan ids, so ids stay deterministic. */
  readonly plansStarted: number;
  /** The planned switch this host takes part in, while `switching`. */
  readonly switch: {readonly id: string; readonly side: 'giver' | 'taker'} | undefined;
  /** Set while this host, active, sees the peer also holding the IP and waits for it to release. */
  readonly splitBrain: boolean;
  /** This host's health checks, as the last flip left them. */
  readonly health: Health;
  /** It was released when the agent last stopped: after the start it stays released, not standby. */
  readonly releasedAtStart: boolean;
  /** In fault, the service interface was seen not running: when it runs again, the fault is over. */
  readonly interfaceDown: boolean;
}

export type AgentEvent =
  | {readonly type: 'probed'; readonly holdsIp: boolean; readonly addressInUse: boolean}
  | {readonly type: 'peer-seen'; readonly beacon: Beacon}
  | {readonly type: 'peer-lost'}
  | {readonly type: 'plan-finished'; readonly planId: string; readonly ok: boolean; readonly error?: string;
      /** The plan stopped because the service IP answered an ARP probe. */
      readonly addressInUse?: boolean}
  | {readonly type: 'switch-begun'; readonly switchId: string; readonly side: 'giver' | 'taker'}
  | {readonly type: 'switch-ended'; readonly switchId: string; readonly outcome: SwitchOutcome; readonly holdsIp: boolean;
      readonly epoch: number; readonly reason: string}
  | {readonly type: 'resume-requested'}
  /** Periodic while the peer is silent (or was never heard): a standby probes again and takes a free IP. */
  | {readonly type: 'peer-still-silent'}
  /** This host's health checks flipped. */
  | {readonly type: 'health-changed'; readonly health: Health; readonly reason: string}
  /** What the periodic look at the interface showed (level-triggered reconciliation), and whether the service
   *  interface runs (up, with a carrier). */
  | {readonly type: 'observed'; readonly holdsIp: boolean; readonly interfaceRunning: boolean;
    /** Some of a dual-stack service's addresses are on this host, not all: it does not hold the service IP
     *  (holdsIp false), and is not free of it either. */
    readonly partlyHeld?: boolean}
  /** The agent is stopping (SIGTERM); `released` says whether it removed the IP (on_stop: release). */
  | {readonly type: 'stop-requested'; readonly released: boolean};

export type Effect =
  | {readonly type: 'save-epoch'; readonly epoch: number}
  | {readonly type: 'run-plan'; readonly planId: string; readonly plan: LocalPlanName; readonly steps: readonly LocalStepName[]}
  | {readonly type: 'send-beacon'}
  /** Gratuitous ARP again, e.g. after winning a conflict, so clients that followed the loser come back. */
  | {readonly type: 'announce-again'}
  /** The active host's checks fail: hand the IP to the standby through the planned switchover, confirmed. */
  | {readonly type: 'hand-over'; readonly reason: string};

export interface Transition {
  readonly state: MachineState;
  readonly effects: readonly Effect[];
}

/** The error text of a takeover that found the IP still answering (the plan's probe-address step). */
export const ADDRESS_STILL_ANSWERS = 'peer silent but service IP alive';

export function initialState(role: Role, epoch: number, released = false): MachineState {
  return {name: 'starting', role, epoch, reason: 'agent started', peer: undefined, plan: undefined, plansStarted: 0, switch: undefined,
    splitBrain: false, health: 'ok', releasedAtStart: released, interfaceDown: false};
}

export function step(state: MachineState, event: AgentEvent): Transition {
  const next = stepOf(state, event);
  // What interfaceDown remembers is about a fault (or the release that leads to one): leaving fault forgets it.
  const keeps = next.state.name === 'fault' || next.state.plan !== undefined || !next.state.interfaceDown;
  return keeps ? next : {...next, state: {...next.state, interfaceDown: false}};
}

function stepOf(state: MachineState, event: AgentEvent): Transition {
  switch (event.type) {
    case 'probed':
      return onProbed(state, event.holdsIp, event.addressInUse);
    case 'peer-seen':
      return onPeerSeen({...state, peer: viewOf(event.beacon)});
    case 'observed':
      return onObserved(state, event.holdsIp, event.interfaceRunning, event.partlyHeld === true);
    case 'health-changed':
      return onHealthChanged({...state, health: event.health}, event.reason);
    case 'stop-requested':
      return transition({...state, name: 'stopping', plan: undefined,
        reason: event.released ? 'agent stopping: released the service IP (on_stop: release)' : 'agent stopping: leaving the service IP as it is (on_stop: keep)'},
      [{type: 'send-beacon'}]);
    case 'peer-lost':
      return onPeerLost({...state, peer: state.peer === undefined ? undefined : {...state.peer, alive: false}});
    case 'plan-finished':
      return onPlanFinished(state, event.planId, event.ok, event.error, event.addressInUse === true);
    case 'switch-begun':
      return transition({...state, name: 'switching', switch: {id: event.switchId, side: event.side},
        reason: `planned switch ${event.switchId}: this host ${event.side === 'giver' ? 'hands the service IP over' : 'takes the service IP over'}`}, [{type: 'send-beacon'}]);
    case 'switch-ended':
      return onSwitchEnded(state, event);
    case 'peer-still-silent':
      return retryTakeover(state);
    case 'resume-requested':
      return state.name === 'released'
        ? transition({...state, name: 'standby', reason: 'resumed by the operator: ready to take over again'}, [{type: 'send-beacon'}])
        : stay(state);
    default:
      return assertNever(event);
  }
}

function onProbed(state: MachineState, holdsIp: boolean, addressInUse: boolean): Transition {
  if (state.name !== 'starting' || state.plan !== undefined) return stay(state);
  const peer = state.peer?.alive === true ? state.peer : undefined;
  if (holdsIp) {
    if (peer?.holdsIp === true) {
      if (!winsConflict(state, peer)) {
        return startPlan(state, 'release', `the peer also holds the service IP with epoch ${peer.epoch} (ours ${state.epoch}): releasing it`);
      }
      // Won at once: the peer may let go before a beacon of it shows it active, so the announcement that brings
      // back the clients that followed it is due from here, as for a split brain seen while active.
      return transition({...state, name: 'active', splitBrain: true,
        reason: `split brain at start: the peer also holds the service IP (epoch ${peer.epoch}, ours ${state.epoch}); it releases it`}, [{type: 'send-beacon'}]);
    }
    // Found the IP on our interface (e.g. the agent restarted with on_stop: keep): keep serving, announce again.
    return transition({...state, name: 'active', reason: 'service IP already on this host at start'}, [{type: 'send-beacon'}]);
  }
  if (state.releasedAtStart) {
    return transition({...state, name: 'released', reason: 'released by a planned switch before this start: hands off until `baton resume`'}, [{type: 'send-beacon'}]);
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
  const epoch = nextEpoch(state);
  return startPlan({...state, epoch}, 'acquire', 'primary at start and no one answers for the service IP', epoch === state.epoch ? [] : [{type: 'save-epoch', epoch}]);
}

/** States in which a live peer that does not hold the IP will not take it either: someone else must. */
const PEER_WONT_SERVE: ReadonlySet<AgentStateName> = new Set(['released', 'fault', 'stopping']);

/**
 * Level-triggered checks on each beacon. Both hosts hold the IP (a healed partition): the lower epoch releases,
 * the winner announces again once the loser let go. Nobody holds it while the peer is alive: a standby takes it
 * when the peer will not (released, fault, stopping), or, both being standby, the primary does.
 */
function onPeerSeen(state: MachineState): Transition {
  const peer = state.peer;
  if (peer === undefined || state.plan !== undefined) return stay(state);
  if (state.name === 'active') {
    // A peer that holds the IP without serving it (starting with it still on its interface, after its agent died)
    // answers ARP beside this host until it lets go: remembered as a split brain, so the IP is announced again then.
    if (peer.holdsIp) {
      if (winsConflict(state, peer) || peer.state !== 'active') {
        if (state.splitBrain) return stay(state);
        return transition({...state, splitBrain: true, reason: `split brain: the peer (${peer.state}) also held the service IP (epoch ${peer.epoch}, ours ${state.epoch}); it releases it`}, [{type: 'send-beacon'}]);
      }
      return startPlan({...state, splitBrain: false}, 'release', `split brain healed: the peer holds the service IP with epoch ${peer.epoch} (ours ${state.epoch}); releasing it`);
    }
    if (state.splitBrain && !peer.holdsIp) {
      return transition({...state, splitBrain: false, reason: 'split brain over: the peer released the service IP; announced it again'}, [{type: 'announce-again'}, {type: 'send-beacon'}]);
    }
    return stay(state);
  }
  if (state.name === 'standby' && !peer.holdsIp && (PEER_WONT_SERVE.has(peer.state) || (peer.state === 'standby' && state.role === 'primary'))) {
    return startTakeover(state, `nobody holds the service IP and the peer is ${peer.state}: taking it`);
  }
  return stay(state);
}

/**
 * Desired against observed. An active host that lost the IP (removed by hand, interface reset) takes it back
 * unless the peer holds it, or its service interface does not run: then it cannot serve, and is in fault until the
 * interface runs again (a cable pulled, a link set down; IPv6 addresses go with the link). A standby or released
 * host that finds the IP on its interface (added by hand, a healed partition) holds it: it becomes active, and the
 * epoch rule above settles who keeps it. Part of a dual-stack service IP (one of its two addresses) on a standby,
 * released or faulted host cannot be served and would answer beside the host that serves: it is released (a
 * released host stays released). (An active host with
 * part of it takes the rest back, or stands by when the peer holds it, and then releases what is left.)
 */
function onObserved(state: MachineState, holdsIp: boolean, interfaceRunning: boolean, partlyHeld = false): Transition {
  if (state.plan !== undefined) return stay(state);
  const peerHolds = state.peer?.alive === true && state.peer.holdsIp;
  if (state.name === 'active' && !holdsIp) {
    if (peerHolds) return transition({...state, name: 'standby', reason: 'the service IP left this host and the peer holds it'}, [{type: 'send-beacon'}]);
    // The address comes off the interface that stopped running: an IPv4 one would still be there when the link
    // returns, answering ARP beside the peer that took over until this host heard of it (measured: ~230 ms of two
    // holders). An IPv6 one is gone with the link already; the release finds nothing to remove.
    if (!interfaceRunning) {
      return startPlan({...state, interfaceDown: true}, 'release',
        'the service interface does not run (down, or no carrier): releasing the service IP before the link returns');
    }
    return startTakeover(state, 'the service IP vanished from this host: taking it back');
  }
  // Before the fault's end below: an IPv4 address stays on a downed link, an IPv6 one goes with it, so a dual-stack
  // host's link that comes back brings half its service IP with it, answering beside the host that took over.
  if (state.name === 'fault' && partlyHeld && interfaceRunning) {
    return startPlan(state, 'release', 'found part of the service IP on this host while fault: releasing it');
  }
  if (state.name === 'fault' && !holdsIp) {
    if (!interfaceRunning && !state.interfaceDown) return transition({...state, interfaceDown: true}, []);
    // Its own checks decide a fault they caused; one that came with the interface ends with it.
    if (interfaceRunning && state.interfaceDown && state.health === 'ok') {
      return transition({...state, name: 'standby', reason: 'the service interface runs again'}, [{type: 'send-beacon'}]);
    }
  }
  if ((state.name === 'standby' || state.name === 'released') && holdsIp) {
    return transition({...state, name: 'active', reason: `found the service IP on this host while ${state.name}`}, [{type: 'send-beacon'}]);
  }
  if (state.name === 'fault' && holdsIp) {
    return startPlan(state, 'release', 'found the service IP on this host while in fault: releasing it');
  }
  if ((state.name === 'standby' || state.name === 'released') && partlyHeld) {
    return startPlan(state, 'release', `found part of the service IP on this host while ${state.name}: releasing it`);
  }
  return stay(state);
}

/** A standby whose peer went silent takes over, after checking that the IP does not answer any more. */
function onPeerLost(state: MachineState): Transition {
  if (state.name !== 'standby' || state.plan !== undefined) return stay(state);
  return startTakeover(state, 'the peer is silent: taking the service IP over');
}

function retryTakeover(state: MachineState): Transition {
  if (state.name !== 'standby' || state.plan !== undefined || state.peer?.alive === true) return stay(state);
  // The reason stays as it was ("peer silent but service IP alive…"): a probe a second is not news.
  return startTakeover(state, state.reason);
}

function startTakeover(state: MachineState, reason: string): Transition {
  // An active host taking its own address back keeps its epoch: nothing changed hands.
  if (state.name === 'active') return startPlan(state, 'takeover', reason);
  const epoch = nextEpoch(state);
  return startPlan({...state, epoch}, 'takeover', reason, epoch === state.epoch ? [] : [{type: 'save-epoch', epoch}]);
}

/**
 * A failing standby goes to fault and never takes the IP; it comes back to standby when its checks pass again.
 * A failing active host hands the IP over through the planned switchover (with confirmation); it keeps serving
 * when the switch cannot happen, because a host with a failing check still serves better than none.
 */
function onHealthChanged(state: MachineState, reason: string): Transition {
  if (state.health === 'failing') {
    // A released host is hands-off anyway; it stays released (its checks show in status).
    if (state.name === 'standby') {
      return transition({...state, name: 'fault', reason: `health checks fail: ${reason}`}, [{type: 'send-beacon'}]);
    }
    if (state.name === 'active') return transition({...state, reason: `health checks fail: ${reason}; handing over`}, [{type: 'send-beacon'}, {type: 'hand-over', reason}]);
    return transition(state, [{type: 'send-beacon'}]);
  }
  if (state.name === 'fault' && state.plan === undefined) {
    return transition({...state, name: 'standby', reason: `health checks pass again: ${reason}`}, [{type: 'send-beacon'}]);
  }
  return transition(state, [{type: 'send-beacon'}]);
}

function onSwitchEnded(state: MachineState, event: Extract<AgentEvent, {type: 'switch-ended'}>): Transition {
  if (state.switch?.id !== event.switchId) return stay(state);
  const side = state.switch.side;
  const base = {...state, switch: undefined, epoch: Math.max(state.epoch, event.epoch)};
  if (event.holdsIp) return transition({...base, name: 'active', reason: event.reason}, [{type: 'send-beacon'}]);
  if (side === 'giver' && event.outcome === 'done' && state.health === 'failing') {
    return transition({...base, name: 'fault', reason: `handed the service IP over because health checks fail (${event.reason})`}, [{type: 'send-beacon'}]);
  }
  if (side === 'giver' && event.outcome === 'done') return transition({...base, name: 'released', reason: event.reason}, [{type: 'send-beacon'}]);
  return transition({...base, name: 'standby', reason: event.reason}, [{type: 'send-beacon'}]);
}

function onPlanFinished(state: MachineState, planId: string, ok: boolean, error: string | undefined, addressInUse: boolean): Transition {
  if (state.plan?.id !== planId) return stay(state);
  const done = {...state, plan: undefined};
  switch (state.plan.name) {
    case 'acquire':
      return ok
        ? transition({...done, name: 'active', reason: 'took the service IP'}, [{type: 'send-beacon'}])
        : transition({...done, name: 'fault', reason: `could not take the service IP: ${error ?? 'unknown error'}`}, [{type: 'send-beacon'}]);
    case 'takeover':
      if (ok) return transition({...done, name: 'active', reason: `holds the service IP (${state.reason})`}, [{type: 'send-beacon'}]);
      // An IP that still answers is the split-brain guard at work: stay ready. Anything else is this host failing.
      return addressInUse
        ? transition({...done, name: 'standby', reason: `${ADDRESS_STILL_ANSWERS}: not taking it`}, [{type: 'send-beacon'}])
        : transition({...done, name: 'fault', reason: `could not take the service IP over: ${error ?? 'unknown error'}`}, [{type: 'send-beacon'}]);
    case 'release':
      // A released host stays released (hands off until `baton resume`) whatever the release of a stray address did;
      // one that failed is tried again at the next look, as the address is still there.
      if (state.name === 'released') {
        return transition({...done, reason: ok ? 'released part of the service IP found on this host; hands off until `baton resume`'
          : `could not release part of the service IP found on this host: ${error ?? 'unknown error'}; trying again`}, [{type: 'send-beacon'}]);
      }
      if (ok && state.interfaceDown) {
        return transition({...done, name: 'fault', reason: 'the service interface does not run (down, or no carrier): released the service IP; stands by when it runs again'}, [{type: 'send-beacon'}]);
      }
      return ok
        ? transition({...done, name: 'standby', reason: 'released the service IP to the peer'}, [{type: 'send-beacon'}])
        : transition({...done, name: 'fault', reason: `could not release the service IP: ${error ?? 'unknown error'}`}, [{type: 'send-beacon'}]);
    default:
      return assertNever(state.plan.name);
  }
}

/**
 * The epoch to take the IP under: above the peer's, so this newest holder wins any conflict. A host already
 * above it keeps its own, so a standby probing every second while the peer's IP still answers does not count up.
 */
function nextEpoch(state: MachineState): number {
  return Math.max(state.epoch, epochAbove(state.peer?.epoch ?? 0));
}

/** Higher epoch wins; on a tie the primary wins, so both sides reach the same verdict. */
export function winsConflict(state: MachineState, peer: PeerView): boolean {
  if (state.epoch !== peer.epoch) return state.epoch > peer.epoch;
  return state.role === 'primary';
}

function startPlan(state: MachineState, plan: LocalPlanName, reason: string, before: readonly Effect[] = []): Transition {
  const id = `p${state.plansStarted + 1}`;
  return transition(
    {...state, reason, plan: {id, name: plan}, plansStarted: state.plansStarted + 1},
    [...before, {type: 'run-plan', planId: id, plan, steps: LOCAL_PLANS[plan]}],
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
