// Gratuitous ARP (unsolicited NA for IPv6) for the service IP: once at once, once more a little later.

import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock, NetworkDriver} from '../ports.js';
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
  readonly ip: ServiceIp;
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted when the agent stops: a pending repeat is dropped. */
  readonly signal: AbortSignal;
}

export function createAnnouncer(deps: AnnouncerDeps): Announcer {
  const {network, ip, clock, log, signal} = deps;
  const repeat = async (): Promise<void> => {
    try {
      await clock.sleep(ANNOUNCE_REPEAT_MS, signal);
      // The IP left in the meantime (a rollback, a release): announcing it now would pull clients to a host
      // that no longer answers.
      if (!(await network.hasAddress(ip))) return;
      await network.announce(ip);
      log.debug(`(network) announced ${ip.cidr} again`);
    } catch (error) {
      if (!signal.aborted) log.warning(`(network) repeated announcement of ${ip.cidr} failed: ${describeError(error)}`);
    }
  };
  return {
    async announce() {
      await network.announce(ip);
      void repeat();
    },
  };
}
