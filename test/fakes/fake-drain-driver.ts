// A DrainDriver in memory: what a host holds and forwards, the connections left on it (set by the test, or
// closed by the graceful command), an ordered journal of what was done, and injected failures.

import {BatonError} from '../../agent/errors.js';
import type {DrainDriver} from '../../agent/ports.js';
import type {ServiceIp} from '../../agent/state-machine.js';

export type DrainCall = 'hold' | 'unhold' | 'forward' | 'unforward' | 'openConnections';

export class FakeDrainDriver implements DrainDriver {
  /** The service addresses held, and where each forwarded one is sent (a dual-stack service has two of each). */
  readonly heldAddresses = new Set<string>();
  readonly forwards = new Map<string, string>();
  /** Connections on the service IP here; the test sets it, and may close them over time. */
  connections = 0;
  /** Why this host cannot drain, or undefined. */
  cannot: string | undefined;
  /** This host's own address; a dual-stack host's IPv6 one is `own6`. */
  own = '192.0.2.1';
  own6 = '2001:db8::1';
  readonly journal: string[] = [];
  readonly #failures = new Map<DrainCall, BatonError>();

  /** The host's addresses that hold() keeps from answering ARP, as the real hold's arp table does. */
  readonly #silenced: Set<string> | undefined;

  constructor(own?: string, silenced?: Set<string>, own6?: string) {
    if (own !== undefined) this.own = own;
    if (own6 !== undefined) this.own6 = own6;
    this.#silenced = silenced;
  }

  /** The one held address (the held ones, space-separated, for a dual-stack service), or undefined. A crash's
   *  leftovers are what hold() and forward() left, as on a real host. */
  get held(): string | undefined {
    return this.heldAddresses.size === 0 ? undefined : [...this.heldAddresses].join(' ');
  }

  /** Where the one forwarded address is sent (the givers, space-separated, for a dual-stack service), or undefined. */
  get forwardingTo(): string | undefined {
    return this.forwards.size === 0 ? undefined : [...this.forwards.values()].join(' ');
  }

  failNext(method: DrainCall, error = new BatonError('COMMAND_FAILED', `${method} failed (injected)`)): void {
    this.#failures.set(method, error);
  }

  async unavailable(): Promise<string | undefined> {
    return this.cannot;
  }

  async ownAddress(ip: ServiceIp): Promise<string | undefined> {
    // A single-family fake answers with `own` whatever it is; a dual-stack one needs own6 for its IPv6 address.
    return ip.family === 6 && !this.own.includes(':') ? this.own6 : this.own;
  }

  async hold(ip: ServiceIp, own: string): Promise<void> {
    this.#enter('hold', `${ip.address} as ${own}`);
    this.heldAddresses.add(ip.address);
    this.#silenced?.add(ip.address);
  }

  async isHolding(ip: ServiceIp): Promise<boolean> {
    return this.heldAddresses.has(ip.address);
  }

  async unhold(ip: ServiceIp): Promise<void> {
    this.#enter('unhold', ip.address);
    this.heldAddresses.delete(ip.address);
    this.#silenced?.delete(ip.address);
  }

  async forward(ip: ServiceIp, giver: string): Promise<void> {
    this.#enter('forward', `${ip.address} to ${giver}`);
    this.forwards.set(ip.address, giver);
  }

  async isForwarding(ip: ServiceIp): Promise<boolean> {
    return this.forwards.has(ip.address);
  }

  async unforward(): Promise<void> {
    this.#enter('unforward', '');
    this.forwards.clear();
  }

  async openConnections(): Promise<number> {
    this.#enter('openConnections', '', false);
    return this.connections;
  }

  async removeLeftovers(ip: ServiceIp): Promise<string[]> {
    const removed: string[] = [];
    // As nft-drain-driver's: every forward goes at the first call, whichever address it is for (its tables are one
    // per family, not per address); the hold of `ip` only.
    if (this.forwards.size > 0) removed.push('forward');
    if (this.heldAddresses.has(ip.address)) removed.push('hold');
    this.forwards.clear();
    this.heldAddresses.delete(ip.address);
    this.#silenced?.delete(ip.address);
    return removed;
  }

  #enter(method: DrainCall, detail: string, record = true): void {
    if (record) this.journal.push(`${method} ${detail}`.trim());
    const failure = this.#failures.get(method);
    if (failure !== undefined) {
      this.#failures.delete(method);
      throw failure;
    }
  }
}
