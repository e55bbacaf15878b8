// FastCDC content-defined chunking with normalized chunking (Xia et al., USENIX ATC'16, and the
// 2020 TPDS follow-up). Pure: no I/O, no clock, no randomness at run time.
//
// How a cut point is found, for a chunk starting at offset s:
//   - the first `minSize` bytes are skipped without hashing (cut-point skipping);
//   - from s+minSize a 32-bit Gear hash rolls over the bytes: h = (h << 1) + GEAR[byte] (mod 2^32),
//     so each bit of h depends on at most the last 32 bytes;
//   - while the chunk is shorter than `avgSize` a byte ends the chunk when the top
//     (log2(avgSize) + normalization) bits of h are all zero (the "hard" mask), from `avgSize` on
//     when the top (log2(avgSize) - normalization) bits are zero (the "easy" mask). This is
//     normalized chunking: it squeezes chunk sizes towards the average;
//   - a chunk never exceeds `maxSize` bytes.
// The decision at a byte depends only on the bytes of the current chunk up to it, so the result
// is the same however the stream is split into buffers (FastCdc.push keeps the state between
// calls) and an edit only disturbs the chunks around it.
//
// The masks use the top bits of the 32-bit hash: bit k of a Gear hash mixes the last k+1 bytes,
// so the top bits see the whole 32-byte window (the 2016 paper spreads its masks over a 64-bit
// hash for the same reason; JavaScript has fast 32-bit integers only).
//
// The Gear table and the mask rule are part of the storage format: changing either moves every
// cut point, and new images would share no chunks with old ones. A test pins the table's sha256
// and the cut points of a fixed input.
import { ChunkerConfigError } from '../errors.js';

// The defaults were chosen with bench/chunking.ts (the measured table is at its top): with them a
// 256 MiB image whose bytes are 1% rewritten in 100 scattered places needs new chunks totalling
// ~2.2% of the image plus a manifest of ~0.17% (targets: under 2.5%, and under 3% in all).
// Averages of 32 KiB and 64 KiB need ~3.2% and ~5.5% of new chunks; 8 KiB needs ~1.6% but a
// manifest twice as large (~0.35%) and twice the chunk files, fsyncs and requests.

/** Default minimum chunk size. Unit: bytes. Default 4 KiB (avg/4, as in the FastCDC papers). */
export const DEFAULT_MIN_SIZE = 4 * 1024;
/** Default average (target) chunk size. Unit: bytes, a power of two. Default 16 KiB (see above). */
export const DEFAULT_AVG_SIZE = 16 * 1024;
/**
 * Default maximum chunk size. Unit: bytes. Default 128 KiB, 8x the average. Chunks this long are
 * rare on real data (none in 13k chunks of random data; the 95th percentile is ~38 KiB); the limit
 * bounds the memory a chunk needs (import, serving, transfer) and cuts a run of one repeated byte
 * (zeros: the hash settles on a constant that never matches) into 128 KiB chunks.
 */
export const DEFAULT_MAX_SIZE = 128 * 1024;
/**
 * Default normalization level: how many mask bits are added before the average and removed after
 * it. Unit: bits, 0..3. Default 1 (NC-1). On the scattered-update benchmark level 1 needs ~5%
 * fewer new bytes than level 0, ~10% fewer than level 2 and ~35% fewer than level 3: higher levels
 * make a cut depend more on where its chunk began, so after an edit the old and new cut points
 * take longer to fall back into step. The price of level 1 over level 0: a small insertion
 * disturbs more than 3 chunks in ~0.09% of cases (level 0: none in 20,000 trials; level 2: 0.67%).
 */
export const DEFAULT_NORMALIZATION = 1;

/** Smallest accepted minSize (bytes): below this the hash window (32 bytes) dominates. */
export const MIN_MIN_SIZE = 64;
/** Largest accepted maxSize (bytes): 16 MiB, so a chunk always fits comfortably in memory. */
export const MAX_MAX_SIZE = 16 * 1024 * 1024;

export interface ChunkerOptions {
  /** Bytes; chunks are at least this long (except the last one of a stream). */
  minSize?: number;
  /** Bytes, a power of two: the target average chunk size. */
  avgSize?: number;
  /** Bytes; no chunk is longer. */
  maxSize?: number;
  /** 0..3; see DEFAULT_NORMALIZATION. */
  normalization?: number;
}

/** Resolved, validated chunker parameters. */
export interface ChunkerParams {
  readonly minSize: number;
  readonly avgSize: number;
  readonly maxSize: number;
  readonly normalization: number;
  /** The mask used while the chunk is shorter than avgSize (more bits: cuts are rarer). */
  readonly maskHard: number;
  /** The mask used from avgSize on (fewer bits: cuts are likelier). */
  readonly maskEasy: number;
}

