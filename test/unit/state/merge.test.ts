import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareRecords,
  merge,
  mergeAll,
  sameRecord,
  type StateRecord,
} from '../../../storage/state/index.js';

// Small domains so that ties (same HLC, same origin, same seq) actually happen.
const arbRecord: fc.Arbitrary<StateRecord> = fc.record({
  key: fc.constant('k'),
  value: fc.option(
    fc.uint8Array({ maxLength: 3 }).map((v) => v),
    { nil: null },
  ),
  hlc: fc.record({ wall: fc.integer({ min: 0, max: 3 }), counter: fc.integer({ min: 0, max: 2 }) }),
  origin: fc.constantFrom('a', 'b', 'c'),
  seq: fc.integer({ min: 1, max: 3 }),
});

describe('merge (LWW register)', () => {
  it('is commutative', () => {
    fc.assert(fc.property(arbRecord, arbRecord, (a, b) => sameRecord(merge(a, b), merge(b, a))));
  });

  it('is associative', () => {
    fc.assert(
      fc.property(arbRecord, arbRecord, arbRecord, (a, b, c) =>
        sameRecord(merge(merge(a, b), c), merge(a, merge(b, c))),
      ),
    );
  });

  it('is idempotent', () => {
    fc.assert(fc.property(arbRecord, (a) => merge(a, a) === a));
    fc.assert(
      fc.property(arbRecord, arbRecord, (a, b) => sameRecord(merge(merge(a, b), b), merge(a, b))),
    );
  });

  it('gives the same winner for any delivery order', () => {
    const arbOrders = fc
      .array(arbRecord, { minLength: 1, maxLength: 8 })
      .chain((rs) =>
        fc.tuple(
          fc.constant(rs),
          fc.shuffledSubarray(rs, { minLength: rs.length, maxLength: rs.length }),
        ),
      );
    fc.assert(
      fc.property(arbOrders, ([rs, shuffled]) => sameRecord(mergeAll(rs)!, mergeAll(shuffled)!)),
    );
  });

  it('is a total order consistent with equality', () => {
    fc.assert(
      fc.property(arbRecord, arbRecord, (a, b) => {
        const ab = compareRecords(a, b);
        expect(Math.sign(ab) + Math.sign(compareRecords(b, a))).toBe(0);
        expect(ab === 0).toBe(
          a.origin === b.origin &&
            a.seq === b.seq &&
            a.hlc.wall === b.hlc.wall &&
            a.hlc.counter === b.hlc.counter &&
            JSON.stringify(a.value && [...a.value]) === JSON.stringify(b.value && [...b.value]),
        );
      }),
    );
  });

  it('lets the later HLC win, and breaks equal HLCs by node id', () => {
    const base = { key: 'k', value: new Uint8Array([1]), seq: 1 };
    const older = { ...base, hlc: { wall: 10, counter: 5 }, origin: 'z' };
    const newer = { ...base, hlc: { wall: 11, counter: 0 }, origin: 'a', value: null };
    expect(merge(older, newer)).toBe(newer);
    const x = { ...base, hlc: { wall: 10, counter: 0 }, origin: 'node-a' };
    const y = { ...base, hlc: { wall: 10, counter: 0 }, origin: 'node-b' };
    expect(merge(x, y)).toBe(y);
    expect(merge(y, x)).toBe(y);
  });

  it('refuses to merge different keys', () => {
    const r = { key: 'a', value: null, hlc: { wall: 1, counter: 0 }, origin: 'o', seq: 1 };
    expect(() => merge(r, { ...r, key: 'b' })).toThrow(TypeError);
  });
});
