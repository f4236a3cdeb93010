// One etcd in memory shared by several hosts, each reaching it through a view of its own that can be cut (a cut host's
// calls fail at their deadline and its watch goes silent, as through a member it no longer reaches).

import {BatonError} from '../../agent/errors.js';
import type {CoordinationCallOptions, CoordinationEvent, CoordinationStore, Lease, StoredKey} from '../../agent/ports.js';
import type {FakeClock} from './fake-clock.js';
import {FakeCoordinationStore} from './fake-coordination-store.js';

/**
 * One etcd shared by the hosts, as each host reaches it: a host cut from etcd gets no answer (each call fails at its
 * deadline) while the others still do. Leases expire on etcd's clock, TTL after it last received a renewal, and their
 * keys go with them.
 */
export class SharedEtcd {
  readonly store: FakeCoordinationStore;
  readonly #clock: FakeClock;
  readonly #leases = new Set<string>();

  constructor(clock: FakeClock) {
    this.#clock = clock;
    this.store = new FakeCoordinationStore(clock);
    this.store.replyDelayMs = 4;
  }

  /** Leases past their expiry go, with their keys, as etcd's leader expires them. */
  expireDue(): void {
    for (const id of this.#leases) {
      const at = this.store.expiresAtMs(id);
      if (at === undefined || at <= this.#clock.bootNow()) {
        this.store.expire(id);
        this.#leases.delete(id);
      }
    }
  }

  /** Writes a host's presence key under a lease of its own, as its agent would; returns the lease, to expire it. */
  async present(prefix: string, ttlS: number, name: string, health: 'ok' | 'failing' = 'ok'): Promise<string> {
    const grant = this.store.grantLease(ttlS);
    await this.#clock.advance(10);
    const lease = await grant;
    this.#leases.add(lease.id);
    const put = this.store.put(`${prefix}hosts/${name}`, JSON.stringify({health, version: '0.2.0', since: '2026-12-06T20:00:00.000Z'}), lease.id);
    await this.#clock.advance(10);
    await put;
    return lease.id;
  }

  viewFrom(host: {cut: boolean}): CoordinationStore {
    const {store} = this;
    const reach = async (options: CoordinationCallOptions | undefined): Promise<void> => {
      this.expireDue();
      if (!host.cut) return;
      const timeoutMs = options?.timeoutMs ?? 1000;
      await this.#clock.sleep(timeoutMs);
      throw new BatonError('COORDINATION_UNAVAILABLE', `etcd got no answer within ${timeoutMs} ms (the host is cut off)`);
    };
    return {
      grantLease: async (ttlS: number, options?: CoordinationCallOptions): Promise<Lease> => {
        await reach(options);
        const lease = await store.grantLease(ttlS, options);
        this.#leases.add(lease.id);
        return lease;
      },
      renewLease: async (id, options) => (await reach(options), store.renewLease(id, options)),
      revokeLease: async (id, options) => (await reach(options), store.revokeLease(id, options)),
      acquire: async (key, value, lease, options) => (await reach(options), store.acquire(key, value, lease, options)),
      read: async (key, options): Promise<StoredKey | undefined> => (await reach(options), store.read(key, options)),
      list: async (prefix, options) => (await reach(options), store.list(prefix, options)),
      put: async (key, value, lease, options) => (await reach(options), store.put(key, value, lease, options)),
      handOver: async (key, revision, value, lease, options) => (await reach(options), store.handOver(key, revision, value, lease, options)),
      transact: async (compares, writes, options) => (await reach(options), store.transact(compares, writes, options)),
      // A watch through a member this host no longer reaches says nothing: silent while the host is cut, not broken.
      watch: async function* (prefix: string, signal: AbortSignal, afterRevision?: number): AsyncIterable<CoordinationEvent> {
        for await (const event of store.watch(prefix, signal, afterRevision)) if (!host.cut) yield event;
      },
    };
  }
}

