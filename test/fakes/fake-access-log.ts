// An AccessLogWatcher whose requests a test adds by hand: request(n) makes n requests arrive now.

import {BatonError} from '../../agent/errors.js';
import type {AccessLogWatcher} from '../../agent/ports.js';

export class FakeAccessLog implements AccessLogWatcher {
  readable = true;
  /** Whether requests are arriving at all (e.g. the web server is up). */
  #listeners = new Set<(n: number) => void>();

  async check(): Promise<void> {
    if (!this.readable) throw new BatonError('ACCESS_LOG_UNREADABLE', '/var/log/nginx/access.log: missing (injected)');
  }

  /** n requests arrive now, seen by every watcher counting at this moment. */
  request(n = 1): void {
    for (const listener of this.#listeners) listener(n);
  }

  async *countRequests(_afterWallMs: number, signal: AbortSignal): AsyncIterable<number> {
    let count = 0;
    let wake: (() => void) | undefined;
    const listener = (n: number): void => {
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
          yield count;
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
