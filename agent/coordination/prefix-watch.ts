// A watch on baton's prefix in etcd (issue 17), so that a host learns at once that a service key was deleted (given up
// or expired) or that a host's presence changed, instead of at its next look. It only wakes whoever looks: each
// change is a reason to read the keys again (a linearizable read), never an answer in itself; so a watch that misses
// a change, breaks, or goes silent costs time, never safety, and the reader's own slower poll still finds the change.
//
// Through etcd's JSON gateway with "require leader" (etcd-gateway-store.ts), a member that loses its leader ends the
// watch, and it is opened again (through the next member): measured with etcd 3.4 in namespaces, a follower cut from
// the two other members (this host still reaching it) answered reads "no leader" 2.5 s after the cut and ended the
// watch 4.5 s after it; every watch opened through it again ended at once until it was healed. A member this host
// cannot reach at all says nothing: that watch stays silent for as long as the cut lasts (h17's leader test), and
// the poll is what notices.

import {describeError} from '../errors.js';
import type {Logger} from '../log.js';
import type {Clock, CoordinationEvent, CoordinationStore} from '../ports.js';

export interface PrefixWatchDeps {
  readonly clock: Clock;
  readonly store: CoordinationStore;
  readonly prefix: string;
  readonly log: Logger;
  /** Ends the watch. */
  readonly signal: AbortSignal;
  /** Told each change, and each time the watch is opened again (a change may have been missed in between). */
  readonly onChange: (event: CoordinationEvent | undefined) => void;
}

// A watch that broke is opened again this much later: soon enough that the poll's slower period rarely matters, and
// no flood against a cluster that cannot answer.
export const WATCH_RETRY_MS = 1000;

export class PrefixWatch {
  readonly #deps: PrefixWatchDeps;
  #open = false;
  #broke: string | undefined;

  constructor(deps: PrefixWatchDeps) {
    this.#deps = deps;
  }

  /** Whether a watch has been asked for and has not broken since: changes should come as they happen. */
  get open(): boolean {
    return this.#open;
  }

  /** Why the last watch broke, while it is not open again. */
  get broke(): string | undefined {
    return this.#broke;
  }

  /** Watches until the signal aborts, opening the watch again after each break. */
  async run(): Promise<void> {
    const {clock, store, prefix, log, signal, onChange} = this.#deps;
    while (!signal.aborted) {
      this.#open = true;
      try {
        for await (const event of store.watch(prefix, signal)) {
          if (this.#broke !== undefined) log.info(`(watch ${prefix}) watching again`);
          this.#broke = undefined;
          onChange(event);
        }
      } catch (error) {
        // A stop aborts the request in flight: nothing broke.
        if (!signal.aborted) {
          const text = describeError(error);
          if (this.#broke === undefined) log.info(`(watch ${prefix}) ${text}; looking at the keys every poll until it is back`);
          this.#broke = text;
        }
      }
      this.#open = false;
      if (signal.aborted) break;
      await clock.sleep(WATCH_RETRY_MS, signal).catch(() => undefined);
      // Whatever changed while there was no watch is read by the next look.
      onChange(undefined);
    }
  }
}
