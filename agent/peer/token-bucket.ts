// A token bucket: at most `ratePerS` events a second on average, `burst` at once. Pure: times are passed in.

export class TokenBucket {
  readonly #ratePerMs: number;
  readonly #burst: number;
  #tokens: number;
  #last: number | undefined;

  constructor(ratePerS: number, burst: number) {
    this.#ratePerMs = ratePerS / 1000;
    this.#burst = burst;
    this.#tokens = burst;
  }

  /** Takes one token if there is one; `now` in monotonic ms, never decreasing. */
  take(now: number): boolean {
    if (this.#last !== undefined) this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#ratePerMs);
    this.#last = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
