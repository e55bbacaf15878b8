// An in-memory KvStore: for tests and the simulator. Same semantics as LevelStore (the compliance
// suite checks both), nothing persists.
import { StoreClosedError } from '../errors.js';
import { NamespacedStore } from './namespace.js';
import {
  compareUtf8,
  inRange,
  resolveRange,
  type BatchOp,
  type KvStore,
  type RangeOptions,
} from './types.js';

export class MemoryStore implements KvStore {
  readonly #data = new Map<string, Uint8Array>();
  #sorted: string[] | undefined;
  #closed = false;

  #check(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    const v = this.#data.get(key);
    return v === undefined ? undefined : v.slice();
  }

  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    this.#check();
    return keys.map((k) => this.#data.get(k)?.slice());
  }

  async put(key: string, value: Uint8Array): Promise<void> {
    this.#check();
    if (!this.#data.has(key)) this.#sorted = undefined;
    this.#data.set(key, value.slice());
  }

  async del(key: string): Promise<void> {
    this.#check();
    if (this.#data.delete(key)) this.#sorted = undefined;
  }

  async batch(ops: readonly BatchOp[]): Promise<void> {
    this.#check();
    for (const op of ops) {
      if (op.type === 'put') {
        if (!this.#data.has(op.key)) this.#sorted = undefined;
        this.#data.set(op.key, op.value.slice());
      } else if (this.#data.delete(op.key)) {
        this.#sorted = undefined;
      }
    }
  }

  #keysInRange(opts?: RangeOptions): string[] {
    this.#check();
    this.#sorted ??= [...this.#data.keys()].sort(compareUtf8);
    const r = resolveRange(opts);
    let keys = this.#sorted.filter((k) => inRange(k, r));
    if (r.reverse) keys = keys.reverse();
    if (r.limit !== undefined && r.limit >= 0) keys = keys.slice(0, r.limit);
    return keys;
  }

  async *entries(opts?: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    for (const k of this.#keysInRange(opts)) {
      const v = this.#data.get(k);
      if (v !== undefined) yield [k, v.slice()];
    }
  }

  async *keys(opts?: RangeOptions): AsyncIterable<string> {
    for (const k of this.#keysInRange(opts)) if (this.#data.has(k)) yield k;
  }

  namespace(name: string): KvStore {
    return new NamespacedStore(this, name);
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
