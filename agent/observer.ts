// What this host's interface shows about the service IP, read from the kernel once a second and after every
// change the agent makes: level-triggered, so a repair is driven by what is there, not by what was done. The last
// reading is what beacons report.

import {describeError} from './errors.js';
import type {Logger} from './log.js';
import type {Clock, NetworkDriver} from './ports.js';
import {findServing, presenceOf} from './net/service-addresses.js';
import type {ServiceIp} from './state-machine.js';

// One look a second keeps the agent well under 1 % CPU (the read spawns no process), and a second is the
// resolution of what the peer learns from us.
const OBSERVE_EVERY_MS = 1000;

export class Observer {
  readonly #network: NetworkDriver;
  readonly #ips: readonly ServiceIp[];
  readonly #log: Logger;
  #holdsIp = false;
  #partlyHeld = false;

  constructor(network: NetworkDriver, ips: readonly ServiceIp[], log: Logger) {
    this.#network = network;
    this.#ips = ips;
    this.#log = log;
  }

  /** Whether this host served the IP at the last reading: every service address (dual stack: both). */
  get holdsIp(): boolean {
    return this.#holdsIp;
  }

  /** Whether this host served some of a dual-stack service's addresses at the last reading, but not all. */
  get partlyHeld(): boolean {
    return this.#partlyHeld;
  }

  /** Reads the interface now; a failed read counts as not serving, and is logged. */
  async refresh(): Promise<boolean> {
    try {
      const presence = presenceOf(await findServing(this.#network, this.#ips));
      this.#holdsIp = presence === 'all';
      this.#partlyHeld = presence === 'some';
    } catch (error) {
      this.#log.error(`(network) cannot observe the service IP: ${describeError(error)}`);
      this.#holdsIp = false;
      this.#partlyHeld = false;
    }
    return this.#holdsIp;
  }

  /**
   * Reads the interface every second until `signal` aborts, and hands each reading to `seen`, with whether the
   * service interface runs (a failed read counts as running: only a reading says it does not).
   */
  async watch(clock: Clock, signal: AbortSignal, iface: string, seen: (holdsIp: boolean, interfaceRunning: boolean) => void): Promise<void> {
    while (!signal.aborted) {
      try {
        await clock.sleep(OBSERVE_EVERY_MS, signal);
      } catch {
        return;
      }
      const holdsIp = await this.refresh();
      seen(holdsIp, holdsIp || await this.#network.isRunning(iface).catch(() => true));
    }
  }
}
