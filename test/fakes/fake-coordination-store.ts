// An etcd in memory on a FakeClock: keys, leases that expire TTL after the leader received their last renewal, and
// the faults a holder must survive or drop on (a member out of reach, slow answers, a lease already gone).

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
  mode: FakeEtcdMode = 'ok';
  replyDelayMs = 10;
  /** What happened, in order, with the monotonic time: renew-sent, renew-arrived, revoke, grant… */
  readonly journal: {op: string; atMs: number}[] = [];

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  /** When etcd would expire the lease (the last renewal it received + TTL); undefined when gone. */
  expiresAtMs(id: string): number | undefined {
    return this.#leases.get(id)?.expiresAtMs;
  }

  /** Expires the lease now, as etcd's leader would on its own clock. */
  expire(id: string): void {
    this.#leases.delete(id);
    for (const [key, stored] of this.#keys) if (stored.lease === id) this.#keys.delete(key);
  }

  async grantLease(ttlS: number, options?: CoordinationCallOptions): Promise<Lease> {
    await this.#reach('grant', options);
    const id = String(this.#nextLease++);
    this.#leases.set(id, {ttlS, expiresAtMs: this.#clock.now() + ttlS * 1000});
    await this.#clock.sleep(this.replyDelayMs / 2);
    return {id, ttlS};
  }

  async renewLease(id: string, options?: CoordinationCallOptions): Promise<number> {
    this.journal.push({op: 'renew-sent', atMs: this.#clock.now()});
    await this.#reach('renew', options);
    const lease = this.#leases.get(id);
    if (lease !== undefined && lease.expiresAtMs > this.#clock.now()) {
      lease.expiresAtMs = this.#clock.now() + lease.ttlS * 1000;
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
    return {acquired: true, key: stored};
  }

  async read(key: string, options?: CoordinationCallOptions): Promise<StoredKey | undefined> {
    await this.#reach('read', options);
    return this.#keys.get(key);
  }

  async handOver(key: string, giverRevision: number, value: string, lease: string, options?: CoordinationCallOptions) {
    await this.#reach('hand-over', options);
    const current = this.#keys.get(key);
    if (current?.modRevision !== giverRevision) return {handedOver: false, key: current};
    const stored = {key, value, lease, modRevision: ++this.#revision};
    this.#keys.set(key, stored);
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
      if (write.type === 'put') this.#keys.set(write.key, {key: write.key, value: write.value, lease: write.lease ?? '0', modRevision: revision});
      else this.#keys.delete(write.key);
    }
    return {succeeded: true, revision};
  }

  // eslint-disable-next-line require-yield
  async* watch(_prefix: string, _signal: AbortSignal): AsyncIterable<CoordinationEvent> {
    throw new BatonError('COORDINATION_UNAVAILABLE', 'the fake store does not watch');
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
