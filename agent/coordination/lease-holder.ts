// The holder of a service key under an etcd lease: when to renew, the monotonic deadline by which it must have given
// the address up, and the drop when that deadline passes. The decisions are pure (stepHold); LeaseHolder runs them
// against a Clock and a CoordinationStore.
//
// Why a deadline of our own: etcd cannot check a fencing token on the network, so a holder cut from etcd must stop
// serving before its lease can expire and another host acquires the key. The lease expires on etcd's leader no sooner
// than TTL after the leader *received* our last successful renewal, which is after we *sent* it; so
//   deadline = send time of the last successful renewal + TTL − margin      (boot clock, see below)
// is always before the expiry, whatever the network delay, a client library or the wall clock say. A leader change
// only extends leases (the new leader restarts every TTL), never shortens them.
//
// "Monotonic" here is boot time (Clock.bootNow, CLOCK_BOOTTIME): never stepped, and it goes on while the machine is
// suspended, as the lease does on etcd's members. CLOCK_MONOTONIC (performance.now, and every Node timer) stops during
// a suspend: a VM or laptop resumed after one longer than its margin would believe it still holds while another host
// may have the key and the address already. So every time in a HoldState is boot time, and the holder never sleeps
// longer than RESUME_CHECK_MS at a time (its timers stop during a suspend too): on resume it looks at boot time within
// that, and drops first if the deadline passed. holds(), the check before every act that presumes the hold, looks at
// boot time as well, so nothing acts on a hold that a suspend ended.
//
// With `on_etcd_loss: keep-while-peers-agree` a holder past that deadline keeps the address only while the other
// hosts' beacons agree (host-beacons.ts gives the time until which they do, `keepUntilMs`; the timing rule is there),
// and keeps trying to renew meanwhile. When etcd answers again: a renewal that succeeds makes it a plain holder again
// (the lease, and so the key, lived on); a lease that is gone is replaced by taking the key again, create-if-absent,
// under a new lease (a new epoch), or the address goes at once when another host has the key.

import {assertNever, describeError} from '../errors.js';
import type {Clock, CoordinationStore} from '../ports.js';

/** How long each call to etcd (a read, a write, a grant, an acquire, a transaction) gets in etcd mode: an answer later
 *  than that is from a member that is cut off. One value for the claim, the presence, the switch and the agent. */
export const CALL_TIMEOUT_MS = 1000;

export interface LeaseTiming {
  readonly ttlMs: number;
  readonly marginMs: number;
  /** How often a renewal goes out while the last ones succeed. */
  readonly renewEveryMs: number;
  /** The deadline of one renewal call: an answer later than this is given up on, and the renewal tried again. */
  readonly renewTimeoutMs: number;
  /** How soon a failed renewal is tried again. */
  readonly retryAfterMs: number;
}

// Renew every TTL/3: two renewals in a row may fail (a leader election, a lost packet) and the third still comes
// before a deadline of TTL − margin, since the margin is at most TTL/2 (config/coordination.ts).
const RENEWALS_PER_TTL = 3;
// A renewal call gets half the renewal interval (TTL/6, 1.7 s for 10 s): an answer that late means a member that is cut
// off or has no leader, and another member may do better; etcd renews a lease without a raft round, so a healthy
// cluster answers in milliseconds.
const RENEW_TIMEOUT_FRACTION = 2;
// A failed renewal is retried after a sixth of the renewal interval (TTL/18): soon enough that a leader election of a
// few hundred ms costs a retry or two, not the hold, and no flood against a cluster that is down.
const RETRIES_PER_RENEWAL = 6;
// The longest the holder sleeps without looking at boot time: after a resume it sees a passed deadline within this
// (monotonic) time, unless an act's holds() sees it first. 100 ms, the smallest renew_margin_ms: a resumed holder
// whose lease expired while it slept drops within 100 ms of waking (the kernel answers for the address from the
// instant it resumes: no process can act before that). Ten reads of boot time a second cost about 0.01 % of a core
// (system-clock.ts).
export const RESUME_CHECK_MS = 100;

export function leaseTiming(ttlS: number, marginMs: number): LeaseTiming {
  const ttlMs = ttlS * 1000;
  const renewEveryMs = Math.floor(ttlMs / RENEWALS_PER_TTL);
  return {ttlMs, marginMs, renewEveryMs, renewTimeoutMs: Math.floor(renewEveryMs / RENEW_TIMEOUT_FRACTION),
    retryAfterMs: Math.floor(renewEveryMs / RETRIES_PER_RENEWAL)};
}

