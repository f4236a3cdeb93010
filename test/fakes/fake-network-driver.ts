// A NetworkDriver over an in-memory segment: drivers on one FakeSegment see each other's addresses,
// so isAddressInUse answers like an ARP probe would. Keeps an ordered journal and injects failures.

import {BatonError} from '../../agent/errors.js';
import type {NetworkDriver} from '../../agent/ports.js';
import type {ServiceIp} from '../../agent/state-machine.js';

export type DriverCall = 'hasAddress' | 'addAddress' | 'removeAddress' | 'setLink' | 'isLinkUp' | 'announce' | 'isAddressInUse';

export class FakeSegment {
  readonly drivers: FakeNetworkDriver[] = [];

  /** Hosts whose link is up with the address on it: the kernels' view of who holds it. */
  holders(address: string): FakeNetworkDriver[] {
    return this.drivers.filter((d) => d.linkUp && d.addresses.has(address));
  }

  /** Of those, the ones that answer ARP for it: a drain's hold keeps a giver silent (fake-drain-driver.ts). */
  answering(address: string): FakeNetworkDriver[] {
    return this.holders(address).filter((d) => !d.silenced.has(address));
  }
}

export class FakeNetworkDriver implements NetworkDriver {
  readonly name: string;
  readonly addresses = new Set<string>();
  /** Addresses this host holds without answering ARP for them (a drain's hold). */
  readonly silenced = new Set<string>();
  linkUp = true;
  readonly journal: string[] = [];
  readonly #segment: FakeSegment;
  readonly #failures = new Map<DriverCall, BatonError>();

  constructor(name: string, segment: FakeSegment) {
    this.name = name;
    this.#segment = segment;
    segment.drivers.push(this);
  }

  /** The next call of `method` throws `error` (once). */
  failNext(method: DriverCall, error = new BatonError('COMMAND_FAILED', `${method} failed (injected)`)): void {
    this.#failures.set(method, error);
  }

  async hasAddress(ip: ServiceIp): Promise<boolean> {
    this.#enter('hasAddress', ip.cidr);
    return this.addresses.has(ip.address);
  }

  async addAddress(ip: ServiceIp): Promise<void> {
    this.#enter('addAddress', ip.cidr);
    this.addresses.add(ip.address);
  }

  async removeAddress(ip: ServiceIp): Promise<void> {
    this.#enter('removeAddress', ip.cidr);
    this.addresses.delete(ip.address);
  }

  async setLink(iface: string, up: boolean): Promise<void> {
    this.#enter('setLink', `${iface} ${up ? 'up' : 'down'}`);
    this.linkUp = up;
  }

  async isLinkUp(iface: string): Promise<boolean> {
    this.#enter('isLinkUp', iface);
    return this.linkUp;
  }

  async announce(ip: ServiceIp): Promise<void> {
    this.#enter('announce', ip.cidr);
  }

  async isServing(ip: ServiceIp): Promise<boolean> {
    return this.linkUp && this.addresses.has(ip.address);
  }

  async isRunning(): Promise<boolean> {
    return this.linkUp;
  }

  async isAddressInUse(ip: ServiceIp): Promise<boolean> {
    this.#enter('isAddressInUse', ip.cidr);
    // arping cannot probe through a downed interface: it exits 2, which the ip driver throws.
    if (!this.linkUp) throw new BatonError('COMMAND_FAILED', `\`arping -D -I eth0 ${ip.address}\` exited 2: Interface "eth0" is down`);
    return this.#segment.answering(ip.address).some((d) => d !== this);
  }

  /** Calls other than the read-only observations, in order: what this host did to the network. */
  actions(): string[] {
    return this.journal.filter((line) => !line.startsWith('hasAddress') && !line.startsWith('isLinkUp'));
  }

  #enter(method: DriverCall, detail: string): void {
    this.journal.push(`${method} ${detail}`);
    const failure = this.#failures.get(method);
    if (failure !== undefined) {
      this.#failures.delete(method);
      throw failure;
    }
  }
}
