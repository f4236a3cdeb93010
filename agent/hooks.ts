// State-change hooks: runs the configured program as `path oldState newState reason`, one call at a time and in
// the order the changes happened, each under a timeout, without ever blocking or failing the agent.

import {KILL_GRACE_MS} from './adapters/execa-runner.js';
import {describeError} from './errors.js';
import type {Logger} from './log.js';
import type {Clock, CommandRunner} from './ports.js';
import type {AgentStateName} from './state-machine.js';

export interface StateChange {
  readonly oldState: AgentStateName;
  readonly newState: AgentStateName;
  readonly reason: string;
  /** etcd mode: the service whose state changed (a host may hold several); the hook sees it as BATON_SERVICE. */
  readonly service?: string;
}

// A state changes a few times per switch; 100 waiting calls means the hook is far slower than the agent, and
// the newest changes are the ones an operator needs to hear about.
const DEFAULT_MAX_PENDING = 100;
// The runner stops a program and everything it started at the timeout with SIGTERM, then SIGKILL KILL_GRACE_MS
// later; 2 s more to reap them and close the output. Beyond that the runner itself is stuck (a process that
// SIGKILL cannot end, in uninterruptible sleep), and the queue must not wait for it.
const REAP_MS = 2_000;
const DEFAULT_GIVE_UP_AFTER_TIMEOUT_MS = KILL_GRACE_MS + REAP_MS;

export interface HookRunnerOptions {
  readonly runner: CommandRunner;
  /** The program to run; passed to the runner as the file of an argument array, never through a shell, so a path
   *  with spaces or quotes is run as it is and a reason can never inject a command. */
  readonly path: string;
  readonly timeoutMs: number;
  readonly log: Logger;
  readonly clock: Clock;
  /** Calls waiting behind the running one; when full, the oldest waiting call is dropped (and logged). */
  readonly maxPending?: number;
  /** How long past `timeoutMs` to wait for the runner before running the next call anyway. */
  readonly giveUpAfterTimeoutMs?: number;
}

type Outcome =
  | {readonly kind: 'ok'}
  | {readonly kind: 'failed'; readonly error: unknown}
  | {readonly kind: 'abandoned'};

export class HookRunner {
  readonly #options: HookRunnerOptions;
  readonly #maxPending: number;
  readonly #giveUpAfterMs: number;
  readonly #queue: StateChange[] = [];
  /** The call in progress, then the start of the next: set again before it settles while the queue has more. */
  #running: Promise<void> | undefined;

  constructor(options: HookRunnerOptions) {
    this.#options = options;
    this.#maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
    this.#giveUpAfterMs = options.timeoutMs + (options.giveUpAfterTimeoutMs ?? DEFAULT_GIVE_UP_AFTER_TIMEOUT_MS);
  }

  /** Queues a call and returns at once; the call runs after every earlier one has finished. Never throws. */
  notify(change: StateChange): void {
    if (this.#queue.length >= this.#maxPending) {
      const dropped = this.#queue.shift();
      if (dropped !== undefined) {
        this.#options.log.warning(`(hook) ${this.#maxPending} calls waiting, the hook is too slow: dropped the ` +
          `oldest, ${describeChange(dropped)}`);
      }
    }
    this.#queue.push(change);
    this.#next();
  }

  /** Resolves when every queued call has run (for shutdown and tests). */
  async drain(): Promise<void> {
    while (this.#running !== undefined) await this.#running;
  }

  #next(): void {
    if (this.#running !== undefined) return;
    const change = this.#queue.shift();
    if (change === undefined) return;
    // #call never rejects; the next call starts in the same callback that clears this one, so drain() sees it.
    this.#running = this.#call(change).then(() => {
      this.#running = undefined;
      this.#next();
    });
  }

  async #call(change: StateChange): Promise<void> {
    const {runner, path, timeoutMs, log, clock} = this.#options;
    const stopWaiting = new AbortController();
    const outcome = await new Promise<Outcome>((resolve) => {
      runner.run(path, [change.oldState, change.newState, change.reason], {timeoutMs, env: {
        BATON_OLD_STATE: change.oldState, BATON_NEW_STATE: change.newState, BATON_REASON: change.reason,
        ...change.service === undefined ? {} : {BATON_SERVICE: change.service},
      }})
        .then(() => resolve({kind: 'ok'}), (error: unknown) => resolve({kind: 'failed', error}));
      clock.sleep(this.#giveUpAfterMs, stopWaiting.signal).then(() => resolve({kind: 'abandoned'}), () => undefined);
    });
    stopWaiting.abort();
    const subject = `(hook) ${change.oldState} -> ${change.newState}:`;
    switch (outcome.kind) {
      case 'ok':
        log.info(`${subject} ${path} ok`);
        return;
      case 'failed':
        // The runner's message names the command line, the exit code and stderr's first line, or the timeout.
        log.warning(`${subject} ${describeError(outcome.error)}`);
        return;
      case 'abandoned':
        log.warning(`${subject} ${path} did not end within ${this.#giveUpAfterMs} ms of being started, though ` +
          `stopped after ${timeoutMs} ms; running the next hook without waiting for it`);
        return;
    }
  }
}

function describeChange(change: StateChange): string {
  return `${change.oldState} -> ${change.newState} (${change.reason})`;
}
