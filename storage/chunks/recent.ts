// The chunks stored most recently, kept in memory up to a byte budget. A relay serves what it just
// received: while an image spreads, most requests are for chunks a few seconds old, and reading
// them back from the pack and hashing them again was ~15% of a relaying agent's CPU. Only bytes
// that were hashed on their way in are kept.
//
// The bytes live in one ring buffer, allocated at the first add and written in order, oldest
// overwritten first. The cache first kept each chunk as its own buffer: every one of those lived
// long enough to reach V8's old generation, so the collector saw the whole transfer rate as
// external memory to reclaim and ran a full mark-compact every few MB (13-18 per 268 MB pulled
// over loopback, 2 without the cache; the receiver used 13.4-13.7 CPU-ms per MB with it and
// 10.1-10.4 without, see docs/benchmarks.md). A ring is one long-lived allocation, whatever
// passes through it.

interface Slot {
  offset: number;
  length: number;
}

export class RecentChunks {
  readonly #capacity: number;
  #ring: Buffer | undefined;
  /** Where the next chunk goes. */
  #head = 0;
  /**
   * Live chunks in the order they were written. Invariant: the chunks written before the ring last
   * wrapped come first and all start at or after #head; those written since end at or before it.
   */
  readonly #slots = new Map<string, Slot>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#capacity = Math.max(0, Math.floor(maxBytes));
  }

  /** Bytes of the chunks held (the ring itself is `maxBytes`, once anything was added). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Copies `bytes` in under `key`, overwriting the oldest chunks it needs the room of. */
  add(key: string, bytes: Uint8Array): void {
    const length = bytes.byteLength;
    if (length === 0 || length > this.#capacity) return;
    this.delete(key);
    this.#ring ??= Buffer.allocUnsafeSlow(this.#capacity);
    if (this.#head + length > this.#capacity) {
      // wrap: what is left of the previous lap is the oldest and goes; this lap becomes it
      this.#evictWhile((s) => s.offset >= this.#head);
      this.#head = 0;
    }
    const end = this.#head + length;
    this.#evictWhile((s) => s.offset >= this.#head && s.offset < end);
    this.#ring.set(bytes, this.#head);
    this.#slots.set(key, { offset: this.#head, length });
    this.#bytes += length;
    this.#head = end;
  }

  /** A copy of the bytes under `key` (the ring moves on, so a view of it would not stay valid). */
  get(key: string): Uint8Array | undefined {
    const s = this.#slots.get(key);
    if (s === undefined || this.#ring === undefined) return undefined;
    return new Uint8Array(this.#ring.subarray(s.offset, s.offset + s.length));
  }

  delete(key: string): void {
    const s = this.#slots.get(key);
    if (s === undefined) return;
    this.#slots.delete(key);
    this.#bytes -= s.length;
  }

  /** Forgets every chunk and lets the ring go. */
  clear(): void {
    this.#slots.clear();
    this.#bytes = 0;
    this.#head = 0;
    this.#ring = undefined;
  }

  /** Drops the oldest chunks while `test` holds for the oldest. */
  #evictWhile(test: (s: Slot) => boolean): void {
    for (const [key, s] of this.#slots) {
      if (!test(s)) return;
      this.#slots.delete(key);
      this.#bytes -= s.length;
    }
  }
}
