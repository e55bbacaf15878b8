// A namespaced view of a KvStore, shared by every implementation: keys are stored with the prefix
// "\x01name\x01" in the parent store.
import {
  compareUtf8,
  resolveRange,
  type BatchOp,
  type KvStore,
  type RangeOptions,
  type WriteOptions,
} from './types.js';

const SEP = '\x01';

export function namespacePrefix(name: string): string {
  if (name.length === 0 || name.includes(SEP))
    throw new TypeError(`invalid namespace name ${JSON.stringify(name)}`);
  return `${SEP}${name}${SEP}`;
}

export class NamespacedStore implements KvStore {
  readonly #parent: KvStore;
  readonly #prefix: string;

  constructor(parent: KvStore, name: string) {
    this.#parent = parent;
    this.#prefix = namespacePrefix(name);
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#parent.get(this.#prefix + key);
  }

  getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    return this.#parent.getMany(keys.map((k) => this.#prefix + k));
  }

  put(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void> {
    return this.#parent.put(this.#prefix + key, value, opts);
  }

  del(key: string, opts?: WriteOptions): Promise<void> {
    return this.#parent.del(this.#prefix + key, opts);
  }

  batch(ops: readonly BatchOp[], opts?: WriteOptions): Promise<void> {
    return this.#parent.batch(
      ops.map((op) => ({ ...op, key: this.#prefix + op.key })),
      opts,
    );
  }

  #parentRange(opts: RangeOptions = {}): RangeOptions {
    const r = resolveRange(opts);
    const p = this.#prefix;
    const out: RangeOptions = { prefix: p, reverse: r.reverse, limit: r.limit };
    if (r.gt !== undefined) out.gt = p + r.gt;
    if (r.gte !== undefined) out.gte = p + r.gte;
    if (r.lt !== undefined) out.lt = p + r.lt;
    if (r.lte !== undefined) out.lte = p + r.lte;
    return out;
  }

  async *entries(opts?: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    const n = this.#prefix.length;
    for await (const [k, v] of this.#parent.entries(this.#parentRange(opts))) yield [k.slice(n), v];
  }

  async *keys(opts?: RangeOptions): AsyncIterable<string> {
    const n = this.#prefix.length;
    for await (const k of this.#parent.keys(this.#parentRange(opts))) yield k.slice(n);
  }

  namespace(name: string): KvStore {
    return new NamespacedStore(this, name);
  }

  /** Closing a namespace does nothing; close the root store. */
  async close(): Promise<void> {}
}

export { compareUtf8 };
