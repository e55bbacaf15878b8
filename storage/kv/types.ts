// The small storage interface everything persistent sits behind. Keys are strings ordered by their
// UTF-8 bytes; values are bytes. Implementations: LevelStore (level on disk) and MemoryStore. Both
// pass one compliance suite (test/unit/storage/compliance.ts).

export interface WriteOptions {
  /**
   * Wait until the write is on disk (fsync) before resolving. Use for anything acknowledged to a
   * user or a peer. Default false.
   */
  sync?: boolean;
}

export type BatchOp =
  { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

export interface RangeOptions {
  /** Only keys starting with this string (combined with the bounds below). */
  prefix?: string;
  gt?: string;
  gte?: string;
  lt?: string;
  lte?: string;
  reverse?: boolean;
  /** At most this many entries. */
  limit?: number;
}

export interface KvStore {
  get(key: string): Promise<Uint8Array | undefined>;
  getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>>;
  put(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void>;
  del(key: string, opts?: WriteOptions): Promise<void>;
  /** Applies every operation or none. */
  batch(ops: readonly BatchOp[], opts?: WriteOptions): Promise<void>;
  /** Entries in key order (reverse order with `reverse`). */
  entries(opts?: RangeOptions): AsyncIterable<[string, Uint8Array]>;
  keys(opts?: RangeOptions): AsyncIterable<string>;
  /**
   * A view of the keys under `name`: its keys are stored as `\x01name\x01key` in this store, so
   * namespaces never overlap each other or plain keys that do not start with \x01.
   */
  namespace(name: string): KvStore;
  close(): Promise<void>;
}

/** Compares two strings by their UTF-8 bytes, the order level keeps keys in. */
export function compareUtf8(a: string, b: string): number {
  if (a === b) return 0;
  // Fast path: UTF-16 order equals UTF-8 order unless a surrogate pair meets U+E000..U+FFFF.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    const sa = ca >= 0xd800 && ca <= 0xdfff;
    const sb = cb >= 0xd800 && cb <= 0xdfff;
    if (sa !== sb && (ca >= 0xe000 || cb >= 0xe000)) return sa ? 1 : -1;
    return ca - cb;
  }
  return a.length - b.length;
}

/**
 * The smallest string greater than every string that starts with `prefix` (in UTF-8 order), or
 * undefined if there is none. Increments the last code point; code-point order is UTF-8 order.
 */
export function prefixSuccessor(prefix: string): string | undefined {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1;
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return undefined;
}

function maxBound(a: string | undefined, b: string): string {
  return a === undefined || compareUtf8(a, b) < 0 ? b : a;
}

/** Turns RangeOptions with a prefix into plain bounds (gte/gt/lt/lte), dropping `prefix`. */
export function resolveRange(opts: RangeOptions = {}): RangeOptions {
  const out: RangeOptions = { ...opts };
  delete out.prefix;
  if (opts.prefix === undefined || opts.prefix === '') return out;
  const lo = opts.prefix;
  if (out.gt !== undefined && compareUtf8(out.gt, lo) >= 0) {
    // gt already excludes everything below the prefix
  } else {
    delete out.gt;
    out.gte = maxBound(out.gte, lo);
  }
  const hi = prefixSuccessor(lo);
  if (hi !== undefined) {
    if (out.lte !== undefined && compareUtf8(out.lte, hi) < 0) {
      // lte is tighter
    } else {
      delete out.lte;
      if (out.lt === undefined || compareUtf8(out.lt, hi) > 0) out.lt = hi;
    }
  }
  return out;
}

export function inRange(key: string, r: RangeOptions): boolean {
  if (r.gt !== undefined && compareUtf8(key, r.gt) <= 0) return false;
  if (r.gte !== undefined && compareUtf8(key, r.gte) < 0) return false;
  if (r.lt !== undefined && compareUtf8(key, r.lt) >= 0) return false;
  if (r.lte !== undefined && compareUtf8(key, r.lte) > 0) return false;
  return true;
}
