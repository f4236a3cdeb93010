// An etcd in memory on a FakeClock: keys, leases that expire TTL after the leader received their last renewal, and
// the faults a holder must survive or drop on (a member out of reach, slow answers, a lease already gone). Every
// write and deletion (a lease's expiry or revocation deletes its keys) takes a new revision and reaches the watches
// at once, in order; breakWatches() ends them as a member that lost its leader does.

import {BatonError} from '../../agent/errors.js';
import type {
  CoordinationCallOptions, CoordinationEvent, CoordinationStore, KeyCompare, KeyWrite, Lease, StoredKey,
} from '../../agent/ports.js';
import type {FakeClock} from './fake-clock.js';

export type FakeEtcdMode =
  /** Answers after replyDelayMs; the request reaches the leader halfway. */
  | 'ok'
  /** Out of reach: nothing arrives; each call fails at its deadline. */
  | 'unreachable';

const DEFAULT_TIMEOUT_MS = 1000;

export class FakeCoordinationStore implements CoordinationStore {
  readonly #clock: FakeClock;
  readonly #leases = new Map<string, {ttlS: number; expiresAtMs: number}>();
  readonly #keys = new Map<string, StoredKey>();
  #revision = 1;
  #nextLease = 100;
  /** Every change, in revision order, for watches that start from an older revision. */
  readonly #history: CoordinationEvent[] = [];
  readonly #watchers = new Set<{push(event: CoordinationEvent): void; fail(error: Error): void}>();
  mode: FakeEtcdMode = 'ok';
  /** While set, every watch opened is cancelled at once with this reason (a member that keeps losing its leader). */
  refuseWatches: string | undefined;
  replyDelayMs = 10;
  /** What happened, in order, with the monotonic time: renew-sent, renew-arrived, revoke, grant… */
  readonly journal: {op: string; atMs: number}[] = [];

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  /** When etcd would expire the lease (the last renewal it received + TTL), in the clock's boot time (etcd's members
   *  go on while this machine is suspended); undefined when gone. */
  expiresAtMs(id: string): number | undefined {
    return this.#leases.get(id)?.expiresAtMs;
  }

  /** Expires the lease now, as etcd's leader would on its own clock. */
  expire(id: string): void {
    this.#leases.delete(id);
    for (const [key, stored] of this.#keys) {
      if (stored.lease !== id) continue;
      this.#keys.delete(key);
      this.#publish({type: 'delete', key, modRevision: ++this.#revision});
    }
  }

