// Rehearsal aids (`baton rehearse --with-failure`): the host holding the IP plays a dying active host by
// bringing its service link down for a while, and up again by itself (its peer may not reach it meanwhile).

import {BatonError} from './errors.js';
import type {Logger} from './log.js';
import type {Clock, NetworkDriver} from './ports.js';

// A rehearsal's link drop lasts at most this long; the host brings its link back by itself after it.
export const MAX_DROP_S = 300;

export interface LinkDrop {
  readonly network: NetworkDriver;
  readonly iface: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted when the agent stops; the link then stays as it is. */
  readonly signal: AbortSignal;
}

/** Brings the link down now and schedules it up again after `seconds` (1..MAX_DROP_S, else BAD_REQUEST). */
export async function dropLink(drop: LinkDrop, seconds: number): Promise<void> {
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_DROP_S) {
    throw new BatonError('BAD_REQUEST', `drop-link: seconds must be an integer 1..${MAX_DROP_S}`);
  }
  const {network, iface, clock, log, signal} = drop;
  await network.setLink(iface, false);
  log.warning(`(rehearsal) ${iface} down for ${seconds} s: this host plays a dying active host`);
  void clock.sleep(seconds * 1000, signal).then(async () => {
    await network.setLink(iface, true);
    log.notice(`(rehearsal) ${iface} up again`);
  }, () => undefined);
}
