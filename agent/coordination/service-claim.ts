// One host's claim on one service in etcd mode (issue 17): the host that holds the service's key under a lease holds
// its address. A host that sees the key absent campaigns for it (a create-if-absent transaction), probes the address
// as a pair's takeover does, takes it and holds it while its lease holder renews; the holder drops the address by its
// own monotonic deadline (lease-holder.ts), and the host stands by again.
//
// Safety rests on two things and nothing else: etcd lets one host create the key at a time, and a holder drops the
// address before its lease can expire (so before another host can create the key). The duplicate-address probe before
// taking the address catches what both miss: an address left on a host that lost its key without dropping it
// (a frozen agent past its deadline is caught by the lease holder as soon as it runs again, before it acts).
//
// Address changes go through one queue: a drop that comes while the address is being taken runs after the take, so
// the address can never be added after it was dropped.
//
// A host learns that the key went from a watch on baton's prefix (prefix-watch.ts), which wakes it to look again, and
// from a slower poll when the watch is silent or broken; either way it decides on a linearizable read of the key, so a
// host that cannot read the key never campaigns. The order of the campaigns comes from the hosts' presence keys
// (presence.ts): a host waits one stagger for each live, healthy host ranked before it. That is only order: two hosts
// that both think themselves first (a presence key not written yet) both campaign, and the key's create-if-absent
// transaction gives it to one of them.
//
// With `on_etcd_loss: keep-while-peers-agree` (`peers` given), the hosts' beacons (host-beacons.ts, where the timing
// rule is argued) add two things: a holder past its lease's deadline keeps the address while the other hosts agree,
// and a host standing by does not campaign, even with the key gone, until a host whose beacons say it holds the
// service has been silent for 2·D + M.

import {BatonError, describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock, CoordinationStore, Lease, StoredKey} from '../ports.js';
import {executeStep, executeUndo, type StepRun} from '../plans/executor.js';
import {presencePrefix} from '../config/coordination.js';
import {CALL_TIMEOUT_MS, LeaseHolder, type DropReason, type HoldEnd, type HoldKeeping, type LeaseTiming} from './lease-holder.js';
import {parsePresence, type Presence} from './presence.js';
import {PrefixWatch} from './prefix-watch.js';

/** What the claim does to the host's address. */
export interface ClaimActions {
  /** Probes the address and takes it (added, announced). Throws ADDRESS_IN_USE when another host answers for it,
   *  having added nothing; any other failure leaves for drop() to take back what was added. */
  take(): Promise<void>;
  /** Removes the address; idempotent (nothing there is fine). */
  drop(): Promise<void>;
}

export interface ClaimDeps {
  readonly clock: Clock;
  readonly store: CoordinationStore;
  readonly timing: LeaseTiming;
  /** The TTL asked of etcd for each lease. */
  readonly leaseTtlS: number;
  /** baton's prefix in etcd (coordination.prefix): watched for changes; the hosts' presence keys are under it. */
  readonly prefix: string;
  /** The service's key, e.g. /baton/services/web/holder. */
  readonly key: string;
  /** This host's name: the key's value while it holds the service. */
  readonly self: string;
  /** Every host that may hold the service, in preference order, this one among them. A host waits one
   *  CAMPAIGN_STAGGER_MS after it saw the key absent for each live, healthy host ranked before it (liveRank), so
   *  that the preferred healthy host normally wins. */
  readonly hosts: readonly string[];

  /** Whether this host may serve (its health checks pass). An unhealthy host never campaigns. */
  healthy(): boolean;
  /** The key that drains this host (`baton drain`), read at every look with the service's key: a drained host never
   *  campaigns, however recently its agent last read the flag. Told to `onDrained` when read. */
  readonly drainedKey?: string;
  readonly onDrained?: (drained: boolean) => void;
  readonly actions: ClaimActions;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Told each change of phase (not a change of holder while standing by). Must not throw. */
  readonly onPhase?: (state: ClaimState, previous: ClaimState) => void;
  /** keep-while-peers-agree only: what the other hosts' beacons allow (host-beacons.ts). */
  readonly peers?: ClaimPeers;
}

/** What the hosts' beacons allow this host, for one service (BeaconBoard, bound to the service's name). Times are boot
 *  time (Clock.bootNow), as the lease holder's: a suspend counts as time passed. */
