// Waiting for conditions with a deadline instead of fixed sleeps.

export interface WaitOptions {
  timeout?: number;
  interval?: number;
  /** Shown when the deadline passes. */
  message?: string | (() => string);
}

/** Resolves with the first truthy value of `fn`, polling; rejects after `timeout` ms. */
export async function waitFor<T>(
  fn: () => T | Promise<T>,
  opts: WaitOptions = {},
): Promise<NonNullable<T>> {
  const timeout = opts.timeout ?? 10_000;
  const interval = opts.interval ?? 50;
  const deadline = Date.now() + timeout;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const msg = typeof opts.message === 'function' ? opts.message() : opts.message;
      const why = lastErr ? ` (last error: ${(lastErr as Error).message})` : '';
      throw new Error(`timed out after ${timeout} ms waiting for ${msg ?? 'condition'}${why}`);
    }
    await sleep(interval);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