  /** Moves the cluster's revision on to `revision`, as the writes of other users of a long-lived etcd do. */
  skipToRevision(revision: number): void {
    if (revision < this.#revision) throw new Error(`the revision is ${this.#revision} already; etcd's revisions never go back`);
    this.#revision = revision;
  }

  /** The watches open now. */
  get watchCount(): number {
    return this.#watchers.size;
  }

  /** Ends every open watch with COORDINATION_UNAVAILABLE, as a member that lost its leader cancels them. */
  breakWatches(reason = 'etcdserver: no leader'): void {
    for (const watcher of this.#watchers) watcher.fail(new BatonError('COORDINATION_UNAVAILABLE', `etcd /v3/watch: ${reason}`));
  }

  async grantLease(ttlS: number, options?: CoordinationCallOptions): Promise<Lease> {
    await this.#reach('grant', options);
    const id = String(this.#nextLease++);
    this.#leases.set(id, {ttlS, expiresAtMs: this.#clock.bootNow() + ttlS * 1000});
    await this.#clock.sleep(this.replyDelayMs / 2);
    return {id, ttlS};
  }

  async renewLease(id: string, options?: CoordinationCallOptions): Promise<number> {
    this.journal.push({op: 'renew-sent', atMs: this.#clock.now()});
    await this.#reach('renew', options);
    const lease = this.#leases.get(id);
    if (lease !== undefined && lease.expiresAtMs > this.#clock.bootNow()) {
      lease.expiresAtMs = this.#clock.bootNow() + lease.ttlS * 1000;
      this.journal.push({op: 'renew-arrived', atMs: this.#clock.now()});
    } else {
      this.expire(id);
    }
    await this.#clock.sleep(this.replyDelayMs / 2);
    return this.#leases.has(id) ? this.#leases.get(id)?.ttlS ?? 0 : 0;
  }

  async revokeLease(id: string, options?: CoordinationCallOptions): Promise<void> {
    await this.#reach('revoke', options);
    this.expire(id);
  }

  async acquire(key: string, value: string, lease: string, options?: CoordinationCallOptions) {
    await this.#reach('acquire', options);
    const current = this.#keys.get(key);
    if (current !== undefined) return {acquired: false, key: current};
    if (!this.#leases.has(lease)) throw new BatonError('COORDINATION_FAILED', 'etcdserver: requested lease not found');
    const stored = {key, value, lease, modRevision: ++this.#revision};
    this.#keys.set(key, stored);
    this.#publish({type: 'put', key: stored});
    return {acquired: true, key: stored};
  }

  async read(key: string, options?: CoordinationCallOptions): Promise<StoredKey | undefined> {
    await this.#reach('read', options);
    return this.#keys.get(key);
  }

  async list(prefix: string, options?: CoordinationCallOptions): Promise<{keys: StoredKey[]; revision: number}> {
    await this.#reach('list', options);
    const keys = [...this.#keys.values()].filter((stored) => stored.key.startsWith(prefix)).sort((x, y) => (x.key < y.key ? -1 : 1));
    return {keys, revision: this.#revision};
  }

  async put(key: string, value: string, lease: string, options?: CoordinationCallOptions): Promise<StoredKey> {
    await this.#reach('put', options);
    if (!this.#leases.has(lease)) throw new BatonError('COORDINATION_FAILED', 'etcdserver: requested lease not found');
    const stored = {key, value, lease, modRevision: ++this.#revision};
    this.#keys.set(key, stored);
    this.#publish({type: 'put', key: stored});
    return stored;
  }

  async handOver(key: string, giverRevision: number, value: string, lease: string, options?: CoordinationCallOptions) {
    await this.#reach('hand-over', options);
    const current = this.#keys.get(key);
    if (current?.modRevision !== giverRevision) return {handedOver: false, key: current};
    const stored = {key, value, lease, modRevision: ++this.#revision};
    this.#keys.set(key, stored);
    this.#publish({type: 'put', key: stored});
    return {handedOver: true, key: stored};
  }

  async transact(compares: readonly KeyCompare[], writes: readonly KeyWrite[], options?: CoordinationCallOptions) {
    await this.#reach('txn', options);
    if (!compares.every(({key, modRevision}) => (this.#keys.get(key)?.modRevision ?? 0) === modRevision)) {
      return {succeeded: false, revision: this.#revision};
    }
    for (const write of writes) {
      if (write.type === 'put' && write.lease !== undefined && !this.#leases.has(write.lease)) {
        throw new BatonError('COORDINATION_FAILED', 'etcdserver: requested lease not found');
      }
    }
    // One revision for the whole transaction, as etcd gives it.
    const revision = writes.length === 0 ? this.#revision : ++this.#revision;
    for (const write of writes) {
      if (write.type === 'put') {
        const stored = {key: write.key, value: write.value, lease: write.lease ?? '0', modRevision: revision};
        this.#keys.set(write.key, stored);
        this.#publish({type: 'put', key: stored});
      } else if (this.#keys.delete(write.key)) {
        this.#publish({type: 'delete', key: write.key, modRevision: revision});
      }
    }
    return {succeeded: true, revision};
  }

  /** The changes under `prefix` after `afterRevision` (from the history), then as they happen, until `signal` aborts
   *  (the watch ends) or breakWatches() (it throws). Opening one takes a round trip, and fails as a call does. */
  async* watch(prefix: string, signal: AbortSignal, afterRevision?: number): AsyncIterable<CoordinationEvent> {
    await this.#reach('watch', undefined);
    if (this.refuseWatches !== undefined) throw new BatonError('COORDINATION_UNAVAILABLE', `etcd /v3/watch was cancelled: ${this.refuseWatches}`);
    const queue: CoordinationEvent[] = afterRevision === undefined ? [] : this.#history.filter((event) => revisionOf(event) > afterRevision);
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    const watcher = {
      push: (event: CoordinationEvent): void => {
        queue.push(event);
        wake?.();
      },
      fail: (error: Error): void => {
        failure = error;
        wake?.();
      },
    };
    const onAbort = (): void => wake?.();
    this.#watchers.add(watcher);
    signal.addEventListener('abort', onAbort);
    try {
      while (!signal.aborted) {
        const next = queue.shift();
        if (next !== undefined) {
          if ((next.type === 'put' ? next.key.key : next.key).startsWith(prefix)) yield next;
          continue;
        }
        if (failure !== undefined) throw failure;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      this.#watchers.delete(watcher);
      signal.removeEventListener('abort', onAbort);
    }
  }

  #publish(event: CoordinationEvent): void {
    this.#history.push(event);
    for (const watcher of this.#watchers) watcher.push(event);
  }

  /** Half the reply delay to reach etcd, or the whole deadline and a failure when it is out of reach. */
  async #reach(op: string, options: CoordinationCallOptions | undefined): Promise<void> {
    if (this.mode === 'unreachable') {
      const timeoutMs = options?.timeoutMs ?? DEFAULT_TIMEOUT_MS;
      await this.#clock.sleep(timeoutMs);
      throw new BatonError('COORDINATION_UNAVAILABLE', `etcd /v3/${op} got no answer within ${timeoutMs} ms`);
    }
    await this.#clock.sleep(this.replyDelayMs / 2);
    this.journal.push({op, atMs: this.#clock.now()});
  }
}

function revisionOf(event: CoordinationEvent): number {
  return event.type === 'put' ? event.key.modRevision : event.modRevision;
}
