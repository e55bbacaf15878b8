import { describe, expect, it } from 'vitest';
import { RecentChunks } from '../../../storage/chunks/recent.js';
import { createRng } from '../../sim/rng.js';

describe('RecentChunks (a ring buffer)', () => {
  it('returns copies, overwrites the oldest first and wraps', () => {
    const r = new RecentChunks(10);
    const a = Buffer.from('aaaa');
    r.add('a', a);
    a.fill(0); // the cache copied it
    r.add('b', Buffer.from('bbbb'));
    expect(Buffer.from(r.get('a')!).toString()).toBe('aaaa');
    r.get('a')!.fill(0); // a copy: the ring is unchanged
    expect(Buffer.from(r.get('a')!).toString()).toBe('aaaa');
    expect(r.bytes).toBe(8);
    // 8 + 4 > 10: wraps to the start, over 'a'
    r.add('c', Buffer.from('cccc'));
    expect(r.get('a')).toBeUndefined();
    expect(Buffer.from(r.get('b')!).toString()).toBe('bbbb');
    expect(Buffer.from(r.get('c')!).toString()).toBe('cccc');
    // the next one goes after 'c', over 'b'
    r.add('d', Buffer.from('dd'));
    expect(r.get('b')).toBeUndefined();
    expect(Buffer.from(r.get('d')!).toString()).toBe('dd');
    expect(r.bytes).toBe(6);
    // too large for the ring, or empty: not kept
    r.add('big', Buffer.alloc(11));
    r.add('empty', Buffer.alloc(0));
    expect(r.get('big')).toBeUndefined();
    expect(r.get('empty')).toBeUndefined();
    // a key added again is stored again, once
    r.add('d', Buffer.from('DD'));
    expect(Buffer.from(r.get('d')!).toString()).toBe('DD');
    expect(r.bytes).toBe(6);
    r.delete('c');
    expect(r.get('c')).toBeUndefined();
    expect(r.bytes).toBe(2);
    r.clear();
    expect(r.get('d')).toBeUndefined();
    expect(r.bytes).toBe(0);
  });

  it('never returns wrong bytes and keeps the recent chunks that fit (random operations)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      // seeded throughout, bytes included, so a failure replays exactly
      const rand = createRng(seed);
      const capacity = 1000 + rand.int(5000);
      const maxLen = 1 + rand.int(Math.floor(capacity / 3));
      const r = new RecentChunks(capacity);
      const truth = new Map<string, Buffer>();
      const adds: Array<{ key: string; bytes: Buffer }> = []; // every add, in order
      for (let op = 0; op < 3000; op++) {
        const key = `k${rand.int(200)}`;
        const x = rand();
        if (x < 0.7) {
          const bytes = Buffer.from(
            Array.from({ length: 1 + rand.int(maxLen) }, () => rand.int(256)),
          );
          r.add(key, bytes);
          truth.set(key, bytes);
          adds.push({ key, bytes });
        } else if (x < 0.8) {
          r.delete(key);
          truth.delete(key);
        }
        const got = r.get(key);
        if (got !== undefined)
          expect(Buffer.from(got).equals(truth.get(key)!), `seed ${seed} op ${op}`).toBe(true);
        expect(r.bytes, `seed ${seed} op ${op}`).toBeLessThanOrEqual(capacity);
      }
      // every chunk among the last (capacity - maxLen) bytes added is still there, unless it was
      // deleted or replaced since (their room in the ring is only reused when the ring comes round)
      let budget = capacity - maxLen;
      for (let i = adds.length - 1; i >= 0; i--) {
        const { key, bytes } = adds[i];
        budget -= bytes.length;
        if (budget < 0) break;
        if (truth.get(key) !== bytes) continue;
        const got = r.get(key);
        expect(got, `seed ${seed}: ${key} was evicted too early`).toBeDefined();
        expect(Buffer.from(got!).equals(bytes)).toBe(true);
      }
    }
  });
});
