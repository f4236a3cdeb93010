// A HealthProbe that answers from a script per check and records every run in order; it never sleeps.

import type {HealthCheckSpec} from '../../agent/config/health-checks.js';
import {healthCheckName, type HealthProbe, type HealthResult} from '../../agent/health.js';

/** A result, or 'hang': no answer until the caller aborts (then the answer is ignored anyway). */
export type FakeHealthReply = HealthResult | 'hang';

export class FakeHealthProbe implements HealthProbe {
  /** Names of the checks run, in call order. */
  readonly runs: string[] = [];
  /** Hung runs whose signal was aborted: the monitor gave up on them. */
  aborted = 0;
  readonly #scripts = new Map<string, FakeHealthReply[]>();
  #hanging = 0;

  /** Replies to the check named `name` ("interface eth0"), one per run; the last one repeats. Unscripted: ok. */
  answer(name: string, ...replies: FakeHealthReply[]): this {
    this.#scripts.set(name, replies);
    return this;
  }

  run(check: HealthCheckSpec, signal: AbortSignal): Promise<HealthResult> {
    const name = healthCheckName(check);
    this.runs.push(name);
    const replies = this.#scripts.get(name) ?? [];
    const reply = replies.length > 1 ? replies.shift() : replies[0];
    if (reply === undefined) return Promise.resolve({ok: true, detail: `${name} ok`});
    if (reply !== 'hang') return Promise.resolve(reply);
    this.#hanging += 1;
    return new Promise((resolve) => {
      signal.addEventListener('abort', () => {
        this.#hanging -= 1;
        this.aborted += 1;
        resolve({ok: false, detail: 'aborted'});
      }, {once: true});
    });
  }

  /** Throws when a hung run was never aborted: the code under test leaked a check past its deadline. */
  assertNothingPending(): void {
    if (this.#hanging > 0) throw new Error(`${this.#hanging} hung health check(s) never aborted`);
  }
}
