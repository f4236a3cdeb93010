// Rehearsal aids (`baton rehearse --with-failure`): the host holding the IP plays a dying active host by
// bringing its service link down for a while, and up again by itself (its peer may not reach it meanwhile).
// Every aid (this, the peer's drop-link, switchover --pause-after) works only where rehearsal.enabled is true, and
// `baton rehearse --with-failure` asks both hosts whether theirs does before its first step.

import type {Config} from './config/schema.js';
import {hostText, type FailResult, type HostLabel, type RehearsalAids} from './control-protocol.js';
import {BatonError, describeError, isBatonError} from './errors.js';
import type {Logger} from './log.js';
import type {JsonObject} from './peer/beacon-codec.js';
import type {Clock, NetworkDriver} from './ports.js';
import type {PeerView} from './state-machine.js';

// A rehearsal's link drop lasts at most this long; the host brings its link back by itself after it.
export const MAX_DROP_S = 300;
// The peer's answer to `rehearsal`: the request is resent every 100 ms (peer-link.ts), so 3 s is 30 tries. A peer
// whose beacons keep arriving all that time and which answers none of them does not know the op.
export const REHEARSAL_ASK_DEADLINE_MS = 3000;

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

export interface RehearsalAidsDeps {
  readonly self: HostLabel;
  /** This agent's rehearsal.enabled. */
  readonly enabled: boolean;
  readonly peerLabel: () => HostLabel;
  /** Whether valid beacons from the peer arrive (dead_after_ms). */
  readonly peerAlive: () => boolean;
  /** The `rehearsal` peer request; throws PEER_UNREACHABLE when no answer came in REHEARSAL_ASK_DEADLINE_MS. */
  readonly askPeer: () => Promise<JsonObject>;
}

/**
 * Whether each host's configuration enables the rehearsal aids, each by its own word. Throws PEER_UNREACHABLE when
 * the peer is not alive or goes silent, PEER_UNSUPPORTED when it is alive but does not answer (an agent older than
 * the op), and STEP_FAILED when it answers with an error or without the boolean.
 */
export async function askRehearsalAids(deps: RehearsalAidsDeps): Promise<RehearsalAids> {
  const self = {host: deps.self, enabled: deps.enabled};
  if (!deps.peerAlive()) {
    throw new BatonError('PEER_UNREACHABLE', `the ${hostText(deps.peerLabel())} is not alive (no valid beacon from it), so whether it ` +
      'enables the rehearsal aids cannot be asked; a rehearsal needs both hosts: see `baton status`');
  }
  let answer: JsonObject;
  try {
    answer = await deps.askPeer();
  } catch (error) {
    // Its beacons arrived throughout and none of the retries was answered: its agent drops the request unread.
    if (isBatonError(error, 'PEER_UNREACHABLE') && deps.peerAlive()) {
      throw new BatonError('PEER_UNSUPPORTED', `the ${hostText(deps.peerLabel())} is alive but did not answer the rehearsal request ` +
        `within ${REHEARSAL_ASK_DEADLINE_MS} ms: its baton-agent is older than this one and does not support it (it rejects it as ` +
        'malformed, `field op: expected a request operation`, counted in its `baton status`); upgrade baton there', {cause: error});
    }
    if (isBatonError(error, 'PEER_UNREACHABLE')) throw error;
    // Whatever else the peer answered is its own failure, not this agent's.
    throw new BatonError('STEP_FAILED', `the ${hostText(deps.peerLabel())} failed the rehearsal request: ${describeError(error)}`, {cause: error});
  }
  const enabled = answer['enabled'];
  if (typeof enabled !== 'boolean') {
    throw new BatonError('STEP_FAILED', `the ${hostText(deps.peerLabel())} answered the rehearsal request without saying whether it enables the aids`);
  }
  return {self, peer: {host: deps.peerLabel(), enabled}};
}
