// What each switch step does on the host that runs it, in both service modes: apply, then verify (only an
// observed effect counts as done), and undo. Also the traffic counter that confirm-traffic waits on.

import type {Config} from './config/schema.js';
import {BatonError, describeError} from './errors.js';
import type {AccessLogWatcher, Clock, NetworkDriver} from './ports.js';
import type {PeerView} from './state-machine.js';
import type {SwitchStepName} from './switch-plan.js';

export interface StepHost {
  readonly config: Config;
  readonly network: NetworkDriver;
}

/** The actions of a step, without verification: what --dry-run records. */
export async function applyStep(step: SwitchStepName, host: StepHost): Promise<void> {
  const {network, config} = host;
  const {ip, interface: iface, mode} = config.service;
  switch (step) {
    case 'backup-net-down':
      if (mode === 'link') await network.setLink(iface, false);
      else await network.removeAddress(ip);
      return;
    case 'assign-ip':
      // In address mode an added address answers ARP at once: it must wait for backup-net-up.
      if (mode === 'link') await network.addAddress(ip);
      return;
    case 'primary-net-down':
      if (mode === 'link') await network.setLink(iface, false);
      else await network.removeAddress(ip);
      return;
    case 'backup-net-up': {
      if (mode === 'link') await network.setLink(iface, true);
      else await network.addAddress(ip);
      // Announced at once, checked after: the first gratuitous ARP is what moves the clients, and every
      // millisecond before it is service gap. verifyStep still decides whether the step is done.
      await network.announce(ip);
      return;
    }
    case 'confirm-traffic':
      return;
  }
}

/** Checks that the step's effect is observable now; throws STEP_FAILED saying what was found instead. */
export async function verifyStep(step: SwitchStepName, host: StepHost): Promise<void> {
  const {network, config} = host;
  const {ip, interface: iface, mode} = config.service;
  const expect = (ok: boolean, what: string): void => {
    if (!ok) throw new BatonError('STEP_FAILED', `${step}: ${what}`);
  };
  switch (step) {
    case 'backup-net-down':
      if (mode === 'link') expect(!(await network.isLinkUp(iface)), `${iface} is still up`);
      else expect(!(await network.hasAddress(ip)), `${ip.cidr} is still on ${iface}`);
      return;
    case 'assign-ip':
      if (mode === 'link') expect(await network.hasAddress(ip), `${ip.cidr} is not on ${iface} after adding it`);
      else expect(await network.isLinkUp(iface), `${iface} is down: the service IP could not be brought up on it`);
      return;
    case 'primary-net-down':
      // What matters is that this host no longer answers for the IP; the in-process interface list tells it
      // without spawning `ip`, a few milliseconds off the service gap.
      expect(!(await network.isServing(ip)), mode === 'link' ? `${iface} still serves ${ip.cidr}` : `${ip.cidr} is still on ${iface}`);
      return;
    case 'backup-net-up':
      expect(await network.hasAddress(ip), `${ip.cidr} is not on ${iface}`);
      if (mode === 'link') expect(await network.isLinkUp(iface), `${iface} is not up`);
      return;
    case 'confirm-traffic':
      return;
  }
}

/** Undoes a step this host applied, and verifies the undo. Idempotent. */
export async function undoStep(step: SwitchStepName, host: StepHost): Promise<void> {
  const {network, config} = host;
  const {ip, interface: iface, mode} = config.service;
  const expect = (ok: boolean, what: string): void => {
    if (!ok) throw new BatonError('STEP_FAILED', `undo ${step}: ${what}`);
  };
  switch (step) {
    case 'backup-net-down':
      if (mode === 'link') {
        await network.setLink(iface, true);
        expect(await network.isLinkUp(iface), `${iface} did not come back up`);
      }
      return;
    case 'assign-ip':
      if (mode === 'link') {
        await network.removeAddress(ip);
        expect(!(await network.hasAddress(ip)), `${ip.cidr} is still on ${iface}`);
      }
      return;
    case 'primary-net-down':
      if (mode === 'link') await network.setLink(iface, true);
      else await network.addAddress(ip);
      expect(await network.hasAddress(ip), `${ip.cidr} is not back on ${iface}`);
      if (mode === 'link') expect(await network.isLinkUp(iface), `${iface} did not come back up`);
      await network.announce(ip);
      return;
    case 'backup-net-up':
      if (mode === 'link') {
        await network.setLink(iface, false);
        expect(!(await network.isLinkUp(iface)), `${iface} is still up`);
      } else {
        await network.removeAddress(ip);
        expect(!(await network.hasAddress(ip)), `${ip.cidr} is still on ${iface}`);
      }
      return;
    case 'confirm-traffic':
      return;
  }
}

