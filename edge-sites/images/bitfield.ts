// A fixed-size set of chunk indexes as bits (which of an image's chunks a peer holds).
export class Bitfield {
  readonly size: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(size: number, bytes?: Uint8Array) {
    this.size = size;
    this.bytes = new Uint8Array(Math.ceil(size / 8));
    if (bytes) {
      if (bytes.length !== this.bytes.length)
        throw new RangeError(`bitfield of ${bytes.length} bytes for ${size} bits`);
      this.bytes.set(bytes);
      // bits past `size` must be zero
      const extra = this.bytes.length * 8 - size;
      if (extra > 0 && (this.bytes[this.bytes.length - 1] & ((1 << extra) - 1)) !== 0)
        throw new RangeError('bits set past the end');
      for (let i = 0; i < size; i++) if (this.has(i)) this.#count++;
    }
  }

  has(i: number): boolean {
    return (this.bytes[i >> 3] & (0x80 >> (i & 7))) !== 0;
  }

  /** Sets bit i; returns true if it was not set. */
  set(i: number): boolean {
    if (i < 0 || i >= this.size || this.has(i)) return false;
    this.bytes[i >> 3] |= 0x80 >> (i & 7);
    this.#count++;
    return true;
  }

  /** Clears bit i; returns true if it was set. */
  clear(i: number): boolean {
    if (i < 0 || i >= this.size || !this.has(i)) return false;
    this.bytes[i >> 3] &= ~(0x80 >> (i & 7));
    this.#count--;
    return true;
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.size;
  }
}
