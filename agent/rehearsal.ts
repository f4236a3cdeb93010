// Rehearsal aids (`baton rehearse --with-failure`): the host holding the IP plays a dying active host by
// bringing its service link down for a while, and up again by itself (its peer may not reach it meanwhile).
// Every aid (this, the peer's drop-link, switchover --pause-after) works only where rehearsal.enabled is true.

import type {Config} from './config/schema.js';
import type {FailResult, HostLabel} from './control-protocol.js';
import {BatonError} from './errors.js';
import type {Logger} from './log.js';
import type {Clock, NetworkDriver} from './ports.js';
import type {PeerView} from './state-machine.js';

// A rehearsal's link drop lasts at most this long; the host brings its link back by itself after it.
export const MAX_DROP_S = 300;

/**
 * Throws BatonError BAD_REQUEST, naming the key, when this agent's configuration does not enable the rehearsal aids.
 * @param aid what was asked, in the words the operator used
 */
export function requireRehearsal(config: Pick<Config, 'file' | 'rehearsal'>, aid: string): void {
  if (config.rehearsal.enabled) return;
  throw new BatonError('BAD_REQUEST', `${aid} is a rehearsal aid, and ${config.file} does not enable it: set ` +
    '`rehearsal: {enabled: true}` there (on a pair kept for rehearsals, not in production) and restart the agent');
}

export interface LinkDrop {
  readonly network: NetworkDriver;
  readonly iface: string;
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted when the agent stops; the link then stays as it is. */
  readonly signal: AbortSignal;
}

/**
 * Brings the link down now and schedules it up again after `seconds`, which the control and peer protocols have
 * checked to be 1..MAX_DROP_S.
 */
export async function dropLink(drop: LinkDrop, seconds: number): Promise<void> {
  const {network, iface, clock, log, signal} = drop;
  await network.setLink(iface, false);
  log.warning(`(rehearsal) ${iface} down for ${seconds} s: this host plays a dying active host`);
  void clock.sleep(seconds * 1000, signal).then(async () => {
    await network.setLink(iface, true);
    log.notice(`(rehearsal) ${iface} up again`);
  }, () => undefined);
}

export interface FailActiveDeps {
  readonly drop: LinkDrop;
  /** Whether this host serves the IP now. */
  readonly serving: () => Promise<boolean>;
  readonly self: HostLabel;
  readonly peer: PeerView | undefined;
  readonly peerLabel: HostLabel;
  /** Asks the peer to drop its own link (the drop-link peer request). */
  readonly askPeer: (seconds: number) => Promise<unknown>;
}

/** The host holding the IP, this one or the peer, drops its service link for `seconds`. */
export async function failActive(deps: FailActiveDeps, seconds: number): Promise<FailResult> {
  if (await deps.serving()) {
    await dropLink(deps.drop, seconds);
    return {host: deps.self, seconds};
  }
  if (deps.peer?.alive === true && deps.peer.holdsIp) {
    await deps.askPeer(seconds);
    return {host: deps.peerLabel, seconds};
  }
  throw new BatonError('STEP_FAILED', 'neither host holds the service IP: there is no active host to fail');
}
