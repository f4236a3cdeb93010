// A DrainDriver in memory: what a host holds and forwards, the connections left on it (set by the test, or
// closed by the graceful command), an ordered journal of what was done, and injected failures.

import {BatonError} from '../../agent/errors.js';
import type {DrainDriver} from '../../agent/ports.js';
import type {ServiceIp} from '../../agent/state-machine.js';

export type DrainCall = 'hold' | 'unhold' | 'forward' | 'unforward' | 'openConnections';

export class FakeDrainDriver implements DrainDriver {
  held: string | undefined;
  forwardingTo: string | undefined;
  /** Connections on the service IP here; the test sets it, and may close them over time. */
  connections = 0;
  /** Why this host cannot drain, or undefined. */
  cannot: string | undefined;
  own = '192.0.2.1';
  readonly journal: string[] = [];
  readonly #failures = new Map<DrainCall, BatonError>();

  /** The host's addresses that hold() keeps from answering ARP, as the real hold's arp table does. */
  readonly #silenced: Set<string> | undefined;

  constructor(own?: string, silenced?: Set<string>) {
    if (own !== undefined) this.own = own;
    this.#silenced = silenced;
  }

  failNext(method: DrainCall, error = new BatonError('COMMAND_FAILED', `${method} failed (injected)`)): void {
    this.#failures.set(method, error);
  }

  async unavailable(): Promise<string | undefined> {
    return this.cannot;
  }

  async ownAddress(): Promise<string | undefined> {
    return this.own;
  }

  async hold(ip: ServiceIp, own: string): Promise<void> {
    this.#enter('hold', `${ip.address} as ${own}`);
    this.held = ip.address;
    this.#silenced?.add(ip.address);
  }

  async isHolding(ip: ServiceIp): Promise<boolean> {
    return this.held === ip.address;
  }

  async unhold(ip: ServiceIp): Promise<void> {
    this.#enter('unhold', ip.address);
    this.held = undefined;
    this.#silenced?.delete(ip.address);
  }

  async forward(ip: ServiceIp, giver: string): Promise<void> {
    this.#enter('forward', `${ip.address} to ${giver}`);
    this.forwardingTo = giver;
  }

  async isForwarding(): Promise<boolean> {
    return this.forwardingTo !== undefined;
  }

  async unforward(): Promise<void> {
    this.#enter('unforward', '');
    this.forwardingTo = undefined;
  }

  async openConnections(): Promise<number> {
    this.#enter('openConnections', '', false);
    return this.connections;
  }

  async removeLeftovers(ip: ServiceIp): Promise<string[]> {
    const removed: string[] = [];
    if (this.forwardingTo !== undefined) removed.push('forward');
    if (this.held === ip.address) removed.push('hold');
    this.forwardingTo = undefined;
    this.held = undefined;
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
