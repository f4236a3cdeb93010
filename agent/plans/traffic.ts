// The confirmation evidence: requests counted in the access log from the moment the IP came up on this host,
// which confirm-traffic waits on.

import {BatonError, describeError} from '../errors.js';
import type {AccessLogWatcher, Clock} from '../ports.js';

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
