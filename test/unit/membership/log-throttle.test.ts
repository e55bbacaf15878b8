import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../../../membership/index.js';

describe('LogThrottle', () => {
  it('says the first occurrence, then at most once a period with the count since', () => {
    const t = new LogThrottle(60_000);
    expect(t.hit(0)).toBe(1);
    expect(t.hit(10)).toBeUndefined();
    expect(t.hit(59_999)).toBeUndefined();
    expect(t.hit(60_000)).toBe(3);
    expect(t.hit(60_001)).toBeUndefined();
    expect(t.hit(200_000)).toBe(2);
  });
});
