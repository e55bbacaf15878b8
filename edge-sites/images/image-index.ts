// An image's distinct chunks in order of first appearance: what chunk indexes on the wire mean.
import type { Manifest } from '../../storage/images/index.js';

export class ImageIndex {
  readonly digest: string;
  readonly hashes: string[] = [];
  readonly sizes: number[] = [];
  readonly #pos = new Map<string, number>();

  constructor(m: Pick<Manifest, 'digest' | 'chunks'>) {
    this.digest = m.digest;
    for (const c of m.chunks) {
      if (this.#pos.has(c.hash)) continue;
      this.#pos.set(c.hash, this.hashes.length);
      this.hashes.push(c.hash);
      this.sizes.push(c.size);
    }
  }

  get size(): number {
    return this.hashes.length;
  }

  indexOf(hash: string): number | undefined {
    return this.#pos.get(hash);
  }

  bytesOf(indexes: Iterable<number>): number {
    let n = 0;
    for (const i of indexes) n += this.sizes[i];
    return n;
  }
}
