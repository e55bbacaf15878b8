import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeBatch,
  decodeCleared,
  decodeSummary,
  encodeBatch,
  encodeCleared,
  encodeSummary,
  HLC_MAX_COUNTER,
  HLC_MAX_WALL,
  StateDecodeError,
  SUMMARY_DIGEST_BYTES,
  summaryDigest,
  VersionVector,
  type ChangeBatch,
  type StateRecord,
} from '../../../storage/state/index.js';

const arbOrigin = fc.oneof(
  fc.constantFrom('12D3KooWQx1', 'node-b', 'ü-node'),
  fc.string({ minLength: 1, maxLength: 20, unit: 'grapheme' }).filter((s) => !s.includes('\0')),
);

const arbVector = fc
  .array(
    fc.tuple(
      arbOrigin,
      fc.array(fc.tuple(fc.integer({ min: 1, max: 1e6 }), fc.integer({ min: 0, max: 1e3 }))),
    ),
    { maxLength: 5 },
  )
  .map((entries) => {
    const v = new VersionVector();
    for (const [o, rs] of entries) for (const [a, len] of rs) v.addRange(o, a, a + len);
    return v;
  });

const arbRecords: fc.Arbitrary<StateRecord[]> = fc
  .array(
    fc.record({
      key: fc
        .string({ minLength: 1, maxLength: 30, unit: 'binary' })
        .filter((k) => k.isWellFormed()),
      value: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }),
      hlc: fc.record({
        wall: fc.integer({ min: 0, max: HLC_MAX_WALL }),
        counter: fc.integer({ min: 0, max: HLC_MAX_COUNTER }),
      }),
      origin: arbOrigin,
      seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    }),
    { maxLength: 30 },
  )
  .map((rs) => {
    // (origin, seq) is unique within a batch.
    const seen = new Set<string>();
    return rs.filter((r) => {
      const id = `${r.origin}\0${r.seq}`;
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  });

function canonical(records: StateRecord[]): StateRecord[] {
  return [...records].sort((a, b) =>
    a.origin === b.origin ? a.seq - b.seq : a.origin < b.origin ? -1 : 1,
  );
}

function normalize(r: StateRecord): unknown {
  return { ...r, value: r.value === null ? null : [...r.value] };
}

describe('codec: summary and cleared ranges', () => {
  it('round-trip', () => {
    fc.assert(
      fc.property(arbVector, (v) => {
        expect(decodeSummary(encodeSummary(v)).equals(v)).toBe(true);
        expect(decodeCleared(encodeCleared(v)).equals(v)).toBe(true);
      }),
    );
  });

  it('digest: the same for the same versions whatever the order of origins; empty origins do not count', () => {
    fc.assert(
      fc.property(arbVector, (v) => {
        // the same origins and ranges, inserted in reverse order, plus an origin with no versions
        const w = new VersionVector();
        for (const [o, set] of [...v.entries()].reverse()) w.set(o, set.clone());
        w.ensure('empty-origin');
        const d = summaryDigest(v);
        expect(d).toHaveLength(SUMMARY_DIGEST_BYTES);
        expect(Buffer.from(summaryDigest(w)).equals(d)).toBe(true);
        // one more version changes it (this origin is longer than arbOrigin's 20 characters)
        w.add('an origin longer than any arbitrary one', 7);
        expect(Buffer.from(summaryDigest(w)).equals(d)).toBe(false);
      }),
    );
  });

  it('is small: a few bytes per origin and gap, not per version', () => {
    const v = new VersionVector();
    for (let i = 0; i < 20; i++) {
      const origin = `12D3KooW${'x'.repeat(44)}${i}`.slice(0, 52);
      v.addRange(origin, 1, 1_000_000);
      v.addRange(origin, 1_000_010, 1_000_500);
    }
    const bytes = encodeSummary(v);
    // 20 origins x (53 id bytes + ~9 bytes of ranges)
    expect(bytes.length).toBeLessThan(20 * 64);
  });

  it('refuses the wrong message type', () => {
    const v = new VersionVector();
    v.add('a', 1);
    expect(() => decodeCleared(encodeSummary(v))).toThrow(StateDecodeError);
    expect(() => decodeBatch(encodeSummary(v))).toThrow(StateDecodeError);
  });
});

describe('codec: change batch', () => {
  it('round-trips records (grouped by origin, increasing seq) and cleared versions', () => {
    fc.assert(
      fc.property(arbRecords, arbVector, (records, cleared) => {
        const back = decodeBatch(encodeBatch({ records, cleared }));
        expect(canonical(back.records).map(normalize)).toEqual(canonical(records).map(normalize));
        expect(back.cleared.equals(cleared)).toBe(true);
      }),
    );
  });

  it('turns any garbage into StateDecodeError, never anything else', () => {
    const valid = encodeBatch({
      records: [
        {
          key: 'k1',
          value: new Uint8Array([1, 2]),
          hlc: { wall: 5, counter: 1 },
          origin: 'o',
          seq: 3,
        },
        { key: 'k2', value: null, hlc: { wall: 9, counter: 0 }, origin: 'o', seq: 4 },
      ],
      cleared: VersionVector.from([]),
    });
    const mutate = fc.tuple(
      fc.integer({ min: 0, max: valid.length - 1 }),
      fc.integer({ min: 0, max: 255 }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        for (const input of [bytes, Uint8Array.of(0x02, ...bytes), Uint8Array.of(0x01, ...bytes)]) {
          for (const decode of [decodeBatch, decodeSummary, decodeCleared]) {
            try {
              decode(input);
            } catch (err) {
              expect(err).toBeInstanceOf(StateDecodeError);
            }
          }
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(
        fc.array(mutate, { minLength: 1, maxLength: 4 }),
        fc.nat(valid.length),
        (muts, cut) => {
          const input = valid.slice(0, Math.max(1, valid.length - cut));
          for (const [i, b] of muts) if (i < input.length) input[i] = b;
          try {
            decodeBatch(input);
          } catch (err) {
            expect(err).toBeInstanceOf(StateDecodeError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('enforces limits', () => {
    const rec = (i: number): StateRecord => ({
      key: `key-${i}`,
      value: new Uint8Array(100),
      hlc: { wall: 1, counter: 0 },
      origin: 'o',
      seq: i + 1,
    });
    const cleared = new VersionVector();
    const batch: ChangeBatch = { records: [rec(0), rec(1), rec(2)], cleared };
    const bytes = encodeBatch(batch);
    expect(() => decodeBatch(bytes, { maxRecords: 2 })).toThrow(StateDecodeError);
    expect(() => decodeBatch(bytes, { maxValueBytes: 99 })).toThrow(StateDecodeError);
    expect(() => decodeBatch(bytes, { maxKeyBytes: 4 })).toThrow(StateDecodeError);
    expect(() => decodeBatch(bytes, { maxBytes: bytes.length - 1 })).toThrow(StateDecodeError);
    expect(decodeBatch(bytes).records).toHaveLength(3);
    const v = new VersionVector();
    for (let i = 0; i < 10; i++) v.add('o', i * 3 + 1);
    expect(() => decodeSummary(encodeSummary(v), { maxRanges: 9 })).toThrow(StateDecodeError);
    expect(decodeSummary(encodeSummary(v), { maxRanges: 10 }).rangeCount).toBe(10);
  });

  it('refuses invalid UTF-8, an empty key, a NUL in an origin and trailing bytes', () => {
    const one = (key: string, origin = 'o'): Uint8Array =>
      encodeBatch({
        records: [{ key, value: null, hlc: { wall: 1, counter: 0 }, origin, seq: 1 }],
        cleared: new VersionVector(),
      });
    const bad = one('ab');
    bad[bad.indexOf(0x61)] = 0xff;
    expect(() => decodeBatch(bad)).toThrow(/UTF-8/);
    const empty = one('x');
    expect(() => decodeBatch(Uint8Array.of(...empty, 0))).toThrow(StateDecodeError);
    expect(() => decodeBatch(one('', 'o'))).toThrow(/empty key/);
    expect(() => decodeBatch(one('k', 'a\0b'))).toThrow(/origin/);
  });
});

function measure(n: number, valueBytes: number, keyOf: (i: number) => string) {
  const origins = [
    '12D3KooWAbCdEfGhIjKlMnOpQrStUvWxYz1234567890abcdef',
    '12D3KooWZyXwVuTsRqPoNmLkJiHgFeDcBa0987654321fedcba',
  ];
  const records: StateRecord[] = [];
  let data = 0;
  let wall = 1_737_000_000_000;
  for (let i = 0; i < n; i++) {
    wall += i % 3; // bursts of writes within a few ms
    const key = keyOf(i);
    const value = new Uint8Array(randomBytes(valueBytes));
    records.push({
      key,
      value,
      hlc: { wall, counter: i % 3 === 0 ? 0 : 1 },
      origin: origins[i % 2],
      seq: Math.floor(i / 2) + 1,
    });
    data += Buffer.byteLength(key) + valueBytes;
  }
  const encoded = encodeBatch({ records, cleared: new VersionVector() });
  return {
    data,
    bytes: encoded.length,
    ratio: encoded.length / data,
    perRecord: (encoded.length - data) / n,
  };
}

describe('codec: size', () => {
  it('encodes 10,000 records with 100-byte values within 1.1x keys + values', () => {
    const m = measure(10_000, 100, (i) => `svc/config/${i.toString().padStart(6, '0')}`);
    console.log(
      `10k x 100 B: data ${m.data} B, encoded ${m.bytes} B, ratio ${m.ratio.toFixed(4)}, ` +
        `overhead ${m.perRecord.toFixed(2)} B/record`,
    );
    expect(m.ratio).toBeLessThanOrEqual(1.1);
    const k = measure(10_000, 1024, (i) => `svc/config/${i.toString().padStart(6, '0')}`);
    console.log(
      `10k x 1 KiB: data ${k.data} B, encoded ${k.bytes} B, ratio ${k.ratio.toFixed(4)}, ` +
        `overhead ${k.perRecord.toFixed(2)} B/record`,
    );
    expect(k.ratio).toBeLessThanOrEqual(1.01);
    const short = measure(10_000, 100, (i) => `k${i}`);
    console.log(`10k x 100 B, short keys: ratio ${short.ratio.toFixed(4)}`);
    expect(short.ratio).toBeLessThanOrEqual(1.1);
  });
});
