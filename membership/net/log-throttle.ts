// A warning that may repeat with every message (a failing disk, a broken peer) is said at most once
// per period, with how many times it happened since it was last said.

export class LogThrottle {
  readonly #everyMs: number;
  #count = 0;
  #loggedAt = -Infinity;

  /** @param everyMs the least time between two warnings (ms) */
  constructor(everyMs: number) {
    this.#everyMs = everyMs;
  }

  /** Counts one occurrence; returns the occurrences to report when it is time to say so. */
  hit(now = Date.now()): number | undefined {
    this.#count++;
    if (now - this.#loggedAt < this.#everyMs) return undefined;
    const n = this.#count;
    this.#count = 0;
    this.#loggedAt = now;
    return n;
  }
}
