import { describe, expect, it } from 'vitest';
import { Backoff } from '../../../membership/index.js';

describe('Backoff', () => {
  it('doubles from the initial delay up to the maximum, and starts again after a reset', () => {
    const b = new Backoff(1000, 5000);
    expect(b.waiting(0)).toBe(false);
    expect([b.fail(0), b.fail(0), b.fail(0), b.fail(0), b.fail(0)]).toEqual([
      1000, 2000, 4000, 5000, 5000,
    ]);
    expect(b.failures).toBe(5);
    const ms = b.fail(10_000);
    expect(b.until).toBe(10_000 + ms);
    expect(b.waiting(10_000 + ms - 1)).toBe(true);
    expect(b.waiting(10_000 + ms)).toBe(false);
    b.reset();
    expect(b.waiting(10_000)).toBe(false);
    expect(b.fail(20_000)).toBe(1000);
  });

  it('does not overflow after many failures', () => {
    const b = new Backoff(1, 60_000);
    for (let i = 0; i < 2000; i++) b.fail(0);
    expect(b.fail(0)).toBe(60_000);
  });
});