export type DropReason =
  /** No renewal succeeded in time: the lease may expire soon, and another host take the key. */
  | 'deadline-passed'
  /** etcd says the lease is gone (expired or revoked): another host may hold the key already. */
  | 'lease-gone'
  /** The holder was asked to give the key up. */
  | 'released'
  /** Kept past the deadline (keep-while-peers-agree) until the other hosts' beacons no longer agreed. */
  | 'peers-disagree'
  /** Kept past the deadline, and when etcd answered again another host held the key. */
  | 'key-taken';

export type HoldState =
  | {
    readonly phase: 'holding';
    readonly lease: string;
    /** The key's mod revision when we wrote it. */
    readonly epoch: number;
    /** Boot-time ms (Clock.bootNow) by which the address must be gone unless a renewal succeeds. */
    readonly deadlineMs: number;
    readonly nextRenewAtMs: number;
    /** The send time of the renewal in flight, if one is. */
    readonly renewingSince: number | undefined;
    /** Past the deadline, kept by the other hosts' agreement until then (monotonic ms); undefined: not keeping. */
    readonly keepingUntilMs?: number | undefined;
    /** Keeping, the lease gone: the key is being taken again under a new lease. */
    readonly reacquiring?: boolean;
  }
  | {readonly phase: 'dropped'; readonly lease: string; readonly epoch: number; readonly reason: DropReason; readonly deadlineMs: number; readonly atMs: number};

export type HoldEvent =
  /** Time passed: a timer fired, or someone asks whether we still hold. */
  | {readonly type: 'tick'; readonly nowMs: number}
  /** A renewal sent at `sentAtMs` was answered: the lease now has `ttlS` (0: gone). */
  | {readonly type: 'renew-answered'; readonly nowMs: number; readonly sentAtMs: number; readonly ttlS: number}
  | {readonly type: 'renew-failed'; readonly nowMs: number; readonly sentAtMs: number; readonly error: string}
  | {readonly type: 'release-requested'; readonly nowMs: number}
  /** Keeping: the key was written again under a new lease, granted by a request sent at `grantSentAtMs`. */
  | {readonly type: 'reacquired'; readonly nowMs: number; readonly lease: string; readonly epoch: number; readonly grantSentAtMs: number; readonly ttlS: number}
  /** Keeping: another host holds the key. */
  | {readonly type: 'key-taken'; readonly nowMs: number; readonly holder: string}
  /** Keeping: taking the key again did not get an answer. */
  | {readonly type: 'reacquire-failed'; readonly nowMs: number; readonly error: string};

export type HoldEffect =
  /** Remove the service address now (before anything else). */
  | {readonly type: 'drop-address'; readonly reason: DropReason; readonly lateMs: number}
  /** Send one renewal now; its send time is the `sentAtMs` recorded here. */
  | {readonly type: 'renew-lease'; readonly sentAtMs: number}
  /** Keeping, the lease gone: take the key again (create-if-absent) under a new lease. */
  | {readonly type: 'reacquire-key'}
  /** After the drop: revoke the lease so that another host need not wait for it to expire. */
  | {readonly type: 'revoke-lease'}
  /** Be called again (a tick) at this boot time at the latest. */
  | {readonly type: 'wake-at'; readonly atMs: number};

/** The hold right after the key was acquired under a lease granted by a request sent at `grantSentAtMs` (boot time). */
export function startHold(lease: string, epoch: number, grantSentAtMs: number, grantedTtlS: number, timing: LeaseTiming): Extract<HoldState, {phase: 'holding'}> {
  return {phase: 'holding', lease, epoch, deadlineMs: deadlineAfter(grantSentAtMs, grantedTtlS, timing),
    nextRenewAtMs: grantSentAtMs + timing.renewEveryMs, renewingSince: undefined};
}

/** Whether the address may be served at `nowMs`: held, and the deadline (or the other hosts' agreement) not reached. */
export function mayServe(state: HoldState, nowMs: number): boolean {
  return state.phase === 'holding' && nowMs < limitOf(state);
}

/** Until when the hold lasts without news: the lease's deadline, or while keeping the other hosts' agreement. */
function limitOf(state: Extract<HoldState, {phase: 'holding'}>): number {
  return state.keepingUntilMs ?? state.deadlineMs;
}

/**
 * One decision. Whatever the event, a deadline that has passed is seen first and drops the address before anything
 * else happens (a process that was frozen, or starved, wakes up past it). A dropped hold stays dropped: a renewal
 * answered after the deadline does not revive it, as the key may already be another host's.
 *
 * `keepUntilMs` (keep-while-peers-agree only): until when, as of now, the other hosts' beacons let this host keep the
 * address past the deadline; undefined when they do not (or with `drop`). Asked afresh at every event, so that the
 * hold lasts past the deadline only while it is in the future.
 */
