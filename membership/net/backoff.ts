// A delay that doubles with each failure in a row: what a retry waits after it failed for a reason
// that will not go away at once (a full disk, a source whose reads fail). Pure: callers give the
// time. Used wherever a retry loop would otherwise spin or re-send data at every round.

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  #failures = 0;
  #until = 0;

  /** `initialMs` after the first failure, doubling after each one in a row, at most `maxMs`. */
  constructor(initialMs: number, maxMs: number) {
    this.initialMs = initialMs;
    this.maxMs = maxMs;
  }

  /** Failures in a row since the last reset(). */
  get failures(): number {
    return this.#failures;
  }

  /** When the delay started by the last failure ends (0 after a reset). */
  get until(): number {
    return this.#until;
  }

  /** Records a failure at `now`; returns the delay before the next try, ms. */
  fail(now: number): number {
    const ms = Math.min(this.initialMs * 2 ** Math.min(this.#failures, 30), this.maxMs);
    this.#failures++;
    this.#until = now + ms;
    return ms;
  }

  /** True while the delay started by the last failure runs. */
  waiting(now: number): boolean {
    return now < this.#until;
  }

  /** A success: the next failure starts again from `initialMs`. */
  reset(): void {
    this.#failures = 0;
    this.#until = 0;
  }
}
