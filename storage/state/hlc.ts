// Hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014): a timestamp
// is (wall, counter) where wall is the largest physical time in ms the node has heard of and the
// counter orders events within one wall value. It stays close to physical time, never goes
// backwards, and is larger than every timestamp the node has sent or received before.
//
// Pure: the physical clock is injected (`now`, ms since the epoch). Encodings: 8 bytes big-endian
// (wall in the high 48 bits, counter in the low 16), so byte order is timestamp order; a 16-digit
// hex string of the same (the user-visible "version", ordered as strings); two varints on the wire.
import { ClockDriftError } from '../errors.js';
import { DEFAULT_MAX_DRIFT_MS } from './config.js';

export interface Hlc {
  /** Physical part, ms since the Unix epoch, 0 <= wall <= HLC_MAX_WALL. */
  readonly wall: number;
  /** Logical part, 0 <= counter <= HLC_MAX_COUNTER. */
  readonly counter: number;
}

/** 2^48 - 1 ms: the year 10889. */
export const HLC_MAX_WALL = 2 ** 48 - 1;
/** The counter has 16 bits. On overflow the wall is advanced by 1 ms (borrowing from the future). */
export const HLC_MAX_COUNTER = 0xffff;

export const HLC_ZERO: Hlc = Object.freeze({ wall: 0, counter: 0 });

export function isHlc(h: Hlc): boolean {
  return (
    Number.isInteger(h.wall) &&
    h.wall >= 0 &&
    h.wall <= HLC_MAX_WALL &&
    Number.isInteger(h.counter) &&
    h.counter >= 0 &&
    h.counter <= HLC_MAX_COUNTER
  );
}

/** Total order: by wall, then counter. */
export function compareHlc(a: Hlc, b: Hlc): number {
  return a.wall !== b.wall ? a.wall - b.wall : a.counter - b.counter;
}

export function maxHlc(a: Hlc, b: Hlc): Hlc {
  return compareHlc(a, b) >= 0 ? a : b;
}

/** The next timestamp after `h` with the same or a later wall. */
function increment(h: Hlc): Hlc {
  if (h.counter < HLC_MAX_COUNTER) return { wall: h.wall, counter: h.counter + 1 };
  return { wall: h.wall + 1, counter: 0 };
}

/** 16 lowercase hex digits (wall: 12, counter: 4); string order is timestamp order. */
export function hlcToString(h: Hlc): string {
  return h.wall.toString(16).padStart(12, '0') + h.counter.toString(16).padStart(4, '0');
}

/** Inverse of hlcToString; undefined if `s` is not 16 hex digits. */
export function hlcFromString(s: string): Hlc | undefined {
  if (!/^[0-9a-f]{16}$/.test(s)) return undefined;
  return { wall: parseInt(s.slice(0, 12), 16), counter: parseInt(s.slice(12), 16) };
}

/** 8 bytes, big-endian: wall (48 bits) then counter (16 bits). */
export function hlcToBytes(h: Hlc): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint16(0, Math.floor(h.wall / 2 ** 32));
  view.setUint32(2, h.wall % 2 ** 32);
  view.setUint16(6, h.counter);
  return out;
}

export function hlcFromBytes(b: Uint8Array): Hlc {
  if (b.length !== 8) throw new RangeError('an HLC is 8 bytes');
  const view = new DataView(b.buffer, b.byteOffset, 8);
  return { wall: view.getUint16(0) * 2 ** 32 + view.getUint32(2), counter: view.getUint16(6) };
}

/** As one 64-bit integer (wall * 2^16 + counter). */
export function hlcToBigInt(h: Hlc): bigint {
  return (BigInt(h.wall) << 16n) | BigInt(h.counter);
}

export interface HybridClockOptions {
  /** Physical clock, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** See DEFAULT_MAX_DRIFT_MS. */
  maxDriftMs?: number;
  /** The clock starts above this (the persisted high-water mark after a restart). */
  last?: Hlc;
}

export class HybridClock {
  readonly maxDriftMs: number;
  readonly #physical: () => number;
  #last: Hlc;

  constructor(opts: HybridClockOptions = {}) {
    this.#physical = opts.now ?? Date.now;
    this.maxDriftMs = opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS;
    this.#last = opts.last ?? HLC_ZERO;
  }

  /** The largest timestamp issued or observed so far. */
  get last(): Hlc {
    return this.#last;
  }

  #wallNow(): number {
    return Math.min(HLC_MAX_WALL, Math.max(0, Math.floor(this.#physical())));
  }

  /** A timestamp for a local event (a write): larger than every one issued or observed before. */
  now(): Hlc {
    const pt = this.#wallNow();
    this.#last = pt > this.#last.wall ? { wall: pt, counter: 0 } : increment(this.#last);
    return this.#last;
  }

  /**
   * Throws ClockDriftError if `remote` is more than maxDriftMs ahead of local physical time, and
   * RangeError if it is not a valid timestamp. Changes nothing.
   */
  check(remote: Hlc): void {
    if (!isHlc(remote)) throw new RangeError('invalid HLC');
    const drift = remote.wall - this.#wallNow();
    if (drift > this.maxDriftMs) throw new ClockDriftError(drift, this.maxDriftMs);
  }

  /**
   * The receive rule of the paper: checks drift, then returns a timestamp larger than both the
   * local clock and `remote` (and at least physical time).
   */
  update(remote: Hlc): Hlc {
    this.check(remote);
    const pt = this.#wallNow();
    const l = this.#last;
    const wall = Math.max(l.wall, remote.wall, pt);
    let counter: number;
    if (wall === l.wall && wall === remote.wall) counter = Math.max(l.counter, remote.counter) + 1;
    else if (wall === l.wall) counter = l.counter + 1;
    else if (wall === remote.wall) counter = remote.counter + 1;
    else counter = 0;
    this.#last = counter > HLC_MAX_COUNTER ? { wall: wall + 1, counter: 0 } : { wall, counter };
    return this.#last;
  }

  /** Checks drift, then raises the clock to at least `remote` without issuing a timestamp. */
  receive(remote: Hlc): void {
    this.check(remote);
    this.observe(remote);
  }

  /**
   * Raises the clock to at least `h`, without a drift check: for timestamps already trusted (read
   * back from local storage), so that the next now() is above them.
   */
  observe(h: Hlc): void {
    if (compareHlc(h, this.#last) > 0) this.#last = h;
  }
}