export function stepHold(state: HoldState, event: HoldEvent, timing: LeaseTiming, keepUntilMs?: number): {state: HoldState; effects: HoldEffect[]} {
  if (state.phase === 'dropped') return {state, effects: []};
  const now = event.nowMs;
  if (now >= state.deadlineMs) {
    // A renewal answered (or the key taken again) now may bring a deadline in the future: that is seen first.
    const renewed = event.type === 'renew-answered' && event.ttlS > 0 && state.keepingUntilMs !== undefined
      && deadlineAfter(event.sentAtMs, event.ttlS, timing) > now;
    if (!renewed && event.type !== 'reacquired') {
      if (keepUntilMs === undefined || now >= keepUntilMs) {
        return drop(state, state.keepingUntilMs === undefined ? 'deadline-passed' : 'peers-disagree', now);
      }
      state = {...state, keepingUntilMs: keepUntilMs};
    }
  } else if (state.keepingUntilMs !== undefined) {
    state = {...state, keepingUntilMs: undefined};
  }
  switch (event.type) {
    case 'tick':
      return renewIfDue(state, now, timing);
    case 'renew-answered': {
      if (event.ttlS <= 0) {
        // Keeping: etcd answers again and the lease (with the key) is gone; the key is taken again if nobody has it.
        if (state.keepingUntilMs !== undefined) return reacquire({...state, renewingSince: undefined}, now, timing);
        return drop(state, 'lease-gone', now);
      }
      const deadlineMs = Math.max(state.deadlineMs, deadlineAfter(event.sentAtMs, event.ttlS, timing));
      // A renewal that brings the deadline back into the future ends keeping: the lease, and the key, lived on.
      const renewed = {...state, deadlineMs, renewingSince: undefined, nextRenewAtMs: event.sentAtMs + timing.renewEveryMs,
        keepingUntilMs: now < deadlineMs ? undefined : state.keepingUntilMs};
      // A reply that took longer than TTL − margin brings a deadline that is already past (kept: it goes on).
      if (now >= deadlineMs) return renewed.keepingUntilMs === undefined ? drop(renewed, 'deadline-passed', now) : renewIfDue(renewed, now, timing);
      return renewIfDue(renewed, now, timing);
    }
    case 'renew-failed':
      return renewIfDue({...state, renewingSince: undefined, nextRenewAtMs: now + timing.retryAfterMs}, now, timing);
    case 'release-requested':
      return drop(state, 'released', now);
    case 'reacquired': {
      if (state.reacquiring !== true) return {state, effects: [{type: 'wake-at', atMs: limitOf(state)}]};
      const held = {...startHold(event.lease, event.epoch, event.grantSentAtMs, event.ttlS, timing), keepingUntilMs: undefined, reacquiring: false};
      if (now >= held.deadlineMs) return drop(held, 'deadline-passed', now);
      return renewIfDue(held, now, timing);
    }
    case 'key-taken':
      return drop(state, 'key-taken', now);
    case 'reacquire-failed':
      return renewIfDue({...state, reacquiring: false, nextRenewAtMs: now + timing.retryAfterMs}, now, timing);
    default:
      return assertNever(event);
  }
}

/** Keeping, the lease gone: one attempt at the key at a time, in place of renewals. */
function reacquire(state: Extract<HoldState, {phase: 'holding'}>, now: number, timing: LeaseTiming): {state: HoldState; effects: HoldEffect[]} {
  if (state.reacquiring === true) return {state, effects: [{type: 'wake-at', atMs: limitOf(state)}]};
  const next = {...state, reacquiring: true, nextRenewAtMs: now + timing.renewEveryMs};
  return {state: next, effects: [{type: 'reacquire-key'}, {type: 'wake-at', atMs: limitOf(next)}]};
}

function renewIfDue(state: Extract<HoldState, {phase: 'holding'}>, now: number, timing: LeaseTiming): {state: HoldState; effects: HoldEffect[]} {
  // One renewal at a time: while one is in flight (its call has a deadline of its own), the next waits for its
  // outcome, which wakes the holder; until then only the deadline (or the agreement, keeping) does. Keeping, while
  // the key is being taken again, no renewal goes out.
  if (state.renewingSince !== undefined || state.reacquiring === true) return {state, effects: [{type: 'wake-at', atMs: limitOf(state)}]};
  if (now < state.nextRenewAtMs) return {state, effects: [{type: 'wake-at', atMs: Math.min(state.nextRenewAtMs, limitOf(state))}]};
  // Keeping, renewals go out at the retry pace: etcd coming back is worth noticing soon.
  const next = {...state, renewingSince: now, nextRenewAtMs: now + (state.keepingUntilMs === undefined ? timing.renewEveryMs : timing.retryAfterMs)};
  return {state: next, effects: [{type: 'renew-lease', sentAtMs: now}, {type: 'wake-at', atMs: limitOf(next)}]};
}