export interface ClaimPeers {
  /** Until when (monotonic ms) this host may keep the service past its lease's deadline; undefined: it may not. */
  keepUntilMs(nowMs: number): number | undefined;
  /** The monotonic ms before which this host must not campaign. */
  campaignNotBeforeMs(): number;
}

// How often a standing-by host reads the key while its watch is broken: a dead holder's key goes at its lease's expiry,
// and this adds at most one period to the failover. A linearizable read is one round trip to the leader: a few hosts
// reading four times a second is nothing to etcd.
export const CLAIM_POLL_MS = 250;
// How often it reads the key while its watch is open: the watch wakes it as soon as the key goes, so this poll is
// only for a watch that is silent without breaking (through a member this host no longer reaches).
export const WATCHED_POLL_MS = 1000;
// A host with k live, healthy hosts ranked before it campaigns k × 400 ms after it saw the key gone. A host learns of
// the deletion from its watch within milliseconds, or up to one CLAIM_POLL_MS late when its watch is broken, so a
// stagger longer than that keeps the order: the first has campaigned before the next starts. It is also long enough
// for the first host's grant and acquire (two round trips, a few ms on a LAN). A host whose watch is silent and which
// polls every WATCHED_POLL_MS may campaign out of order: that costs order, never safety.
export const CAMPAIGN_STAGGER_MS = 400;
// After a hold ended, or a campaign failed (the address answered elsewhere, a step failed), a host waits this long
// before it campaigns again, so a host that cannot serve does not take the key over and over.
export const CLAIM_BACKOFF_MS = 2000;
// For this long after its claim starts, a host still waits for the hosts ranked before it whose presence is not there
// yet: hosts started together (a cold start, the lab) write their presence within a second of one another, and a host
// that counted only what it saw at its first look would take services meant for the others first (several services
// on one set of hosts go by their own orders). Order only, never safety: the key is created once.
export const START_GRACE_MS = 2000;

// ClaimPhase (control-protocol.ts) names these phases for `baton status`; a test keeps the two equal.
/** A lease of the taker of a planned switch, renewed before the key is handed to it. */
export interface PreparedHold {
  readonly lease: string;
  readonly holder: LeaseHolder;
  /** When the hold ends (dropped, released or lost). */
  readonly ended: Promise<HoldEnd>;
}

export type ClaimState =
  | {readonly phase: 'starting'}
  /** The key is another host's (`holder`), absent (undefined), or unknown (etcd out of reach: `error`). */
  | {readonly phase: 'standing-by'; readonly holder: string | undefined; readonly epoch: number | undefined; readonly error?: string}
  | {readonly phase: 'campaigning'}
  | {readonly phase: 'holding'; readonly epoch: number; readonly lease: string}
  | {readonly phase: 'stopped'};

/** What a host saw at its last successful look: the holder and the other hosts' presence (undefined: unread). */
export interface ClaimLook {
  /** Monotonic ms. */
  readonly atMs: number;
  readonly holder: string | undefined;
  readonly presence: ReadonlyMap<string, Presence> | undefined;
}

/**
 * How many hosts this one waits for before it campaigns: the live, healthy hosts ranked before it (their presence key
 * is there and says ok), leaving out `passedOver` (the host whose key just went: it does not campaign again before
 * CLAIM_BACKOFF_MS). With no presence known, every host ranked before it, as configured; with `absentCount` (just
 * started), those absent from the presence keys too.
 */
export function liveRank(hosts: readonly string[], self: string, presence: ReadonlyMap<string, Presence> | undefined,
  passedOver: string | undefined, absentCount = false): number {
  const before = hosts.slice(0, Math.max(0, hosts.indexOf(self)));
  if (presence === undefined) return before.length;
  return before.filter((host) => host !== passedOver && (presence.get(host)?.health === 'ok' || (absentCount && !presence.has(host)))).length;
}

