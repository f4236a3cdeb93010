// This host's health: the HealthProbe port that runs one check, the pure fall/rise counter (HealthTracker) and the
// loop that runs every check each interval and reports flips (HealthMonitor).

import type {HealthCheckSpec} from './config/health-checks.js';
import type {Config} from './config/schema.js';
import {assertNever, describeError} from './errors.js';
import type {Clock} from './ports.js';
import type {Health} from './state-machine.js';

/** One run of one check. */
export interface HealthResult {
  readonly ok: boolean;
  /** What was seen, for logs and status: "eth0 has no carrier", "http://127.0.0.1/health answered 503, …". */
  readonly detail: string;
}

export interface HealthProbe {
  /**
   * Runs `check` once. Never throws: every failure, a timeout included, is `ok: false` with the reason. Gives up
   * when `signal` aborts (the monitor's deadline passed or it is stopping); the result is then ignored.
   */
  run(check: HealthCheckSpec, signal: AbortSignal): Promise<HealthResult>;
}

export type HealthSettings = Config['health'];

export interface HealthTransition {
  readonly health: Health;
  /** Names the check that flipped the health and what it saw. */
  readonly reason: string;
}

export interface CheckStatus {
  /** "interface eth0", "http http://127.0.0.1/health", "command /usr/local/bin/check-db --quick". */
  readonly name: string;
  /** The last result (true before the first run). */
  readonly ok: boolean;
  readonly detail: string;
  /** How many results in a row were like the last one; 0 before the first run. */
  readonly consecutive: number;
  /** This check's own verdict after fall/rise; the host fails while any check does. */
  readonly health: Health;
}

export interface HealthSnapshot {
  readonly health: Health;
  readonly checks: readonly CheckStatus[];
}

/** How a check is named in logs, reasons and status. */
export function healthCheckName(check: HealthCheckSpec): string {
  switch (check.kind) {
    case 'interface':
      return `interface ${check.interface}`;
    case 'http':
      return `http ${check.url}`;
    case 'command':
      return ['command', check.path, ...check.args].join(' ');
    default:
      return assertNever(check);
  }
}

interface CheckState {
  readonly name: string;
  ok: boolean;
  detail: string;
  consecutive: number;
  health: Health;
}

/**
 * Pure fall/rise counting over the results of every check (haproxy's model, per check): a check fails after
 * `fall` failures in a row and is well again after `rise` successes in a row; the host is failing while any check
 * is. Time plays no part: the caller feeds results in the order it got them.
 */
export class HealthTracker {
  readonly #fall: number;
  readonly #rise: number;
  readonly #checks: CheckState[];

