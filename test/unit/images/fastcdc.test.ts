import { createCipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_AVG_SIZE,
  DEFAULT_MAX_SIZE,
  DEFAULT_MIN_SIZE,
  FastCdc,
  GEAR,
  cutPoints,
  resolveChunkerOptions,
  splitChunks,
  type ChunkerOptions,
} from '../../../storage/chunks/index.js';
import { ChunkerConfigError } from '../../../storage/errors.js';

/** Deterministic pseudo-random bytes (AES-128-CTR keystream of a seed). */
function seeded(seed: number, n: number): Uint8Array {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

function streamCuts(data: Uint8Array, splits: number[], opts?: ChunkerOptions): number[] {
  const cdc = new FastCdc(opts);
  const out: number[] = [];
  let start = 0;
  for (const s of [...splits, data.length]) {
    out.push(...cdc.push(data.subarray(start, s)));
    start = s;
  }
  const last = cdc.finish();
  if (last !== undefined) out.push(last);
  return out;
}

function hashes(chunks: Uint8Array[]): string[] {
  return chunks.map((c) => createHash('sha256').update(c).digest('hex'));
}

// Small sizes so that a few hundred KiB hold many chunks.
const SMALL: ChunkerOptions = { minSize: 512, avgSize: 2048, maxSize: 16384 };

describe('FastCDC', () => {
  it('pins the Gear table and the cut points (they are part of the storage format)', () => {
    const le = Buffer.alloc(GEAR.length * 4);
    GEAR.forEach((g, i) => le.writeInt32LE(g, i * 4));
    expect(createHash('sha256').update(le).digest('hex')).toBe(
      '002903ae956dfb791fe5b33ee12b56a6674a24aa5d0128ef81c4247fae705263',
    );
    expect(new Set(GEAR).size).toBe(256);
    const cuts = cutPoints(
      createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16)).update(
        Buffer.alloc(1 << 20),
      ),
    );
    expect(cuts.length).toBe(55);
    expect(cuts.slice(0, 8)).toEqual([4872, 21534, 38021, 102040, 133023, 147808, 164294, 184794]);
  });

  it('is deterministic and respects min and max sizes', () => {
    const data = seeded(1, 4 << 20);
    const a = cutPoints(data);
    expect(cutPoints(data)).toEqual(a);
    expect(a[a.length - 1]).toBe(data.length);
    let prev = 0;
    for (let i = 0; i < a.length; i++) {
      const size = a[i] - prev;
      expect(size).toBeLessThanOrEqual(DEFAULT_MAX_SIZE);
      if (i < a.length - 1) expect(size).toBeGreaterThanOrEqual(DEFAULT_MIN_SIZE);
      prev = a[i];
    }
    // normalized chunking keeps the mean near the target
    const mean = data.length / a.length;
    expect(mean).toBeGreaterThan(DEFAULT_AVG_SIZE * 0.9);
    expect(mean).toBeLessThan(DEFAULT_AVG_SIZE * 1.6);
  });

  it('gives the same boundaries however the stream is split', () => {
    const data = seeded(2, 256 * 1024);
    const whole = cutPoints(data, SMALL);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: data.length - 1 }), { maxLength: 60 }),
        (splits) => {
          splits.sort((x, y) => x - y);
          expect(streamCuts(data, splits, SMALL)).toEqual(whole);
        },
      ),
      { numRuns: 150 },
    );
    // every buffer one byte long, and buffers that end exactly on boundaries
    expect(
      streamCuts(
        data.subarray(0, 40000),
        Array.from({ length: 39999 }, (_, i) => i + 1),
        SMALL,
      ),
    ).toEqual(cutPoints(data.subarray(0, 40000), SMALL));
    expect(streamCuts(data, whole.slice(0, -1), SMALL)).toEqual(whole);
  });

  it('handles empty input, tiny input, and runs of one byte value', () => {
    expect(cutPoints(new Uint8Array(0))).toEqual([]);
    expect(cutPoints(new Uint8Array(10))).toEqual([10]);
    const cdc = new FastCdc();
    expect(cdc.push(new Uint8Array(0))).toEqual([]);
    expect(cdc.finish()).toBeUndefined();
    const zeros = cutPoints(new Uint8Array(1 << 20));
    expect(zeros.every((e, i) => e === (i + 1) * DEFAULT_MAX_SIZE)).toBe(true);
    // the chunker is reusable after finish()
    expect(cdc.push(new Uint8Array(5))).toEqual([]);
    expect(cdc.finish()).toBe(5);
  });

  it('splitChunks returns views that reassemble the input', () => {
    const data = seeded(3, 300_000);
    const chunks = splitChunks(data, SMALL);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
  });

  it('an insertion in the middle changes at most 3 chunks (fixed seed; see DEFAULT_NORMALIZATION)', () => {
    // The bound is statistical for any CDC with cut-point skipping: with the defaults ~0.1% of
    // small insertions disturb 4+ chunks. The seed is fixed so the test is reproducible; set
    // FC_SEED to explore. Over all runs at least 99% must stay within 3 and none above 8.
    const seed = Number(process.env.FC_SEED ?? 20261123);
    const counts: number[] = [];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.double({ min: 0.2, max: 0.8, noNaN: true }),
        fc.uint8Array({ minLength: 1, maxLength: 1024 }),
        (dataSeed, where, inserted) => {
          const data = seeded(dataSeed, 512 * 1024);
          const pos = Math.floor(where * data.length);
          const edited = Buffer.concat([data.subarray(0, pos), inserted, data.subarray(pos)]);
          const before = new Set(hashes(splitChunks(data)));
          const changed = hashes(splitChunks(edited)).filter((h) => !before.has(h)).length;
          counts.push(changed);
          return changed <= 8;
        },
      ),
      { numRuns: 300, seed },
    );
    const within = counts.filter((c) => c <= 3).length / counts.length;
    expect(within).toBeGreaterThanOrEqual(0.99);
  });

  it('a deletion or overwrite stays local too', () => {
    const data = seeded(5, 1 << 20);
    const before = new Set(hashes(splitChunks(data)));
    const deleted = Buffer.concat([data.subarray(0, 500_000), data.subarray(500_100)]);
    expect(hashes(splitChunks(deleted)).filter((h) => !before.has(h)).length).toBeLessThanOrEqual(
      3,
    );
    const overwritten = Buffer.from(data);
    Buffer.from(seeded(6, 64)).copy(overwritten, 600_000);
    expect(
      hashes(splitChunks(overwritten)).filter((h) => !before.has(h)).length,
    ).toBeLessThanOrEqual(3);
  });

  it('rejects bad options with ChunkerConfigError', () => {
    const bad: ChunkerOptions[] = [
      { minSize: 10 },
      { avgSize: 3000 },
      { minSize: 8192, avgSize: 8192 },
      { maxSize: 1024 },
      { maxSize: 64 * 1024 * 1024 },
      { normalization: 4 },
      { normalization: 1.5 },
    ];
    for (const o of bad) expect(() => resolveChunkerOptions(o)).toThrow(ChunkerConfigError);
    const p = resolveChunkerOptions({
      minSize: 1024,
      avgSize: 4096,
      maxSize: 8192,
      normalization: 2,
    });
    expect(p.maskHard).toBe((~0 << (32 - 14)) | 0);
    expect(p.maskEasy).toBe((~0 << (32 - 10)) | 0);
  });
});
