// A host's presence in etcd mode (issue 17): `<prefix>hosts/<name>` under a lease of the host's own, its value what
// the other hosts may want to know of it ({health, version, since, drain}). `drain` is, for each service of the host's
// file, what a pair's can-drain answers: the host's own addresses, one per service address, where a taker sends the
// strays of this host's connections when it gives the service away, or why it cannot drain. A value without it (a baton older than the drain in etcd mode) says
// nothing, and a switch from that host runs without a drain and says so. The key is there while the host's agent runs and
// reaches etcd, and goes by itself a lease TTL after the agent died or lost etcd.
//
// Presence is information, never safety: the service's key under its holder's lease is the only thing that decides
// who holds the address. The other hosts read presence to order their campaigns (a host waits for the live, healthy
// hosts ranked before it, not for every host configured before it: service-claim.ts) and to say in `baton status`
// who could take over. A presence key that is stale (a host that died a moment ago) only delays a campaign by one
// stagger; one that is missing (a host that has not written it yet) can make two hosts campaign at once, which the
// key's create-if-absent transaction settles: one gets the key, the other stands by.

import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock, CoordinationStore} from '../ports.js';
import type {Health} from '../state-machine.js';
import {CALL_TIMEOUT_MS, type LeaseTiming} from './lease-holder.js';
import type {DrainReadiness} from '../plans/drain.js';
import {parseIpAddress} from '../net/ip-address.js';

/** The value of a presence key. */
export interface Presence {
  readonly health: Health;
  /** The agent's baton version. */
  readonly version: string;
  /** Since when (wall clock, ISO 8601) the health has been what it is, or the agent has run. */
  readonly since: string;
  /** Per service: whether the host can drain it as a giver, and its own addresses for it; absent: it did not say. */
  readonly drain?: Readonly<Record<string, DrainReadiness>>;
}

/** A presence value as another host wrote it; undefined when it is not one (a host of another baton, or garbage). */
export function parsePresence(value: string): Presence | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  const record = typeof parsed === 'object' && parsed !== null ? parsed as Record<string, unknown> : {};
  const {health, version, since, drain} = record;
  if ((health !== 'ok' && health !== 'failing') || typeof version !== 'string' || typeof since !== 'string') return undefined;
  const readiness = parseDrains(drain);
  return readiness === undefined ? {health, version, since} : {health, version, since, drain: readiness};
}

/** The drain part of a presence value, per service; a service whose part is not one is left out (said nothing). */
function parseDrains(value: unknown): Record<string, DrainReadiness> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const drains: Record<string, DrainReadiness> = {};
  for (const [name, part] of Object.entries(value)) {
    const readiness = parseDrain(part);
    if (readiness !== undefined) drains[name] = readiness;
  }
  return Object.keys(drains).length === 0 ? undefined : drains;
}

/** The drain part of a presence value; undefined when absent or not one (then the host said nothing of the drain). */
function parseDrain(value: unknown): DrainReadiness | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const {addresses, unavailable} = value as Record<string, unknown>;
  if (typeof unavailable === 'string' && addresses === undefined) return {unavailable};
  if (!Array.isArray(addresses) || addresses.length === 0 || addresses.length > 2) return undefined;
  const parsed = addresses.map((address) => typeof address === 'string' ? parseIpAddress(address)?.address : undefined);
  return parsed.every((address) => address !== undefined) ? {addresses: parsed as string[]} : undefined;
}

export interface PresenceDeps {
  readonly clock: Clock;
  readonly store: CoordinationStore;
  /** `<prefix>hosts/<name>`. */
  readonly key: string;
  readonly leaseTtlS: number;
  /** The presence lease is renewed on the same schedule as a hold's (every TTL/3, retried after TTL/18). */
  readonly timing: LeaseTiming;
  readonly version: string;
  readonly log: Logger;
  /** Ends the presence: run() revokes its lease (the key goes at once) and returns. */
  readonly signal: AbortSignal;
}


