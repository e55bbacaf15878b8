import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClockDriftError,
  compareHlc,
  hlcFromBytes,
  hlcFromString,
  hlcToBigInt,
  hlcToBytes,
  hlcToString,
  HLC_MAX_COUNTER,
  HLC_MAX_WALL,
  HybridClock,
  type Hlc,
} from '../../../storage/state/index.js';

const arbHlc = fc.record({
  wall: fc.integer({ min: 0, max: HLC_MAX_WALL }),
  counter: fc.integer({ min: 0, max: HLC_MAX_COUNTER }),
});

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

describe('HLC encodings', () => {
  it('round-trip and keep the order (bytes, string, bigint)', () => {
    fc.assert(
      fc.property(arbHlc, arbHlc, (a, b) => {
        expect(hlcFromBytes(hlcToBytes(a))).toEqual(a);
        expect(hlcFromString(hlcToString(a))).toEqual(a);
        const c = Math.sign(compareHlc(a, b));
        expect(Math.sign(compareBytes(hlcToBytes(a), hlcToBytes(b)))).toBe(c);
        const sa = hlcToString(a);
        const sb = hlcToString(b);
        expect(sa < sb ? -1 : sa > sb ? 1 : 0).toBe(c);
        const ba = hlcToBigInt(a);
        const bb = hlcToBigInt(b);
        expect(ba < bb ? -1 : ba > bb ? 1 : 0).toBe(c);
      }),
    );
  });

  it('rejects malformed strings', () => {
    expect(hlcFromString('xyz')).toBeUndefined();
    expect(hlcFromString('0123456789ABCDEF')).toBeUndefined();
  });
});

describe('HybridClock', () => {
  it('follows physical time and counts within one ms', () => {
    let t = 1000;
    const c = new HybridClock({ now: () => t });
    expect(c.now()).toEqual({ wall: 1000, counter: 0 });
    expect(c.now()).toEqual({ wall: 1000, counter: 1 });
    t = 1005;
    expect(c.now()).toEqual({ wall: 1005, counter: 0 });
  });

  it('never goes backwards when physical time does', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 10_000 }), { minLength: 1 }), (times) => {
        let i = 0;
        const c = new HybridClock({ now: () => times[i] });
        let prev: Hlc = c.now();
        for (i = 0; i < times.length; i++) {
          const next = c.now();
          expect(compareHlc(next, prev)).toBeGreaterThan(0);
          prev = next;
        }
      }),
    );
  });

  it('update() returns a timestamp above both clocks; receive() raises the clock', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), arbHlc, fc.integer({ min: 0, max: 5 })), { maxLength: 50 }),
        (events) => {
          let t = 2 ** 40;
          const c = new HybridClock({ now: () => t, maxDriftMs: 2 ** 48 });
          let prev = c.now();
          for (const [upd, remote, dt] of events) {
            t += dt;
            if (upd) {
              const next = c.update(remote);
              expect(compareHlc(next, prev)).toBeGreaterThan(0);
              expect(compareHlc(next, remote)).toBeGreaterThan(0);
              prev = next;
            } else {
              c.receive(remote);
              const next = c.now();
              expect(compareHlc(next, remote)).toBeGreaterThan(0);
              expect(compareHlc(next, prev)).toBeGreaterThan(0);
              prev = next;
            }
          }
        },
      ),
    );
  });

  it('carries a counter overflow into the wall', () => {
    const c = new HybridClock({ now: () => 7, last: { wall: 7, counter: HLC_MAX_COUNTER } });
    expect(c.now()).toEqual({ wall: 8, counter: 0 });
  });

  it('refuses a remote timestamp further ahead than maxDrift, without moving', () => {
    const c = new HybridClock({ now: () => 100_000, maxDriftMs: 60_000 });
    const before = c.now();
    expect(() => c.update({ wall: 160_001, counter: 0 })).toThrow(ClockDriftError);
    expect(() => c.receive({ wall: 170_000, counter: 0 })).toThrow(ClockDriftError);
    try {
      c.check({ wall: 170_000, counter: 0 });
    } catch (err) {
      expect((err as ClockDriftError).code).toBe('clock_drift');
      expect((err as ClockDriftError).driftMs).toBe(70_000);
    }
    expect(c.last).toEqual(before);
    expect(compareHlc(c.update({ wall: 160_000, counter: 3 }), { wall: 160_000, counter: 3 })).toBe(
      1,
    );
  });

  it('starts above a persisted high-water mark', () => {
    const c = new HybridClock({ now: () => 5, last: { wall: 1_000, counter: 9 } });
    expect(c.now()).toEqual({ wall: 1_000, counter: 10 });
  });
});
