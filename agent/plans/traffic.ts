// The confirmation evidence: requests counted in the access log from the moment the IP came up on this host,
// which confirm-traffic waits on.

import {BatonError, describeError} from '../errors.js';
import type {AccessLogWatcher, Clock} from '../ports.js';
import {describeExclusions, emptyTally, type RequestTally, type StatusRange} from '../request-evidence.js';

const ARRIVALS_EVERY_MS = 200;

/**
 * Counts requests in the access log from the moment it is started, in the background, so that requests arriving
 * between backup-net-up and the confirm-traffic request are not missed.
 */
export class TrafficCounter {
  readonly #abort = new AbortController();
  readonly #startedAt: number;
  readonly #clock: Clock;
  readonly #statuses: readonly StatusRange[];
  #tally: RequestTally = emptyTally();
  #failure: unknown;
  #wake: (() => void) | undefined;

  /**
   * `statuses`: confirm.statuses, only to say what was not counted. `peerAddresses`: the other host's own addresses,
   * not counted as clients.
   */
  constructor(watcher: AccessLogWatcher, clock: Clock, statuses: readonly StatusRange[], peerAddresses: readonly string[] = []) {
    this.#clock = clock;
    this.#statuses = statuses;
    this.#startedAt = clock.now();
    void this.#run(watcher, clock.wallNow(), peerAddresses);
  }

  get count(): number {
    return this.#tally.counted;
  }

  /**
   * Resolves with the count once it reaches `needed` and, with `arrivals`, once the kernel has also counted a new
   * connection to the service IP from another host; throws TRAFFIC_NOT_CONFIRMED at the deadline (from start).
   */
  async waitFor(needed: number, timeoutMs: number, onProgress?: (count: number, elapsedMs: number) => void,
    arrivals?: {readonly count: () => Promise<number>; readonly where: string}): Promise<number> {
    let arrived = 0;
    let askedAt = -Infinity;
    for (;;) {
      if (this.#failure !== undefined) {
        throw new BatonError('ACCESS_LOG_UNREADABLE', `the access log could not be followed: ${describeError(this.#failure)}`, {cause: this.#failure});
      }
      const count = this.#tally.counted;
      // The kernel is asked only once the log is satisfied, and at most every ARRIVALS_EVERY_MS: it costs an nft run.
      if (count >= needed && arrivals !== undefined && arrived === 0 && this.#clock.now() - askedAt >= ARRIVALS_EVERY_MS) {
        askedAt = this.#clock.now();
        arrived = await arrivals.count();
      }
      if (count >= needed && (arrivals === undefined || arrived > 0)) return count;
      const elapsed = this.#clock.now() - this.#startedAt;
      if (elapsed >= timeoutMs) {
        if (count >= needed && arrivals !== undefined) {
          throw new BatonError('TRAFFIC_NOT_CONFIRMED',
            `${count} client request(s) arrived within ${Math.round(timeoutMs / 1000)} s, but the kernel saw no new connection to ${arrivals.where} ` +
            'from another host: they reached this host on another of its addresses, not through the service IP');
        }
        const left = describeExclusions(this.#tally, this.#statuses);
        throw new BatonError('TRAFFIC_NOT_CONFIRMED',
          `${count} of ${needed} client requests arrived within ${Math.round(timeoutMs / 1000)} s` + (left === '' ? '' : ` (${left})`) +
          ': is the web server running, answering well, and reachable by clients on the service IP?');
      }
      const woke = new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      // Wake on a new count, or at least every 250 ms to report progress and check the deadline.
      await Promise.race([woke, this.#clock.sleep(Math.min(250, timeoutMs - elapsed))]);
      onProgress?.(this.#tally.counted, this.#clock.now() - this.#startedAt);
    }
  }

  stop(): void {
    this.#abort.abort();
  }

  async #run(watcher: AccessLogWatcher, afterWallMs: number, peerAddresses: readonly string[]): Promise<void> {
    try {
      for await (const tally of watcher.countRequests(afterWallMs, this.#abort.signal, peerAddresses)) {
        this.#tally = tally;
        this.#wake?.();
      }
    } catch (error) {
      if (!this.#abort.signal.aborted) this.#failure = error;
      this.#wake?.();
    }
  }
}
