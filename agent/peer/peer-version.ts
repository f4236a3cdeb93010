// The baton version of the peer's agent, for status: asked with the peer request `version` once the peer hears
// this agent, and again after each restart of the peer's agent.
//
// Why a request and not a beacon field: beacon-codec.ts refuses a body with a field it does not know, so to an
// agent of baton 0.1.0 a beacon carrying a version would be malformed, and during a rolling upgrade it would count
// its upgraded peer as dead. A request it does not know costs it only a few `malformed` rejections, counted.

import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock} from '../ports.js';
import type {Role} from '../state-machine.js';
import type {Beacon, JsonObject} from './beacon-codec.js';

// The peer answers within a round trip; a second (about ten resends at the 100 ms request retry) covers a lost
// datagram or two, and bounds what an agent of 0.1.0, which never answers, counts as malformed.
export const VERSION_ASK_DEADLINE_MS = 1000;
// An unanswered question is asked again this much later, not at the next beacon: the peer may run baton 0.1.0 for
// the whole of a rolling upgrade, and each ask costs it up to ten rejections.
export const VERSION_ASK_AGAIN_MS = 300_000;
// Heartbeat intervals from the first beacon of a peer run to the question. By then this agent's beacons have
// acknowledged the peer's, so with replay_protection: acknowledged the peer takes the request (it refuses requests
// from a peer it does not count as alive yet).
const SETTLE_INTERVALS = 2;
// What `baton --version` prints: 0.1.0, 1.2.3-rc.1, 1.2.3+deb12u1. Anything else is not shown.
const VERSION_PATTERN = /^[0-9A-Za-z.+~-]{1,40}$/;

export interface PeerVersionDeps {
  /** Sends the peer request `version`; resolves with its result, rejects when unanswered. */
  readonly ask: () => Promise<JsonObject>;
  readonly clock: Clock;
  readonly log: Logger;
  /** This agent's boot id: a beacon acknowledging a datagram of this run shows the peer hears this agent. */
  readonly selfBoot: string;
  readonly peerRole: Role;
  readonly intervalMs: number;
}

export class PeerVersion {
  readonly #deps: PeerVersionDeps;
  #boot: string | undefined;
  #firstSeenAt = 0;
  #version: string | undefined;
  #askedAt: number | undefined;
  #asking = false;

  constructor(deps: PeerVersionDeps) {
    this.#deps = deps;
  }

  /** A valid beacon from the peer: a new run of it forgets the old run's version; asks when it is time. */
  seen(beacon: Beacon): void {
    const {clock, selfBoot, intervalMs} = this.#deps;
    const now = clock.now();
    if (beacon.boot !== this.#boot) {
      this.#boot = beacon.boot;
      this.#firstSeenAt = now;
      this.#version = undefined;
      this.#askedAt = undefined;
    }
    if (this.#version !== undefined || this.#asking || beacon.ack?.boot !== selfBoot) return;
    if (now - this.#firstSeenAt < SETTLE_INTERVALS * intervalMs) return;
    if (this.#askedAt !== undefined && now - this.#askedAt < VERSION_ASK_AGAIN_MS) return;
    this.#askedAt = now;
    this.#asking = true;
    void this.#ask(beacon.boot).finally(() => {
      this.#asking = false;
    });
  }

  /** The version of the peer run `boot`, once it has said. */
  of(boot: string | undefined): string | undefined {
    return boot !== undefined && boot === this.#boot ? this.#version : undefined;
  }

  async #ask(boot: string): Promise<void> {
    const {log, peerRole} = this.#deps;
    let result: JsonObject;
    try {
      result = await this.#deps.ask();
    } catch (error) {
      if (this.#boot === boot) {
        log.info(`(peer) the ${peerRole} did not say which baton it runs (${describeError(error)}); an agent of baton 0.1.0 ` +
          `does not know the question. Asked again in ${VERSION_ASK_AGAIN_MS / 60_000} min`);
      }
      return;
    }
    if (this.#boot !== boot) return;
    const version = result['version'];
    if (typeof version === 'string' && VERSION_PATTERN.test(version)) {
      this.#version = version;
    } else {
      // The peer's text goes to the log escaped: JSON.stringify of a sanitised result.
      log.warning(`(peer) the ${peerRole} answered the version question with no version: ${JSON.stringify(result).slice(0, 120)}`);
    }
  }
}
