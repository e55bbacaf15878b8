// The small parts: config and presets, suspicion math, awareness, broadcast queue, member table.
import { describe, expect, it } from 'vitest';
import { SwimConfigError } from '../../../membership/errors.js';
import { Awareness } from '../../../membership/swim/awareness.js';
import { BroadcastQueue } from '../../../membership/swim/broadcast-queue.js';
import {
  IdInterner,
  SWIM_PRESETS,
  pushPullIntervalFor,
  resolveSwimConfig,
  retransmitLimit,
  suspicionConfirmations,
  suspicionMaxTimeout,
  suspicionMinTimeout,
  suspicionTimeout,
  swimConfigOverridesSchema,
} from '../../../membership/swim/index.js';
import {
  MemberTable,
  ST_ALIVE,
  ST_DEAD,
  ST_SUSPECT,
} from '../../../membership/swim/member-table.js';
import { createRng } from '../../sim/rng.js';
import { metaFor } from './harness.js';

describe('config', () => {
  it('has lan and wan presets and applies overrides', () => {
    expect(resolveSwimConfig('lan')).toEqual(SWIM_PRESETS.lan);
    expect(resolveSwimConfig('wan').probeInterval).toBe(5000);
    expect(resolveSwimConfig('lan', { probeInterval: 500, probeTimeout: 250 }).probeInterval).toBe(
      500,
    );
  });

  it('rejects bad overrides with a SwimConfigError naming the key', () => {
    expect(() => resolveSwimConfig('lan', { probeInterval: -1 })).toThrow(SwimConfigError);
    expect(() => resolveSwimConfig('lan', { probeTimeout: 300 })).toThrow(/probeTimeout/);
    expect(() => resolveSwimConfig('lan', { bogus: 1 } as never)).toThrow(/bogus/);
    expect(() => resolveSwimConfig('lan', { gossipNodes: 1.5 })).toThrow(/gossipNodes/);
    expect(swimConfigOverridesSchema.safeParse({ probeInterval: 'x' }).success).toBe(false);
    expect(swimConfigOverridesSchema.parse({ gossipNodes: 4 })).toEqual({ gossipNodes: 4 });
  });

  it('derives the formulas of memberlist', () => {
    const c = SWIM_PRESETS.lan;
    expect(suspicionMinTimeout(c, 1)).toBe(800);
    expect(suspicionMinTimeout(c, 50)).toBe(Math.floor(4 * Math.log10(50) * 200));
    expect(suspicionMaxTimeout(c, 1000)).toBe(6 * 2400);
    expect(suspicionConfirmations(c, 3)).toBe(0);
    expect(suspicionConfirmations(c, 4)).toBe(2);
    expect(retransmitLimit(c, 1000)).toBe(16);
    expect(retransmitLimit(c, 10_000)).toBe(20);
    expect(pushPullIntervalFor(c, 32)).toBe(30_000);
    expect(pushPullIntervalFor(c, 1000)).toBe(30_000 * 6);
    expect(pushPullIntervalFor({ ...c, pushPullInterval: 0 }, 5)).toBe(0);
  });

  it('suspicion timeout falls from max to min with confirmations', () => {
    expect(suspicionTimeout(0, 3, 1000, 6000)).toBe(6000);
    expect(suspicionTimeout(1, 3, 1000, 6000)).toBe(3500);
    expect(suspicionTimeout(3, 3, 1000, 6000)).toBe(1000);
    expect(suspicionTimeout(9, 3, 1000, 6000)).toBe(1000);
    expect(suspicionTimeout(0, 0, 1000, 6000)).toBe(1000);
  });
});

describe('awareness', () => {
  it('stays within 0..max-1 and scales timeouts by score + 1', () => {
    const a = new Awareness(8);
    a.applyDelta(-3);
    expect(a.score).toBe(0);
    a.applyDelta(3);
    expect(a.scale(100)).toBe(400);
    a.applyDelta(100);
    expect(a.score).toBe(7);
  });
});