/** What a giver whose switch broke off did about the IP; `why` says why it did not take it back. */
export type TakeBack = {readonly tookBack: true} | {readonly tookBack: false; readonly why: string};

/**
 * Undoes primary-net-down on a giver whose switch broke off, but only when this host is the one to decide and the
 * IP is free. A live peer that holds the IP keeps it. A live primary decides itself (it takes a free IP at its
 * start, or as a standby beside a standby, see state-machine.ts), so a backup leaves it to it: two hosts that
 * restart together would otherwise both find the IP free and both take it. Otherwise the IP is taken back when
 * nothing answers an ARP probe for it: a taker whose agent died after backup-net-up keeps the address in its
 * kernel and still serves. Throws when it cannot tell (the probe failed) or the undo failed.
 *
 * Link mode: the giver's address sits on its downed link, and arping cannot probe through a downed link. The link
 * may only come up without the address (with it, this host would answer before knowing it may), so the address
 * comes off, the link comes up, and the address goes back on only if taken back. Otherwise the link stays up
 * without it, as a standby's is.
 */
export async function takeBackIfFree(host: StepHost, peer: PeerView | undefined): Promise<TakeBack> {
  const {network, config} = host;
  const {ip, interface: iface, mode} = config.service;
  if (mode === 'link' && !(await network.isLinkUp(iface))) {
    await network.removeAddress(ip);
    await network.setLink(iface, true);
  }
  if (peer?.alive === true && peer.holdsIp) return {tookBack: false, why: `the peer ${peer.state} holds the service IP`};
  if (peer?.alive === true && config.node === 'backup') return {tookBack: false, why: `the primary is alive (${peer.state}) and takes the service IP itself`};
  if (await network.isAddressInUse(ip)) return {tookBack: false, why: `${ip.address} answers ARP from another host`};
  if (mode === 'link') await network.addAddress(ip);
  await undoStep('primary-net-down', host);
  return {tookBack: true};
}

/**
 * Whether this host serves the IP as clients see it: the address is on the service interface and the interface
 * is up and running. Read from the kernel each time (the driver's in-process interface list), never remembered.
 */
export function isServing(host: StepHost): Promise<boolean> {
  return host.network.isServing(host.config.service.ip);
}

/**
 * Counts requests in the access log from the moment it is started, in the background, so that requests arriving
 * between backup-net-up and the confirm-traffic request are not missed.
 */
export class TrafficCounter {
  readonly #abort = new AbortController();
  readonly #startedAt: number;
  readonly #clock: Clock;
  #count = 0;
  #failure: unknown;
  #wake: (() => void) | undefined;

  constructor(watcher: AccessLogWatcher, clock: Clock) {
    this.#clock = clock;
    this.#startedAt = clock.now();
    void this.#run(watcher, clock.wallNow());
  }

  get count(): number {
    return this.#count;
  }

  /** Resolves with the count once it reaches `needed`; throws TRAFFIC_NOT_CONFIRMED at the deadline (from start). */
  async waitFor(needed: number, timeoutMs: number, onProgress?: (count: number, elapsedMs: number) => void): Promise<number> {
    for (;;) {
      if (this.#failure !== undefined) {
        throw new BatonError('ACCESS_LOG_UNREADABLE', `the access log could not be followed: ${describeError(this.#failure)}`, {cause: this.#failure});
      }
      if (this.#count >= needed) return this.#count;
      const elapsed = this.#clock.now() - this.#startedAt;
      if (elapsed >= timeoutMs) {
        throw new BatonError('TRAFFIC_NOT_CONFIRMED',
          `${this.#count} of ${needed} requests arrived within ${Math.round(timeoutMs / 1000)} s: is the web server running and reachable on the service IP?`);
      }
      const woke = new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      // Wake on a new count, or at least every 250 ms to report progress and check the deadline.
      await Promise.race([woke, this.#clock.sleep(Math.min(250, timeoutMs - elapsed))]);
      onProgress?.(this.#count, this.#clock.now() - this.#startedAt);
    }
  }

  stop(): void {
    this.#abort.abort();
  }

  async #run(watcher: AccessLogWatcher, afterWallMs: number): Promise<void> {
    try {
      for await (const count of watcher.countRequests(afterWallMs, this.#abort.signal)) {
        this.#count = count;
        this.#wake?.();
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#failure = error;
      this.#wake?.();
    }
  }
}
