// An AccessLogWatcher whose requests a test adds by hand: request(n) makes n client requests arrive now,
// excluded(reason, n) n lines that are not evidence (the agent's health checks, a status 500…).

import {BatonError} from '../../agent/errors.js';
import type {AccessLogCheck, AccessLogWatcher} from '../../agent/ports.js';
import {addToTally, emptyTally, type Exclusion, type RequestTally} from '../../agent/request-evidence.js';

export class FakeAccessLog implements AccessLogWatcher {
  readable = true;
  /** The peer's addresses each countRequests was given, in order. */
  readonly peerAddresses: Array<readonly string[]> = [];
  /** Whether requests are arriving at all (e.g. the web server is up). */
  #listeners = new Set<(n: number, reason: Exclusion | undefined) => void>();

  async check(): Promise<AccessLogCheck> {
    if (!this.readable) throw new BatonError('ACCESS_LOG_UNREADABLE', '/var/log/nginx/access.log: missing (injected)');
    return {sampled: 20, parsed: 20, showsLocalAddress: false};
  }

  /** n client requests arrive now, seen by every watcher counting at this moment. */
  request(n = 1): void {
    for (const listener of this.#listeners) listener(n, undefined);
  }

  /** n lines arrive now that are not evidence, for `reason`. */
  excluded(reason: Exclusion, n = 1): void {
    for (const listener of this.#listeners) listener(n, reason);
  }

  async *countRequests(_afterWallMs: number, signal: AbortSignal, peerAddresses: readonly string[] = []): AsyncIterable<RequestTally> {
    this.peerAddresses.push(peerAddresses);
    let tally = emptyTally();
    let count = 0;
    let wake: (() => void) | undefined;
    const listener = (n: number, reason: Exclusion | undefined): void => {
      for (let i = 0; i < n; i++) tally = addToTally(tally, reason);
      count += n;
      wake?.();
    };
    this.#listeners.add(listener);
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), {once: true}));
    try {
      let reported = 0;
      while (!signal.aborted) {
        if (count > reported) {
          reported = count;
          yield tally;
          continue;
        }
        await Promise.race([aborted, new Promise<void>((resolve) => {
          wake = resolve;
        })]);
      }
    } finally {
      this.#listeners.delete(listener);
    }
  }
}
