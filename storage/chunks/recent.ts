// The chunks stored most recently, kept in memory up to a byte budget (least recently stored or
// served goes first). A relay serves what it just received: while an image spreads, most requests
// are for chunks a few seconds old, and reading them back from the pack and hashing them again
// was ~15% of a relaying agent's CPU. Only bytes that were hashed on their way in are kept.

/** Bytes of a buffer beyond the chunk in it that the cache accepts rather than copy the chunk. */
const MAX_SLACK_BYTES = 4096;

export class RecentChunks {
  readonly #max: number;
  readonly #map = new Map<string, Uint8Array>();
  #bytes = 0;

  constructor(maxBytes: number) {
    this.#max = Math.max(0, maxBytes);
  }

  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Keeps `bytes` under `key`, evicting the oldest entries over the budget. A private copy is
   * kept unless the caller hands the bytes over (`handOver`: it will not modify them) and they are
   * not a small view of a much larger buffer (a chunk inside a received frame is kept as is, one
   * inside a big read buffer is copied). The budget counts the memory held, whole buffers.
   */
  add(key: string, bytes: Uint8Array, handOver = false): void {
    const kept =
      handOver && bytes.buffer.byteLength - bytes.byteLength <= MAX_SLACK_BYTES
        ? bytes
        : new Uint8Array(bytes);
    const size = kept.buffer.byteLength;
    if (size > this.#max) return;
    this.delete(key);
    this.#map.set(key, kept);
    this.#bytes += size;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.#max) break;
      this.#map.delete(k);
      this.#bytes -= v.buffer.byteLength;
    }
  }

  /** The bytes under `key` (do not modify them), now the most recently used. */
  get(key: string): Uint8Array | undefined {
    const v = this.#map.get(key);
    if (v === undefined) return undefined;
    this.#map.delete(key);
    this.#map.set(key, v);
    return v;
  }

  delete(key: string): void {
    const v = this.#map.get(key);
    if (v === undefined) return;
    this.#map.delete(key);
    this.#bytes -= v.buffer.byteLength;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
}
