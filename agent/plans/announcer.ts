// Gratuitous ARP (unsolicited NA for IPv6) for every service address: once at once, once more a little later.

import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock, NetworkDriver} from '../ports.js';
import {announceAll, describeAddresses, findAddresses} from '../net/service-addresses.js';
import type {ServiceIp} from '../state-machine.js';

// The first announcement moves traffic at once; a second follows after this delay for neighbours and switch
// ports that missed the first. Neighbours ignore an update within their locktime (Linux default 1 s) of the
// previous one, so the repeat comes just after it.
export const ANNOUNCE_REPEAT_MS = 1100;

export interface Announcer {
  /** Announces now (throws COMMAND_FAILED when it could not) and schedules the repeat. */
  announce(): Promise<void>;
}

export interface AnnouncerDeps {
  readonly network: NetworkDriver;
  readonly ips: readonly ServiceIp[];
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted when the agent stops: a pending repeat is dropped. */
  readonly signal: AbortSignal;
}

export function createAnnouncer(deps: AnnouncerDeps): Announcer {
  const {network, ips, clock, log, signal} = deps;
  const repeat = async (): Promise<void> => {
    try {
      await clock.sleep(ANNOUNCE_REPEAT_MS, signal);
      // An address that left in the meantime (a rollback, a release) is not announced: that would pull clients to
      // a host that no longer answers for it.
      const {present} = await findAddresses(network, ips);
      if (present.length === 0) return;
      await announceAll(network, present);
      log.debug(`(network) announced ${describeAddresses(present)} again`);
    } catch (error) {
      if (!signal.aborted) log.warning(`(network) repeated announcement of ${describeAddresses(ips)} failed: ${describeError(error)}`);
    }
  };
  return {
    async announce() {
      await announceAll(network, ips);
      void repeat();
    },
  };
}
