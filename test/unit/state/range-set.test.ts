import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RangeSet, StateDecodeError, VersionVector } from '../../../storage/state/index.js';

// Operations on a RangeSet, checked against a plain Set<number> model.
type Op =
  | { t: 'add'; n: number }
  | { t: 'addRange'; a: number; len: number }
  | { t: 'delete'; n: number }
  | { t: 'deleteRange'; a: number; len: number };

const small = fc.integer({ min: 0, max: 60 });
const arbOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ t: fc.constant('add' as const), n: small }),
  fc.record({
    t: fc.constant('addRange' as const),
    a: small,
    len: fc.integer({ min: 0, max: 10 }),
  }),
  fc.record({ t: fc.constant('delete' as const), n: small }),
  fc.record({
    t: fc.constant('deleteRange' as const),
    a: small,
    len: fc.integer({ min: 0, max: 10 }),
  }),
);

function build(ops: Op[]): { set: RangeSet; model: Set<number> } {
  const set = new RangeSet();
  const model = new Set<number>();
  for (const op of ops) {
    if (op.t === 'add') {
      set.add(op.n);
      model.add(op.n);
    } else if (op.t === 'addRange') {
      set.addRange(op.a, op.a + op.len);
      for (let i = op.a; i <= op.a + op.len; i++) model.add(i);
    } else if (op.t === 'delete') {
      expect(set.delete(op.n)).toBe(model.delete(op.n));
    } else {
      let removed = 0;
      for (let i = op.a; i <= op.a + op.len; i++) if (model.delete(i)) removed++;
      expect(set.deleteRange(op.a, op.a + op.len)).toBe(removed);
    }
  }
  return { set, model };
}

function sorted(s: Iterable<number>): number[] {
  return [...s].sort((a, b) => a - b);
}

function checkCanonical(set: RangeSet): void {
  let prevEnd = -2;
  for (const [a, b] of set.ranges()) {
    expect(a).toBeLessThanOrEqual(b);
    expect(a).toBeGreaterThan(prevEnd + 1);
    prevEnd = b;
  }
}

const arbOps = fc.array(arbOp, { maxLength: 40 });

describe('RangeSet', () => {
  it('behaves like a set of integers and stays canonical', () => {
    fc.assert(
      fc.property(arbOps, fc.integer({ min: -1, max: 75 }), (ops, probe) => {
        const { set, model } = build(ops);
        checkCanonical(set);
        expect([...set]).toEqual(sorted(model));
        expect(set.size).toBe(model.size);
        expect(set.has(probe)).toBe(model.has(probe));
        expect(set.min).toBe(model.size ? Math.min(...model) : undefined);
        expect(set.max).toBe(model.size ? Math.max(...model) : undefined);
      }),
    );
  });

  it('computes union, difference, intersection and containment', () => {
    fc.assert(
      fc.property(arbOps, arbOps, (o1, o2) => {
        const a = build(o1);
        const b = build(o2);
        const u = a.set.union(b.set);
        const d = a.set.difference(b.set);
        const i = a.set.intersect(b.set);
        for (const s of [u, d, i]) checkCanonical(s);
        expect([...u]).toEqual(sorted(new Set([...a.model, ...b.model])));
        expect([...d]).toEqual(sorted([...a.model].filter((x) => !b.model.has(x))));
        expect([...i]).toEqual(sorted([...a.model].filter((x) => b.model.has(x))));
        expect(a.set.containsAll(b.set)).toBe([...b.model].every((x) => a.model.has(x)));
        expect(u.containsAll(a.set) && u.containsAll(b.set)).toBe(true);
        expect(a.set.equals(b.set)).toBe(
          JSON.stringify(sorted(a.model)) === JSON.stringify(sorted(b.model)),
        );
      }),
    );
  });

  it('encodes canonically and round-trips', () => {
    fc.assert(
      fc.property(arbOps, (ops) => {
        const { set } = build(ops);
        const back = RangeSet.decode(set.encode());
        expect(back.equals(set)).toBe(true);
      }),
    );
    const big = RangeSet.fromRanges([
      [1, 1000],
      [Number.MAX_SAFE_INTEGER - 5, Number.MAX_SAFE_INTEGER],
    ]);
    expect(RangeSet.decode(big.encode()).equals(big)).toBe(true);
    expect(RangeSet.fromRanges([[1, 100_000]]).encode().length).toBe(5);
  });

  it('rejects malformed encodings with StateDecodeError', () => {
    expect(() => RangeSet.decode(new Uint8Array([2, 1]))).toThrow(StateDecodeError);
    expect(() => RangeSet.decode(new Uint8Array([0, 0]))).toThrow(StateDecodeError);
    expect(() => RangeSet.decode(new Uint8Array([1, 0x80, 0x00, 0]))).toThrow(StateDecodeError);
    expect(() => RangeSet.decode(new Uint8Array([5, 0, 0]), 4)).toThrow(StateDecodeError);
    const overflow = new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x7f]);
    expect(() => RangeSet.decode(overflow)).toThrow(StateDecodeError);
  });

  it('refuses non-integers and reversed ranges', () => {
    const s = new RangeSet();
    expect(() => s.add(1.5)).toThrow(RangeError);
    expect(() => s.add(-1)).toThrow(RangeError);
    expect(() => s.addRange(5, 4)).toThrow(RangeError);
  });
});

describe('VersionVector', () => {
  const arbVector = fc
    .array(fc.tuple(fc.constantFrom('a', 'b', 'c'), arbOps), { maxLength: 4 })
    .map((entries) => {
      const v = new VersionVector();
      for (const [o, ops] of entries) {
        for (const n of build(ops).set) v.add(o, n);
      }
      return v;
    });

  it('difference + intersection partition a vector; union contains both', () => {
    fc.assert(
      fc.property(arbVector, arbVector, (x, y) => {
        const d = x.difference(y);
        const i = x.intersect(y);
        expect(d.union(i).equals(x)).toBe(true);
        expect(d.intersect(y).isEmpty).toBe(true);
        const u = x.union(y);
        expect(u.containsAll(x) && u.containsAll(y)).toBe(true);
        expect(u.versionCount).toBe(x.versionCount + y.difference(x).versionCount);
      }),
    );
  });

  it('intersectAll gives the versions every vector has', () => {
    const a = new VersionVector();
    a.addRange('n1', 1, 10);
    a.addRange('n2', 1, 5);
    const b = new VersionVector();
    b.addRange('n1', 3, 12);
    const s = VersionVector.intersectAll([a, b]);
    expect(s.toString()).toBe('n1:{3-10}');
    expect(s.has('n2', 1)).toBe(false);
  });
});