/** splitmix32: a tiny, well-mixed PRNG; used once, to build the Gear table. */
function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/**
 * Seed of the Gear table: the ASCII bytes "edgc" (edgeswarm CDC). The table is the first 256
 * outputs of splitmix32 from this seed (all distinct, about half their bits set). Part of the
 * storage format: see the header.
 */
export const GEAR_SEED = 0x65646763;

/** The Gear table: 256 pseudo-random 32-bit values, stored as int32 for fast int32 arithmetic. */
export const GEAR: Int32Array = (() => {
  const next = splitmix32(GEAR_SEED);
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) t[i] = next() | 0;
  return t;
})();

/** A mask of the top `bits` bits of a 32-bit word, as an int32. */
function topBits(bits: number): number {
  return bits <= 0 ? 0 : (~0 << (32 - bits)) | 0;
}

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Validates the options and fills in the defaults; throws ChunkerConfigError. */
export function resolveChunkerOptions(opts: ChunkerOptions = {}): ChunkerParams {
  const minSize = opts.minSize ?? DEFAULT_MIN_SIZE;
  const avgSize = opts.avgSize ?? DEFAULT_AVG_SIZE;
  const maxSize = opts.maxSize ?? DEFAULT_MAX_SIZE;
  const normalization = opts.normalization ?? DEFAULT_NORMALIZATION;
  if (!Number.isInteger(minSize) || minSize < MIN_MIN_SIZE)
    throw new ChunkerConfigError(`minSize must be an integer >= ${MIN_MIN_SIZE}, got ${minSize}`);
  if (!isPowerOfTwo(avgSize) || avgSize <= minSize)
    throw new ChunkerConfigError(
      `avgSize must be a power of two above minSize (${minSize}), got ${avgSize}`,
    );
  if (!Number.isInteger(maxSize) || maxSize <= avgSize || maxSize > MAX_MAX_SIZE)
    throw new ChunkerConfigError(
      `maxSize must be an integer above avgSize (${avgSize}) and at most ${MAX_MAX_SIZE}, got ${maxSize}`,
    );
  const bits = Math.log2(avgSize);
  if (!Number.isInteger(normalization) || normalization < 0 || normalization > 3)
    throw new ChunkerConfigError(`normalization must be 0, 1, 2 or 3, got ${normalization}`);
  if (bits + normalization > 31 || bits - normalization < 1)
    throw new ChunkerConfigError(`avgSize ${avgSize} is out of range for level ${normalization}`);
  return {
    minSize,
    avgSize,
    maxSize,
    normalization,
    maskHard: topBits(bits + normalization),
    maskEasy: topBits(bits - normalization),
  };
}

/** The hash after the last scan() call (a second return value without an allocation). */
let scanHash = 0;

/**
 * The hot loop: rolls the Gear hash from `h` over data[i..end) and returns the index just after
 * the first byte where (hash & mask) === 0, or -1 if there is none. Leaves the hash in scanHash.
 * Unrolled eight times: on V8 (Node 20) that measured ~2x the speed of 4 or 6 lanes (~1.2 GB/s
 * against ~0.6) and within 15% of 16 lanes.
 */
function scan(data: Uint8Array, i: number, end: number, h: number, mask: number): number {
  const g = GEAR;
  const end8 = end - 7;
  for (; i < end8; i += 8) {
    h = ((h << 1) + g[data[i]]) | 0;
    if ((h & mask) === 0) return found(h, i + 1);
    h = ((h << 1) + g[data[i + 1]]) | 0;
    if ((h & mask) === 0) return found(h, i + 2);
    h = ((h << 1) + g[data[i + 2]]) | 0;
    if ((h & mask) === 0) return found(h, i + 3);
    h = ((h << 1) + g[data[i + 3]]) | 0;
    if ((h & mask) === 0) return found(h, i + 4);
    h = ((h << 1) + g[data[i + 4]]) | 0;
    if ((h & mask) === 0) return found(h, i + 5);
    h = ((h << 1) + g[data[i + 5]]) | 0;
    if ((h & mask) === 0) return found(h, i + 6);
    h = ((h << 1) + g[data[i + 6]]) | 0;
    if ((h & mask) === 0) return found(h, i + 7);
    h = ((h << 1) + g[data[i + 7]]) | 0;
    if ((h & mask) === 0) return found(h, i + 8);
  }
  for (; i < end; i++) {
    h = ((h << 1) + g[data[i]]) | 0;
    if ((h & mask) === 0) return found(h, i + 1);
  }
  scanHash = h;
  return -1;
}

function found(h: number, cut: number): number {
  scanHash = h;
  return cut;
}