/** Keeps this host's presence key written and its lease alive while the agent runs. */
export class PresenceKeeper {
  readonly #deps: PresenceDeps;
  #health: Health = 'ok';
  #since: string;
  #lease: string | undefined;
  /** The value last written under the current lease. */
  #written: string | undefined;
  #wake: AbortController | undefined;
  #failing: string | undefined;
  #drain: Record<string, DrainReadiness> | undefined;

  constructor(deps: PresenceDeps, health: Health) {
    this.#deps = deps;
    this.#health = health;
    this.#since = new Date(deps.clock.wallNow()).toISOString();
  }

  /** The value to write: what this host says of itself now. */
  get value(): Presence {
    const said = {health: this.#health, version: this.#deps.version, since: this.#since};
    return this.#drain === undefined ? said : {...said, drain: this.#drain};
  }

  /** Whether the key is written with the current value (as far as this host knows). */
  get written(): boolean {
    return this.#written === JSON.stringify(this.value);
  }

  /** The health changed: the key is rewritten at once. */
  setHealth(health: Health): void {
    if (health === this.#health) return;
    this.#health = health;
    this.#since = new Date(this.#deps.clock.wallNow()).toISOString();
    this.#wake?.abort();
  }

  /** Whether this host can drain `service` and its own addresses for it (drain.ts): the key is rewritten at once if it
   *  changed. */
  setDrain(service: string, drain: DrainReadiness): void {
    if (JSON.stringify(drain) === JSON.stringify(this.#drain?.[service])) return;
    this.#drain = {...this.#drain, [service]: drain};
    this.#wake?.abort();
  }

  /** Writes the key and keeps its lease alive until the signal aborts; then revokes the lease (best effort). */
  async run(): Promise<void> {
    const {clock, store, key, leaseTtlS, timing, log, signal} = this.#deps;
    let renewAtMs = 0;
    while (!signal.aborted) {
      let waitMs: number;
      try {
        if (this.#lease === undefined) {
          this.#lease = (await store.grantLease(leaseTtlS, {timeoutMs: CALL_TIMEOUT_MS})).id;
          this.#written = undefined;
          renewAtMs = clock.now() + timing.renewEveryMs;
        }
        const value = JSON.stringify(this.value);
        if (this.#written !== value) {
          await store.put(key, value, this.#lease, {timeoutMs: CALL_TIMEOUT_MS});
          this.#written = value;
        }
        if (clock.now() >= renewAtMs) {
          const sentAt = clock.now();
          const ttlS = await store.renewLease(this.#lease, {timeoutMs: timing.renewTimeoutMs});
          // The lease expired while this host could not renew it (etcd out of reach for a TTL): a new one, and the
          // key written again under it.
          if (ttlS <= 0) this.#lease = undefined;
          renewAtMs = sentAt + timing.renewEveryMs;
        }
        if (this.#failing !== undefined) log.info(`(presence ${key}) written again`);
        this.#failing = undefined;
        // Again at once when the health changed meanwhile or the lease is to be granted anew.
        waitMs = this.#lease === undefined || !this.written ? 0 : renewAtMs - clock.now();
      } catch (error) {
        // A put under a lease etcd no longer has fails: the next round grants a new one.
        if (/lease not found/.test(describeError(error))) this.#lease = undefined;
        const text = describeError(error);
        if (this.#failing === undefined) log.warning(`(presence ${key}) cannot keep this host's presence: ${text}; the other hosts see it absent`);
        this.#failing = text;
        waitMs = timing.retryAfterMs;
      }
      if (waitMs > 0) await this.#sleep(waitMs);
    }
    if (this.#lease !== undefined) {
      await store.revokeLease(this.#lease, {timeoutMs: CALL_TIMEOUT_MS}).catch((error: unknown) => {
        log.info(`(presence ${key}) revoking its lease failed, it expires by itself: ${describeError(error)}`);
      });
    }
  }

  async #sleep(ms: number): Promise<void> {
    const wake = new AbortController();
    this.#wake = wake;
    await this.#deps.clock.sleep(ms, AbortSignal.any([wake.signal, this.#deps.signal])).catch(() => undefined);
    this.#wake = undefined;
  }
}
