// The bandwidth caps' token bucket: what take() waits for, and that a wait leaves nothing behind on
// the signal it was given (the service's, which lives as long as the agent).
import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { BURST_SECONDS, TokenBucket } from '../../../edge-sites/images/token-bucket.js';

describe('TokenBucket', () => {
  it('lets a burst through at once, then makes the bytes wait for their share of the rate', () => {
    let now = 0;
    const b = new TokenBucket(1000, () => now);
    expect(b.reserve(1000 * BURST_SECONDS)).toBe(0);
    expect(b.reserve(500)).toBeCloseTo(500);
    now += 500;
    expect(b.reserve(0)).toBe(0);
    expect(new TokenBucket(0).reserve(1e12)).toBe(0);
  });

  it('removes its abort listener when a wait ends, so waits do not pile up on a long-lived signal', async () => {
    const b = new TokenBucket(1_000_000);
    const stop = new AbortController();
    b.reserve(1_000_000 * BURST_SECONDS);
    // each take waits ~5 ms
    for (let k = 0; k < 30; k++) await b.take(5_000, stop.signal);
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('ends a wait with the reason when its signal aborts, and refuses to start on an aborted one', async () => {
    const b = new TokenBucket(1000);
    b.reserve(1000 * BURST_SECONDS);
    const stop = new AbortController();
    const waiting = b.take(10_000, stop.signal);
    stop.abort(new Error('stopping'));
    await expect(waiting).rejects.toThrow('stopping');
    await expect(b.take(10_000, stop.signal)).rejects.toThrow('stopping');
  });
});
