// The chunks stored most recently, kept in memory up to a byte budget (least recently stored or
// served goes first). A relay serves what it just received: while an image spreads, most requests
// are for chunks a few seconds old, and reading them back from the pack and hashing them again
// was ~15% of a relaying agent's CPU. Only bytes that were hashed on their way in are kept.

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

  /** Keeps a private copy of `bytes` under `key`, evicting the oldest entries over the budget. */
  add(key: string, bytes: Uint8Array): void {
    if (bytes.length > this.#max) return;
    this.delete(key);
    this.#map.set(key, Buffer.from(bytes));
    this.#bytes += bytes.length;
    for (const [k, v] of this.#map) {
      if (this.#bytes <= this.#max) break;
      this.#map.delete(k);
      this.#bytes -= v.length;
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
    this.#bytes -= v.length;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }
}