export class ServiceClaim {
  readonly #deps: ClaimDeps;
  #state: ClaimState = {phase: 'starting'};
  #look: ClaimLook | undefined;
  /** The host the key last named, as this host saw it. */
  #lastHolder: string | undefined;
  /** Something under the prefix changed since the last look (or health did): look again without waiting. */
  #changed = false;
  #wake: AbortController | undefined;
  #watch: PrefixWatch | undefined;
  #holder: LeaseHolder | undefined;
  /** The address queue: every take and drop runs after the one before it. */
  #addressOps: Promise<void> = Promise.resolve();
  /** When the claim's loop started: the hosts ranked before this one count even when absent for START_GRACE_MS. */
  #startedAtMs = 0;
  /** When this host last saw the key absent, for the stagger; undefined while it is present. */
  #absentSinceMs: number | undefined;
  /** The last campaign's failure, while campaigns keep failing the same way. */
  #lastFailure: string | undefined;
  /** Monotonic ms before which this host does not campaign again (CLAIM_BACKOFF_MS after a hold or a campaign ended). */
  #campaignNotBefore = 0;
  /** A planned switch this host takes part in (etcd-switch.ts): no campaign, no stale-key revocation meanwhile. */
  #switching: string | undefined;
  /** A hold handed over to this host by a planned switch, running until it ends. */
  #adopted: Promise<unknown> | undefined;
  /** The wait for the hosts' beacons before a campaign was logged (once per absence of the key). */
  #waitedForBeacons = false;

  constructor(deps: ClaimDeps) {
    this.#deps = deps;
  }

  get state(): ClaimState {
    return this.#state;
  }

  /** Whether this host holds the service now: the key is its own and its deadline has not passed. */
  holds(): boolean {
    return this.#state.phase === 'holding' && this.#holder?.holds() === true;
  }

  /** What this host saw at its last successful look at the keys. */
  get look(): ClaimLook | undefined {
    return this.#look;
  }

  /** Whether the watch on the prefix is open (changes come at once) rather than broken (the poll finds them). */
  get watching(): boolean {
    return this.#watch?.open === true;
  }

  /** Something that matters to a standing-by host changed (health): it looks again now rather than at its next poll. */
  nudge(): void {
    this.#changed = true;
    this.#wake?.abort();
  }

  /** Monotonic ms (Clock.now) by which the address goes unless a renewal succeeds (or, keeping, the other hosts agree
   *  again), while this host holds the service. The holder keeps it in boot time (lease-holder.ts); this is the same
   *  instant on now()'s scale, for status. */
  holdDeadlineMs(): number | undefined {
    const hold = this.#holder?.state;
    const {clock} = this.#deps;
    return hold?.phase === 'holding' ? (hold.keepingUntilMs ?? hold.deadlineMs) - clock.bootNow() + clock.now() : undefined;
  }

  /** Whether this host holds the service past its lease's deadline, by the other hosts' agreement. */
  get keeping(): boolean {
    return this.#holder?.keeping === true;
  }

  /**
   * What this host's beacons say of the service: held from the campaign on (the address may be here), in a planned
   * switch, and while holding or keeping; not held only standing by.
   */
  beaconWord(): {readonly held: boolean; readonly epoch: number; readonly keeping: boolean} {
    const state = this.#state;
    const held = state.phase === 'campaigning' || state.phase === 'holding' || this.#switching !== undefined || this.#holder !== undefined;
    return {held, epoch: state.phase === 'holding' ? state.epoch : 0, keeping: this.keeping};
  }

  /** A beacon arrived: a holder that keeps looks again at whether the other hosts still agree. */
  peersChanged(): void {
    if (this.keeping) this.#holder?.holds();
  }