function drop(state: Extract<HoldState, {phase: 'holding'}>, reason: DropReason, now: number): {state: HoldState; effects: HoldEffect[]} {
  return {
    state: {phase: 'dropped', lease: state.lease, epoch: state.epoch, reason, deadlineMs: state.deadlineMs, atMs: now},
    effects: [{type: 'drop-address', reason, lateMs: Math.max(0, now - state.deadlineMs)}, {type: 'revoke-lease'}],
  };
}

function deadlineAfter(sentAtMs: number, ttlS: number, timing: LeaseTiming): number {
  // etcd may grant more than asked (its minimum TTL); never count on more than the configured TTL.
  return sentAtMs + Math.min(ttlS * 1000, timing.ttlMs) - timing.marginMs;
}

export interface LeaseHolderDeps {
  readonly clock: Clock;
  readonly store: CoordinationStore;
  readonly timing: LeaseTiming;
  /** Removes the service address. Called once, as the first thing done once the hold is lost. */
  dropAddress(reason: DropReason, lateMs: number): Promise<void>;
  /** One line per renewal outcome and the drop, subject first. */
  readonly log?: (line: string) => void;
  /** keep-while-peers-agree only: the other hosts' agreement, and taking the key again when etcd answers. */
  readonly keep?: HoldKeeping;
}

export interface HoldKeeping {
  /** Until when (boot-time ms, as every time here) the other hosts' beacons let this host keep the address past its
   *  deadline, as of `nowMs`; undefined when they do not. */
  untilMs(nowMs: number): number | undefined;
  /** Grants a lease and writes the key create-if-absent under it. Throws when etcd does not answer. */
  reacquire(): Promise<{readonly acquired: true; readonly lease: string; readonly epoch: number; readonly grantSentAtMs: number; readonly ttlS: number}
    | {readonly acquired: false; readonly holder: string}>;
  /** Told when keeping begins and ends, and when the key was taken again (its new lease and epoch). Must not throw. */
  onChange?(change: {readonly type: 'keeping'; readonly untilMs: number} | {readonly type: 'renewed'} | {readonly type: 'reacquired'; readonly lease: string; readonly epoch: number}): void;
}

/** What ended a hold: why, when (boot-time ms) and the deadline it had then. */
export interface HoldEnd {
  readonly reason: DropReason;
  readonly atMs: number;
  readonly deadlineMs: number;
}

/**
 * Runs stepHold against the clock and the store: renews on time, and drops the address at the deadline. run()
 * resolves once the address was dropped (and the lease revoked, best effort). holds() is the check to make before
 * every act that presumes the hold (announcing, serving, handing over): past the deadline it drops first.
 */
export class LeaseHolder {
  readonly #deps: LeaseHolderDeps;
  #state: HoldState;
  #wakeAtMs = 0;
  #wake: AbortController | undefined;
  #dropped: Promise<void> | undefined;

  constructor(deps: LeaseHolderDeps, start: {readonly lease: string; readonly epoch: number; readonly grantSentAtMs: number; readonly grantedTtlS: number}) {
    this.#deps = deps;
    this.#state = startHold(start.lease, start.epoch, start.grantSentAtMs, start.grantedTtlS, deps.timing);
  }

  get state(): HoldState {
    return this.#state;
  }