describe('broadcast queue', () => {
  const alive = (id: string, inc: number) => ({
    kind: 'alive' as const,
    id,
    incarnation: inc,
    meta: metaFor(id),
  });

  it('sends least-transmitted first, newest first among equals, within the budgets', () => {
    const q = new BroadcastQueue(100);
    q.enqueue(1, alive('a', 0), 10);
    q.enqueue(2, alive('b', 0), 10);
    q.enqueue(3, alive('c', 0), 10);
    expect(q.take(5, 2, 1000).map((u) => u.id)).toEqual(['c', 'b']);
    expect(q.take(5, 2, 1000).map((u) => u.id)).toEqual(['a', 'c']);
    expect(q.take(5, 10, 15).map((u) => u.id)).toEqual(['a']); // b no longer fits
  });

  it('drops an update after `limit` transmissions', () => {
    const q = new BroadcastQueue(100);
    q.enqueue(1, alive('a', 0), 10);
    for (let i = 0; i < 3; i++) expect(q.take(3, 10, 1000)).toHaveLength(1);
    expect(q.take(3, 10, 1000)).toHaveLength(0);
    expect(q.size).toBe(0);
  });

  it('a newer update about the same member replaces the older one', () => {
    const q = new BroadcastQueue(100);
    q.enqueue(1, alive('a', 0), 10);
    q.take(9, 10, 1000);
    q.enqueue(1, alive('a', 1), 10);
    expect(q.size).toBe(1);
    expect(q.transmitsOf(1)).toBe(0);
    expect(q.take(9, 10, 1000)).toEqual([alive('a', 1)]);
  });

  it('is bounded: the most-sent oldest are dropped first', () => {
    const q = new BroadcastQueue(3);
    q.enqueue(1, alive('a', 0), 10);
    q.take(9, 10, 1000);
    q.enqueue(2, alive('b', 0), 10);
    q.enqueue(3, alive('c', 0), 10);
    q.enqueue(4, alive('d', 0), 10);
    expect(q.size).toBe(3);
    expect(q.peek(1)).toBeUndefined();
    expect(q.dropped).toBe(1);
  });

  it('counts loud updates apart from quiet ones; a quiet update does not quieten loud news', () => {
    const q = new BroadcastQueue(100);
    q.enqueue(1, alive('a', 0), 10, true);
    expect([q.size, q.loud]).toEqual([1, 0]);
    q.enqueue(2, alive('b', 0), 10);
    expect([q.size, q.loud]).toEqual([2, 1]);
    q.enqueue(2, alive('b', 1), 10, true); // replaces loud news not yet sent: stays loud
    expect([q.size, q.loud]).toEqual([2, 1]);
    q.enqueue(1, alive('a', 1), 10); // loud news replaces quiet
    expect(q.loud).toBe(2);
    for (let i = 0; i < 2; i++) q.take(2, 10, 1000);
    expect([q.size, q.loud]).toEqual([0, 0]);
    q.enqueue(3, alive('c', 0), 10);
    q.remove(3);
    expect(q.loud).toBe(0);
  });

  it('stays consistent under many operations', () => {
    const rng = createRng(7);
    const q = new BroadcastQueue(50);
    for (let i = 0; i < 20_000; i++) {
      const idx = rng.int(80);
      if (rng.chance(0.6)) q.enqueue(idx, alive(`m${idx}`, i), 10 + rng.int(50), rng.chance(0.5));
      else if (rng.chance(0.1)) q.remove(idx);
      else {
        const got = q.take(6, 1 + rng.int(8), 200);
        expect(new Set(got.map((u) => u.id)).size).toBe(got.length);
      }
      expect(q.size).toBeLessThanOrEqual(50);
      expect(q.loud).toBeGreaterThanOrEqual(0);
      expect(q.loud).toBeLessThanOrEqual(q.size);
    }
    while (q.size > 0) q.take(6, 64, 1e6);
    expect(q.loud).toBe(0);
  });
});

describe('member table', () => {
  it('keeps counts, the live and down lists and the probe order in step', () => {
    const rng = createRng(3);
    const interner = new IdInterner();
    const t = new MemberTable(interner, 'self');
    t.set(t.selfIdx, ST_ALIVE, 0, metaFor('self'), 0);
    const ids = Array.from({ length: 50 }, (_, i) => interner.intern(`m${i}`));
    for (const i of ids) t.set(i, ST_ALIVE, 0, metaFor(`m${i}`), 0);
    expect(t.liveCount).toBe(50);
    // Kill some members in the middle of a pass: every live member is still probed once a pass.
    const seen = new Set<number>();
    for (let k = 0; k < 20; k++) seen.add(t.nextProbe(rng));
    for (const i of ids.slice(0, 10)) t.set(i, ST_DEAD, 0, metaFor('x'), 1);
    for (const i of ids.slice(10, 12)) t.set(i, ST_SUSPECT, 1, metaFor('x'), 1);
    while (seen.size < 40 + 10) {
      const n = t.nextProbe(rng);
      if (seen.has(n)) break;
      seen.add(n);
    }
    for (const i of ids.slice(10)) expect(seen.has(i)).toBe(true);
    expect(t.liveCount).toBe(40);
    expect(t.downCount).toBe(10);
    expect(t.count(ST_ALIVE)).toBe(39); // 38 others + self
    expect(t.count(ST_SUSPECT)).toBe(2);
    t.remove(ids[0]);
    expect(t.downCount).toBe(9);
    expect(t.count(ST_DEAD)).toBe(9);
  });
});