  /** Campaigns and holds until the signal aborts; then releases the key (the address dropped first). */
  async run(): Promise<void> {
    const {signal, actions, log} = this.#deps;
    // Stopping gives the service up at once (the address, then the lease), rather than leaving it to expire.
    signal.addEventListener('abort', () => void this.release(), {once: true});
    // Whatever a previous agent left: no address is served without a key this process holds.
    await this.#queue(() => actions.drop()).catch((error: unknown) => log.error(`(claim) removing the address at start failed: ${describeError(error)}`));
    const watch = new PrefixWatch({clock: this.#deps.clock, store: this.#deps.store, prefix: this.#deps.prefix, log, signal,
      onChange: () => this.nudge()});
    this.#watch = watch;
    const watching = watch.run();
    this.#startedAtMs = this.#deps.clock.now();
    while (!signal.aborted) {
      if (this.#adopted !== undefined) {
        await this.#whileHolding(this.#adopted);
        this.#adopted = undefined;
        continue;
      }
      if (this.#switching !== undefined) {
        // The switch decides; the key names the giver until the handover, and this host until it ends.
        await this.#sleep(CLAIM_POLL_MS);
        continue;
      }
      this.#changed = false;
      const look = await this.#lookAtKeys();
      // A switch began, or handed this host the key, while the read was in flight: what it read is not news.
      if (this.#adopted !== undefined || this.#switching !== undefined) continue;
      if (look === 'unknown') {
        await this.#wait(this.#pollMs());
        continue;
      }
      const {key, presence} = look;
      if (key !== undefined) {
        this.#absentSinceMs = undefined;
        this.#lastHolder = key.value;
        this.#setState({phase: 'standing-by', holder: key.value, epoch: key.modRevision});
        if (key.value === this.#deps.self) await this.#revokeStale(key);
        await this.#wait(this.#pollMs());
        continue;
      }
      this.#setState({phase: 'standing-by', holder: undefined, epoch: undefined});
      const now = this.#deps.clock.now();
      this.#absentSinceMs ??= now;
      // The host whose key just went does not campaign before its backoff (CLAIM_BACKOFF_MS): nobody waits for it.
      const passedOver = now < this.#absentSinceMs + CLAIM_BACKOFF_MS ? this.#lastHolder : undefined;
      const ahead = liveRank(this.#deps.hosts, this.#deps.self, presence, passedOver, now < this.#startedAtMs + START_GRACE_MS);
      // keep-while-peers-agree: not before every host that said it holds the service has been silent for 2·D + M.
      const allowAtBootMs = this.#deps.peers?.campaignNotBeforeMs();
      const beaconsAllowAt = allowAtBootMs === undefined ? 0 : allowAtBootMs - this.#deps.clock.bootNow() + now;
      if (beaconsAllowAt > now && !this.#waitedForBeacons) {
        this.#deps.log.info(`(claim ${this.#deps.key}) the key is gone, but a host's beacons said it holds the service ` +
          `(it may keep it without etcd): no campaign for ${Math.round(beaconsAllowAt - now)} ms`);
        this.#waitedForBeacons = true;
      }
      const campaignAt = Math.max(this.#absentSinceMs + ahead * CAMPAIGN_STAGGER_MS, this.#campaignNotBefore, beaconsAllowAt);
      const healthy = this.#deps.healthy();
      if (!healthy || now < campaignAt) {
        // Woken by a change (a presence gone, the key written), it looks again and counts again.
        await this.#wait(healthy ? Math.min(this.#pollMs(), campaignAt - now) : this.#pollMs());
        continue;
      }
      this.#waitedForBeacons = false;
      const end = await this.#campaign();
      this.#absentSinceMs = undefined;
      // The key is read again at once (status names the new holder), but no campaign comes before the backoff: the
      // other hosts count on that when they leave this host out of their live rank.
      if (end !== 'lost') this.#campaignNotBefore = this.#deps.clock.now() + CLAIM_BACKOFF_MS;
    }
    await watching;
    this.#setState({phase: 'stopped'});
  }

  #pollMs(): number {
    return this.#watch?.open === true ? WATCHED_POLL_MS : CLAIM_POLL_MS;
  }

  /** The key (a linearizable read: 'unknown' when it fails) and the hosts' presence (undefined when that read fails). */
  async #lookAtKeys(): Promise<{key: StoredKey | undefined; presence: ReadonlyMap<string, Presence> | undefined} | 'unknown'> {
    const [key, presence, drained] = await Promise.all([this.#read(), this.#readPresence(), this.#readDrained()]);
    if (key === 'unknown') return 'unknown';
    if (drained !== undefined) this.#deps.onDrained?.(drained);
    this.#look = {atMs: this.#deps.clock.now(), holder: key?.value, presence};
    return {key, presence};
  }

  /** Waits for a hold to end; meanwhile it reads only the other hosts' presence, for `baton status` (look). */
  async #whileHolding<T>(ended: Promise<T>): Promise<T> {
    const holding = new AbortController();
    const looking = this.#lookWhileHolding(holding.signal);
    try {
      return await ended;
    } finally {
      holding.abort();
      this.nudge();
      await looking;
    }
  }

  async #lookWhileHolding(holding: AbortSignal): Promise<void> {
    while (!holding.aborted && !this.#deps.signal.aborted) {
      this.#changed = false;
      const presence = await this.#readPresence();
      if (presence !== undefined) this.#look = {atMs: this.#deps.clock.now(), holder: this.#deps.self, presence};
      if (holding.aborted) break;
      await this.#wait(this.#pollMs());
    }
  }

  /** Whether the drained key is there; undefined when there is none to read or the read failed (the flag stays as it was). */
  async #readDrained(): Promise<boolean | undefined> {
    const {store, drainedKey} = this.#deps;
    if (drainedKey === undefined) return undefined;
    return store.read(drainedKey, {timeoutMs: CALL_TIMEOUT_MS}).then((key) => key !== undefined, () => undefined);
  }