  /** Renews until the hold is lost or released; resolves with how it ended, once the address is dropped. */
  async run(): Promise<HoldEnd> {
    const {clock} = this.#deps;
    this.#dispatch({type: 'tick', nowMs: clock.bootNow()});
    while (this.#state.phase === 'holding') {
      const wake = new AbortController();
      this.#wake = wake;
      try {
        // In slices: a timer does not count suspended time, boot time does.
        await clock.sleep(Math.min(RESUME_CHECK_MS, Math.max(0, this.#wakeAtMs - clock.bootNow())), wake.signal);
      } catch {
        // Woken early: an answer came, or the hold ended.
      }
      this.#dispatch({type: 'tick', nowMs: clock.bootNow()});
    }
    await this.#dropped;
    const end = this.#state;
    return {reason: end.reason, atMs: end.atMs, deadlineMs: end.deadlineMs};
  }

  /** Whether the address may be served now. Past the deadline this starts the drop before it returns false. */
  holds(): boolean {
    const now = this.#deps.clock.bootNow();
    this.#dispatch({type: 'tick', nowMs: now});
    return mayServe(this.#state, now);
  }

  /** Gives the key up: drops the address and revokes the lease. */
  async release(): Promise<void> {
    this.#dispatch({type: 'release-requested', nowMs: this.#deps.clock.bootNow()});
    await this.#dropped;
  }

  /** Whether the hold is past its deadline, kept by the other hosts' agreement. */
  get keeping(): boolean {
    return this.#state.phase === 'holding' && this.#state.keepingUntilMs !== undefined;
  }

  #dispatch(event: HoldEvent): void {
    const previous = this.#state;
    const keep = this.#deps.keep;
    const {state, effects} = stepHold(previous, event, this.#deps.timing, keep?.untilMs(event.nowMs));
    this.#state = state;
    if (keep?.onChange !== undefined && previous.phase === 'holding' && state.phase === 'holding') {
      if (previous.keepingUntilMs === undefined && state.keepingUntilMs !== undefined) {
        this.#deps.log?.(`(lease ${state.lease}) past its deadline: keeping the address while the other hosts agree`);
        keep.onChange({type: 'keeping', untilMs: state.keepingUntilMs});
      }
      if (state.lease !== previous.lease) keep.onChange({type: 'reacquired', lease: state.lease, epoch: state.epoch});
      else if (previous.keepingUntilMs !== undefined && state.keepingUntilMs === undefined) keep.onChange({type: 'renewed'});
    }
    for (const effect of effects) {
      switch (effect.type) {
        case 'wake-at':
          this.#wakeAtMs = effect.atMs;
          break;
        case 'renew-lease':
          void this.#renew(effect.sentAtMs);
          break;
        case 'drop-address':
          // Started synchronously: dropAddress runs up to its first await before anything else is done.
          this.#dropped = this.#drop(effect.reason, effect.lateMs);
          this.#wake?.abort();
          break;
        case 'revoke-lease':
          // Done by #drop, after the address is gone.
          break;
        case 'reacquire-key':
          void this.#reacquire();
          break;
        default:
          assertNever(effect);
      }
    }
  }

  async #renew(sentAtMs: number): Promise<void> {
    const {clock, store, timing, log} = this.#deps;
    const lease = this.#state.lease;
    let event: HoldEvent;
    try {
      const ttlS = await store.renewLease(lease, {timeoutMs: timing.renewTimeoutMs});
      event = {type: 'renew-answered', nowMs: clock.bootNow(), sentAtMs, ttlS};
    } catch (error) {
      event = {type: 'renew-failed', nowMs: clock.bootNow(), sentAtMs, error: describeError(error)};
      log?.(`(lease ${lease}) renewal sent ${Math.round(event.nowMs - sentAtMs)} ms ago failed: ${event.error}`);
    }
    this.#dispatch(event);
    this.#wake?.abort();
  }

  async #reacquire(): Promise<void> {
    const {clock, log, keep} = this.#deps;
    if (keep === undefined) return;
    let event: HoldEvent;
    try {
      const result = await keep.reacquire();
      event = result.acquired ? {type: 'reacquired', nowMs: clock.now(), lease: result.lease, epoch: result.epoch, grantSentAtMs: result.grantSentAtMs, ttlS: result.ttlS}
        : {type: 'key-taken', nowMs: clock.now(), holder: result.holder};
      log?.(result.acquired ? `(lease ${result.lease}) the key was gone with the old lease: written again at epoch ${result.epoch}`
        : `(lease ${this.#state.lease}) the key was gone with the lease and ${result.holder} holds it now`);
    } catch (error) {
      event = {type: 'reacquire-failed', nowMs: clock.now(), error: describeError(error)};
      log?.(`(lease ${this.#state.lease}) taking the key again failed: ${event.error}`);
    }
    this.#dispatch(event);
    this.#wake?.abort();
  }

  async #drop(reason: DropReason, lateMs: number): Promise<void> {
    const {store, log, timing} = this.#deps;
    const lease = this.#state.lease;
    log?.(`(lease ${lease}) dropping the address: ${reason}${lateMs > 0 ? `, ${Math.round(lateMs)} ms past the deadline (the process was stalled)` : ''}`);
    await this.#deps.dropAddress(reason, lateMs);
    try {
      await store.revokeLease(lease, {timeoutMs: timing.renewEveryMs});
    } catch (error) {
      // Expected when etcd is out of reach (the usual cause of the drop): the lease then expires by itself.
      log?.(`(lease ${lease}) revoke after the drop failed, it expires by itself: ${describeError(error)}`);
    }
  }
}
