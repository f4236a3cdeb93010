// A Clock whose time moves only when a test says so: advance(ms) fires due sleepers in order; suspend(ms) moves boot
// and wall time only, as a suspended VM or laptop sees when it resumes.

import type {Clock} from '../../agent/ports.js';

interface Sleeper {
  readonly due: number;
  readonly order: number;
  readonly resolve: () => void;
}

// Wall clock starts at a fixed instant so datagrams encode to the same bytes on every run.
export const FAKE_WALL_ORIGIN = Date.UTC(2026, 10, 21, 12, 0, 0);

export class FakeClock implements Clock {
  #now = 0;
  /** Time spent suspended: boot time is monotonic time plus this. */
  #suspended = 0;
  #wallOffset = FAKE_WALL_ORIGIN;
  #order = 0;
  #sleepers: Sleeper[] = [];

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#wallOffset + this.#now;
  }

  bootNow(): number {
    return this.#now + this.#suspended;
  }

  /**
   * The machine sleeps `ms` and resumes: boot and wall time move on, monotonic time and its timers do not (no sleeper
   * wakes; each is as far from due as before). Then, as on a real resume, nothing runs until the next advance().
   */
  suspend(ms: number): void {
    this.#suspended += ms;
    this.#wallOffset += ms;
  }

  /** Steps the wall clock only (as NTP or an operator would), leaving monotonic time alone. */
  stepWall(ms: number): void {
    this.#wallOffset += ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const sleeper: Sleeper = {due: this.#now + Math.max(0, ms), order: this.#order++, resolve};
      this.#sleepers.push(sleeper);
      signal?.addEventListener('abort', () => {
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        reject(signal.reason);
      }, {once: true});
    });
  }

  /** Moves time forward, waking each due sleeper in order and letting the code it resumes run to its next wait. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      const next = this.#sleepers
        .filter((s) => s.due <= target)
        .sort((a, b) => a.due - b.due || a.order - b.order)[0];
      if (next === undefined) break;
      this.#sleepers = this.#sleepers.filter((s) => s !== next);
      this.#now = Math.max(this.#now, next.due);
      next.resolve();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** Moves time forward at once, then wakes what became due: a stalled process, whose timers all fire late. */
  async jump(ms: number): Promise<void> {
    this.#now += ms;
    await this.advance(0);
  }

  pendingSleepers(): number {
    return this.#sleepers.length;
  }
}

/** Lets every queued promise continuation run: the microtask queue drains before a macrotask. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

/** Advances the fake clock in `stepMs` steps until `work` is done (at most `limitMs` of fake time), then returns its
 *  result: for work that waits on calls taking fake time, such as an agent's stop. */
export async function advanceUntilDone<T>(clock: FakeClock, work: Promise<T>, limitMs = 10_000, stepMs = 10): Promise<T> {
  let done = false;
  const watched = work.finally(() => {
    done = true;
  });
  for (let t = 0; t < limitMs && !done; t += stepMs) await clock.advance(stepMs);
  return watched;
}