/**
 * Streaming FastCDC. Feed buffers of any size with push(); each call returns the stream offsets
 * at which chunks ended inside that buffer. Call finish() at the end of the stream for the last
 * (possibly short) chunk. The boundaries do not depend on how the stream was split.
 *
 * ```ts
 * const cdc = new FastCdc();
 * for await (const buf of source) for (const end of cdc.push(buf)) emit(end);
 * const last = cdc.finish(); if (last !== undefined) emit(last);
 * ```
 */
export class FastCdc {
  readonly params: ChunkerParams;
  /** Bytes fed so far. */
  #offset = 0;
  /** Bytes of the current (unfinished) chunk fed so far. */
  #pending = 0;
  /** Gear hash state of the current chunk (int32). */
  #hash = 0;

  constructor(opts?: ChunkerOptions | ChunkerParams) {
    this.params =
      opts !== undefined && 'maskHard' in opts ? opts : resolveChunkerOptions(opts ?? {});
  }

  /** Total bytes fed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** Bytes fed since the last boundary (the start of the unfinished chunk). */
  get pending(): number {
    return this.#pending;
  }

  /**
   * Feeds `data` and returns the stream offsets (ascending, exclusive ends) of the chunks that
   * ended inside it. The buffer is only read during the call.
   */
  push(data: Uint8Array): number[] {
    const out: number[] = [];
    const n = data.length;
    if (n === 0) return out;
    const { minSize, avgSize, maxSize, maskHard, maskEasy } = this.params;
    const origin = this.#offset;
    // `base` is the index in `data` where the current chunk starts (<= 0 if it began earlier).
    let base = -this.#pending;
    let h = this.#hash;
    let i = 0;
    for (;;) {
      // Cut-point skipping: bytes before minSize are never looked at.
      const first = base + minSize;
      if (i < first) {
        if (first >= n) break;
        i = first;
      }
      const hardEnd = Math.min(base + avgSize, n);
      let cut = -1;
      if (i < hardEnd) {
        cut = scan(data, i, hardEnd, h, maskHard);
        h = scanHash;
        i = hardEnd;
      }
      if (cut < 0) {
        const limit = base + maxSize;
        const easyEnd = Math.min(limit, n);
        if (i < easyEnd) {
          cut = scan(data, i, easyEnd, h, maskEasy);
          h = scanHash;
        }
        if (cut < 0) {
          if (easyEnd !== limit) break; // buffer exhausted inside the chunk
          cut = limit;
        }
      }
      out.push(origin + cut);
      base = cut;
      i = cut;
      h = 0;
    }
    this.#pending = n - base;
    this.#hash = h;
    this.#offset = origin + n;
    return out;
  }

  /**
   * Ends the stream: returns the end offset of the last chunk, or undefined if every byte is
   * already in a chunk. The chunker is then ready for a new stream starting at offset 0.
   */
  finish(): number | undefined {
    const end = this.#pending > 0 ? this.#offset : undefined;
    this.reset();
    return end;
  }

  /** Forgets all state; the next push starts a new stream at offset 0. */
  reset(): void {
    this.#offset = 0;
    this.#pending = 0;
    this.#hash = 0;
  }
}

/**
 * One-shot: the chunk end offsets of a whole buffer, ascending, the last one `data.length`
 * (empty for an empty buffer).
 */
export function cutPoints(data: Uint8Array, opts?: ChunkerOptions | ChunkerParams): number[] {
  const cdc = new FastCdc(opts);
  const ends = cdc.push(data);
  const last = cdc.finish();
  if (last !== undefined) ends.push(last);
  return ends;
}

/** One-shot: the chunks of a whole buffer, as views into it (no copy). */
export function splitChunks(data: Uint8Array, opts?: ChunkerOptions | ChunkerParams): Uint8Array[] {
  const out: Uint8Array[] = [];
  let start = 0;
  for (const end of cutPoints(data, opts)) {
    out.push(data.subarray(start, end));
    start = end;
  }
  return out;
}

/**
 * Runs the chunker once over 64 KiB of pseudo-random bytes with tiny chunk sizes, split in odd
 * pieces, so that V8 has seen every path of push() and scan() (every unrolled lane hitting, both
 * masks, the max cut) before it optimizes them. Without this, the first real stream deoptimizes
 * scan() hundreds of times ("insufficient type feedback") and runs at half speed. ~0.3 ms.
 */
function warmUp(): void {
  const next = splitmix32(1);
  const data = new Uint8Array(64 * 1024);
  for (let i = 0; i < data.length; i++) data[i] = next() & 0xff;
  const tiny = resolveChunkerOptions({ minSize: 64, avgSize: 128, maxSize: 192, normalization: 1 });
  for (const step of [1, 7, 4096, data.length]) {
    const cdc = new FastCdc(tiny);
    for (let o = 0; o < data.length; o += step) cdc.push(data.subarray(o, o + step));
    cdc.finish();
  }
}
warmUp();