  async #readPresence(): Promise<ReadonlyMap<string, Presence> | undefined> {
    const {store, prefix, log} = this.#deps;
    const under = presencePrefix(prefix);
    try {
      const {keys} = await store.list(under, {timeoutMs: CALL_TIMEOUT_MS});
      const presence = new Map<string, Presence>();
      for (const stored of keys) {
        const value = parsePresence(stored.value);
        if (value !== undefined) presence.set(stored.key.slice(under.length), value);
      }
      return presence;
    } catch (error) {
      // Information only: without it, the campaign waits for every host ranked before this one, as configured.
      log.debug(`(claim ${this.#deps.key}) cannot read the hosts' presence: ${describeError(error)}`);
      return undefined;
    }
  }

  /** One campaign: the key, then the address, then the hold until it ends. 'lost': another host created the key. */
  async #campaign(): Promise<'lost' | 'failed' | HoldEnd> {
    const {clock, store, key, self, leaseTtlS, actions, log} = this.#deps;
    this.#setState({phase: 'campaigning'});
    let lease;
    const grantSentAtMs = clock.bootNow();
    try {
      lease = await store.grantLease(leaseTtlS, {timeoutMs: CALL_TIMEOUT_MS});
    } catch (error) {
      log.warning(`(claim ${key}) no lease: ${describeError(error)}`);
      return 'failed';
    }
    let acquired;
    try {
      acquired = await store.acquire(key, self, lease.id, {timeoutMs: CALL_TIMEOUT_MS});
    } catch (error) {
      // The create may have happened with its answer lost: revoking the lease deletes the key if it did.
      log.warning(`(claim ${key}) campaign failed: ${describeError(error)}`);
      await this.#revoke(lease.id);
      return 'failed';
    }
    if (!acquired.acquired) {
      await this.#revoke(lease.id);
      this.#setState({phase: 'standing-by', holder: acquired.key.value, epoch: acquired.key.modRevision});
      return 'lost';
    }
    if (this.#deps.signal.aborted) {
      // The agent was told to stop while it campaigned: release() found no hold to give up then, and nothing would
      // end this one. The key goes with its lease before any address is taken.
      log.notice(`(claim ${key}) stopping: giving up the key just written at epoch ${acquired.key.modRevision}`);
      await this.#revoke(lease.id);
      return 'failed';
    }
    const epoch = acquired.key.modRevision;
    log.notice(`(claim ${key}) ${self} holds the key at epoch ${epoch}; taking the address`);
    const holder = this.#newHolder(lease, epoch, grantSentAtMs);
    this.#holder = holder;
    this.#setState({phase: 'holding', epoch, lease: lease.id});
    const held = holder.run();
    try {
      await this.#queue(async () => {
        // The deadline may have passed while the campaign waited (a slow etcd, a stalled process): take nothing.
        if (!holder.holds()) throw new BatonError('STEP_FAILED', 'the lease\'s deadline passed before the address was taken');
        await actions.take();
      });
    } catch (error) {
      // The same failure again (an address left on a host whose agent died answers each probe) is said once, then
      // only in the debug log, so that a campaign every few seconds does not flood the journal.
      const text = `taking the address failed: ${describeError(error)}; giving the key up`;
      if (text === this.#lastFailure) log.debug(`(claim ${key}) ${text} (again)`);
      else log.error(`(claim ${key}) ${text}`);
      this.#lastFailure = text;
      await holder.release();
      await held;
      this.#holder = undefined;
      // Neither the key nor the address is this host's now; the next read says whose the key is.
      this.#setState({phase: 'standing-by', holder: undefined, epoch: undefined});
      return 'failed';
    }
    this.#lastFailure = undefined;
    const end = await this.#whileHolding(held);
    this.#holder = undefined;
    this.#setState({phase: 'standing-by', holder: undefined, epoch: undefined});
    log.notice(`(claim ${key}) the hold at epoch ${epoch} ended: ${end.reason}`);
    return end;
  }

  /** A lease holder for `lease`: renews it, and drops the address (through the queue) by its deadline. */
  #newHolder(lease: Lease, epoch: number, grantSentAtMs: number): LeaseHolder {
    const {clock, store, timing, key, actions, log} = this.#deps;
    return new LeaseHolder({
      clock, store, timing,
      dropAddress: (reason: DropReason) => this.#queue(async () => {
        // Giving the service up on purpose is news; losing it is a warning.
        if (reason === 'released') log.info(`(claim ${key}) giving the address up: ${reason}`);
        else log.warning(`(claim ${key}) dropping the address: ${reason}`);
        await actions.drop();
      }),
      log: (line) => log.info(line),
      ...this.#deps.peers === undefined ? {} : {keep: this.#keeping(this.#deps.peers)},
    }, {lease: lease.id, epoch, grantSentAtMs, grantedTtlS: lease.ttlS});
  }

  /** keep-while-peers-agree: the holder's view of the beacons, and the key taken again when etcd answers. */
  #keeping(peers: ClaimPeers): HoldKeeping {
    const {clock, store, key, self, leaseTtlS, log} = this.#deps;
    return {
      untilMs: (nowMs) => peers.keepUntilMs(nowMs),
      reacquire: async () => {
        const grantSentAtMs = clock.now();
        const lease = await store.grantLease(leaseTtlS, {timeoutMs: CALL_TIMEOUT_MS});
        let acquired;
        try {
          acquired = await store.acquire(key, self, lease.id, {timeoutMs: CALL_TIMEOUT_MS});
        } catch (error) {
          await this.#revoke(lease.id);
          throw error;
        }
        if (acquired.acquired) return {acquired: true, lease: lease.id, epoch: acquired.key.modRevision, grantSentAtMs, ttlS: lease.ttlS};
        await this.#revoke(lease.id);
        return {acquired: false, holder: acquired.key.value};
      },
      onChange: (change) => {
        if (change.type === 'keeping') {
          log.warning(`(claim ${key}) the lease could not be renewed by its deadline: keeping the address, as every other host's beacons ` +
            `say it does not hold the service and hears this host (for ${Math.round(change.untilMs - clock.now())} ms, unless they say so again)`);
        } else if (change.type === 'renewed') {
          log.notice(`(claim ${key}) the lease was renewed again: holding by etcd again`);
        } else if (this.#state.phase === 'holding') {
          log.notice(`(claim ${key}) ${self} holds the key again, at epoch ${change.epoch}`);
          this.#setState({phase: 'holding', epoch: change.epoch, lease: change.lease});
        }
      },
    };
  }

  // --- A planned switch (etcd-switch.ts): the giver keeps its hold while its address goes, the taker gets a lease of
  // its own ready before the key is handed to it, and adopts the hold at the handover.

  /** A switch involving this host begins: until switchEnded(), this host neither campaigns nor revokes a key of its
   *  name, and status shows the switch. */
  switchBegan(id: string): void {
    this.#switching = id;
  }

  switchEnded(): void {
    this.#switching = undefined;
  }

  /** The switch this host takes part in now, if any. */
  get switching(): string | undefined {
    return this.#switching;
  }

  /** Runs an address change of a switch in the claim's queue, after any take or drop before it. */
  addressOp(op: () => Promise<void>): Promise<void> {
    return this.#queue(op);
  }

  /** The hold of this host (the giver), while it holds the key; undefined otherwise. */
  currentHold(): {readonly lease: string; readonly epoch: number} | undefined {
    return this.#state.phase === 'holding' && this.#holder?.holds() === true ? {lease: this.#state.lease, epoch: this.#state.epoch} : undefined;
  }

  /** The giver, after a handback: the key is its own again, at a new revision. */
  epochChanged(epoch: number): void {
    if (this.#state.phase === 'holding') this.#setState({...this.#state, epoch});
  }

  /** The taker, before the handover: a lease of its own, renewed from now on, that the key is handed over with. */
  async prepareHold(): Promise<PreparedHold> {
    const {clock, store, leaseTtlS} = this.#deps;
    const grantSentAtMs = clock.bootNow();
    const lease = await store.grantLease(leaseTtlS, {timeoutMs: CALL_TIMEOUT_MS});
    // Epoch 0 until the handover gives it one; the holder's deadline counts from the grant.
    const holder = this.#newHolder(lease, 0, grantSentAtMs);
    const ended = holder.run();
    return {lease: lease.id, holder, ended};
  }

  /** The taker, once the key was handed over to its prepared lease: it holds the service until the hold ends. */
  adoptHold(prepared: PreparedHold, epoch: number): void {
    this.#holder = prepared.holder;
    this.#setState({phase: 'holding', epoch, lease: prepared.lease});
    this.#deps.log.notice(`(claim ${this.#deps.key}) ${this.#deps.self} holds the key at epoch ${epoch}, handed over by a planned switch`);
    this.#adopted = prepared.ended.then((end) => {
      this.#holder = undefined;
      this.#setState({phase: 'standing-by', holder: undefined, epoch: undefined});
      this.#deps.log.notice(`(claim ${this.#deps.key}) the hold at epoch ${epoch} ended: ${end.reason}`);
    });
  }

  /** Whether the prepared (or adopted) hold is still good: its deadline has not passed. */
  stillHolds(prepared: PreparedHold): boolean {
    return prepared.holder.holds();
  }

  /** Gives the service up now, if held (the address first, then the lease): for a planned stop of the agent. */
  async release(): Promise<void> {
    await this.#holder?.release();
  }

  async #read(): Promise<StoredKey | undefined | 'unknown'> {
    const {store, key, log} = this.#deps;
    try {
      return await store.read(key, {timeoutMs: CALL_TIMEOUT_MS});
    } catch (error) {
      // Not knowing is not "absent": a host that cannot read the key never campaigns.
      const text = describeError(error);
      if (this.#state.phase !== 'standing-by' || this.#state.error === undefined) log.warning(`(claim ${key}) cannot read the key: ${text}`);
      this.#setState({phase: 'standing-by', holder: undefined, epoch: undefined, error: text});
      return 'unknown';
    }
  }

  /** A key of this host's name that this process does not hold: left by an agent before it (a restart), or by a hold
   *  of this one that ended at its deadline while its revoke got no answer (the key is read again at once now). Its
   *  lease is revoked, so that the hosts campaign afresh rather than wait for it to expire. */
  async #revokeStale(key: StoredKey): Promise<void> {
    if (this.#holder !== undefined) return;
    this.#deps.log.notice(`(claim ${key.key}) the key names this host, which does not hold it (epoch ${key.modRevision}): revoking its lease ${key.lease}`);
    await this.#revoke(key.lease);
  }

  async #revoke(lease: string): Promise<void> {
    await this.#deps.store.revokeLease(lease, {timeoutMs: CALL_TIMEOUT_MS}).catch((error: unknown) => {
      this.#deps.log.warning(`(claim ${this.#deps.key}) revoking lease ${lease} failed, it expires by itself: ${describeError(error)}`);
    });
  }

  #queue(op: () => Promise<void>): Promise<void> {
    const next = this.#addressOps.then(op);
    this.#addressOps = next.catch(() => undefined);
    return next;
  }

  #setState(state: ClaimState): void {
    const previous = this.#state;
    this.#state = state;
    if (state.phase !== previous.phase) this.#deps.onPhase?.(state, previous);
  }

  async #sleep(ms: number): Promise<void> {
    await this.#deps.clock.sleep(Math.max(1, ms), this.#deps.signal).catch(() => undefined);
  }

  /** Sleeps, unless something changed (nudge) meanwhile: then returns at once. */
  async #wait(ms: number): Promise<void> {
    if (this.#changed) return;
    const wake = new AbortController();
    this.#wake = wake;
    await this.#deps.clock.sleep(Math.max(1, ms), AbortSignal.any([this.#deps.signal, wake.signal])).catch(() => undefined);
    this.#wake = undefined;
  }
}

/** The claim's actions from the step catalogue: a takeover's (the duplicate-address probe, take-ip, announce), and
 *  release-ip to drop. */
export function stepClaimActions(run: StepRun): ClaimActions {
  const {service} = run.ctx;
  return {
    async take() {
      // The probe as probe-address runs it, in etcd's words: here nobody is a silent peer.
      if (await run.ctx.probe()) {
        throw new BatonError('ADDRESS_IN_USE', `${service.ips.map((ip) => ip.address).join(' or ')} answered a duplicate-address ` +
          'probe: another host has it without holding the key (an agent that died and left it, or a host outside baton); ' +
          'not taking it');
      }
      try {
        await executeStep('take-ip', run);
      } catch (error) {
        await executeUndo('take-ip', run).catch(() => undefined);
        throw error;
      }
      await executeStep('announce', run);
    },
    async drop() {
      await executeStep('release-ip', run);
    },
  };
}