  constructor(settings: Pick<HealthSettings, 'fall' | 'rise' | 'checks'>) {
    this.#fall = settings.fall;
    this.#rise = settings.rise;
    // Every check starts well, so the host is assumed healthy until `fall` failures say otherwise: a restart of
    // baton (an upgrade, a SIGTERM with on_stop: keep) must not make the active host hand the service over, or a
    // standby refuse to take it, before a single check has run. A host that is really sick is found after `fall`
    // rounds, as it would be had it fallen sick while running.
    this.#checks = settings.checks.map((check) => ({
      name: healthCheckName(check), ok: true, detail: 'not run yet', consecutive: 0, health: 'ok',
    }));
  }

  get health(): Health {
    return this.#checks.some((check) => check.health === 'failing') ? 'failing' : 'ok';
  }

  /** Records a result of check `index`; returns the transition when the host's health flips because of it. */
  record(index: number, result: HealthResult): HealthTransition | undefined {
    const check = this.#checks[index];
    if (check === undefined) throw new RangeError(`no health check #${index} (there are ${this.#checks.length})`);
    const before = this.health;
    check.consecutive = check.consecutive > 0 && check.ok === result.ok ? check.consecutive + 1 : 1;
    check.ok = result.ok;
    check.detail = result.detail;
    if (!result.ok && check.consecutive >= this.#fall) check.health = 'failing';
    if (result.ok && check.consecutive >= this.#rise) check.health = 'ok';
    const after = this.health;
    if (after === before) return undefined;
    const times = `${check.consecutive} time${check.consecutive === 1 ? '' : 's'} in a row`;
    return after === 'failing'
      ? {health: after, reason: `${check.name} failed ${times}: ${result.detail}`}
      : {health: after, reason: `${check.name} passed ${times}, every check is ok again: ${result.detail}`};
  }

  snapshot(): HealthSnapshot {
    return {health: this.health, checks: this.#checks.map((check) => ({...check}))};
  }
}

export interface HealthMonitorOptions {
  readonly probe: HealthProbe;
  readonly settings: HealthSettings;
  readonly clock: Clock;
  /** Called on each flip of the host's health. Must not throw: an exception ends the monitor's loop. */
  readonly onChange: (health: Health, reason: string) => void;
}

/**
 * Runs every check each `intervalMs`, all at once, each under its own deadline (its timeout_ms; an interface
 * check, which has none, the interval), and feeds the results to a HealthTracker in check order.
 */
export class HealthMonitor {
  readonly #probe: HealthProbe;
  readonly #settings: HealthSettings;
  readonly #clock: Clock;
  readonly #onChange: (health: Health, reason: string) => void;
  readonly #tracker: HealthTracker;
  #stop: AbortController | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: HealthMonitorOptions) {
    this.#probe = options.probe;
    this.#settings = options.settings;
    this.#clock = options.clock;
    this.#onChange = options.onChange;
    this.#tracker = new HealthTracker(options.settings);
  }

  get health(): Health {
    return this.#tracker.health;
  }

  snapshot(): HealthSnapshot {
    return this.#tracker.snapshot();
  }

  /** Runs the first round at once, then one each interval. Idempotent; with no checks nothing runs. */
  start(): void {
    if (this.#loop !== undefined || this.#settings.checks.length === 0) return;
    const stop = new AbortController();
    this.#stop = stop;
    this.#loop = this.#run(stop.signal);
  }

  /** Abandons the round in flight (its results are not counted) and resolves when the loop has ended. */
  async stop(): Promise<void> {
    this.#stop?.abort(new Error('the health monitor stopped'));
    const loop = this.#loop;
    this.#stop = undefined;
    this.#loop = undefined;
    await loop;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const {intervalMs} = this.#settings;
    let due = this.#clock.now();
    while (!signal.aborted) {
      // Rounds keep to a grid of intervals; a round that started late (a stalled process) moves the grid, so the
      // next one comes an interval after it, never in a burst of catch-up rounds.
      due = Math.max(due, this.#clock.now()) + intervalMs;
      await this.#round(signal);
      if (signal.aborted) return;
      try {
        await this.#clock.sleep(due - this.#clock.now(), signal);
      } catch {
        return; // stopped while waiting
      }
    }
  }

  async #round(signal: AbortSignal): Promise<void> {
    const results = await Promise.all(this.#settings.checks.map((check) => this.#runCheck(check, signal)));
    // A round cut short by stop() observed nothing: its aborted checks did not fail.
    if (signal.aborted) return;
    results.forEach((result, index) => {
      const transition = this.#tracker.record(index, result);
      if (transition !== undefined) this.#onChange(transition.health, transition.reason);
    });
  }

  /** The probe's answer, or a failure when it has none by the deadline; the probe is aborted either way. */
  async #runCheck(check: HealthCheckSpec, stopSignal: AbortSignal): Promise<HealthResult> {
    const deadlineMs = check.kind === 'interface' ? this.#settings.intervalMs : check.timeoutMs;
    const done = new AbortController();
    const signal = AbortSignal.any([stopSignal, done.signal]);
    try {
      return await new Promise<HealthResult>((resolve) => {
        this.#probe.run(check, signal).then(resolve,
          (error: unknown) => resolve({ok: false, detail: `the probe failed: ${describeError(error)}`}));
        this.#clock.sleep(deadlineMs, signal).then(
          () => resolve({ok: false, detail: `timed out after ${deadlineMs} ms`}),
          () => resolve({ok: false, detail: 'stopped'}));
      });
    } finally {
      done.abort(); // ends the probe (deadline passed) or the deadline's timer (the probe answered)
    }
  }
}
