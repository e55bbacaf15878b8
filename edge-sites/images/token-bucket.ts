// A token bucket for bandwidth caps: take(n) waits until n bytes may be sent. rate 0 = unlimited.
// The burst is rate × BURST_SECONDS, so a cap holds over any window longer than that.
export const BURST_SECONDS = 0.25;

export class TokenBucket {
  #rate: number;
  #tokens: number;
  #last: number;
  readonly #now: () => number;

  constructor(bytesPerSecond: number, now: () => number = () => performance.now()) {
    this.#rate = bytesPerSecond;
    this.#now = now;
    this.#tokens = bytesPerSecond * BURST_SECONDS;
    this.#last = now();
  }

  get rate(): number {
    return this.#rate;
  }

  #refill(): void {
    const t = this.#now();
    this.#tokens = Math.min(
      this.#rate * BURST_SECONDS,
      this.#tokens + ((t - this.#last) / 1000) * this.#rate,
    );
    this.#last = t;
  }

  /** ms to wait before `n` bytes may go (0 = now); the bytes are accounted at once. */
  reserve(n: number): number {
    if (this.#rate <= 0) return 0;
    this.#refill();
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#rate) * 1000;
  }

  async take(n: number, signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(n);
    if (wait <= 0) return;
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      // the listener goes when the wait ends: the signal is usually the service's, which lives
      // as long as the agent, and every capped send would otherwise leave one behind on it
      const onAbort = () => {
        clearTimeout(t);
        reject(signal!.reason);
      };
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, wait);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
