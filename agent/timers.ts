// Lateness of the agent's own timers: how much later than planned a periodic tick ran. A tick late by more
// than a heartbeat interval means beacons went out late, the most common cause of false failovers.

import type {Logger} from './log.js';
import type {Clock} from './ports.js';

// p99 over the last LATENESS_WINDOW ticks: at 200 ms intervals, the last 200 s.
const LATENESS_WINDOW = 1000;

export class LatenessTracker {
  readonly #samples: number[] = [];
  #max = 0;
  #beyondInterval = 0;
  readonly #intervalMs: number;

  constructor(intervalMs: number) {
    this.#intervalMs = intervalMs;
  }

  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** Records one tick's lateness; returns true when it was late by more than an interval (worth a warning). */
  record(latenessMs: number): boolean {
    const late = Math.max(0, latenessMs);
    this.#samples.push(late);
    if (this.#samples.length > LATENESS_WINDOW) this.#samples.shift();
    this.#max = Math.max(this.#max, late);
    if (late > this.#intervalMs) {
      this.#beyondInterval += 1;
      return true;
    }
    return false;
  }

  snapshot(): {p99: number; max: number; beyondInterval: number} {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    return {p99: round1(percentile(sorted, 99)), max: round1(this.#max), beyondInterval: this.#beyondInterval};
  }
}

/** The nearest-rank `p`th percentile of ascending `sorted`; 0 when it is empty. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * Calls `tick` every `intervalMs` until `signal` aborts, recording how late each tick ran and warning when it was
 * later than an interval. After a long stall it does not send a burst of catch-up ticks: the rhythm resumes from
 * now.
 */
export async function runTicks(clock: Clock, lateness: LatenessTracker, log: Logger, signal: AbortSignal, tick: () => Promise<void>): Promise<void> {
  const interval = lateness.intervalMs;
  let due = clock.now();
  while (!signal.aborted) {
    const late = clock.now() - due;
    if (lateness.record(late)) {
      log.warning(`(timers) beacon tick ran ${Math.round(late)} ms late, more than the ${interval} ms interval: the peer may see us as dead (CPU starved, swapping, or a stopped process?)`);
    }
    await tick();
    due += interval;
    const now = clock.now();
    if (due < now) due = now;
    try {
      await clock.sleep(due - now, signal);
    } catch {
      return;
    }
  }
}
