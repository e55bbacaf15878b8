// A KvStore for the simulator that behaves like a disk under power loss: everything written with
// `sync: true` survives crash(), and so does everything written before it (LevelDB's log is
// sequential: a synced write makes the earlier ones durable too); writes without sync made since
// the last synced one are rolled back by crash().
import {
  MemoryStore,
  type BatchOp,
  type KvStore,
  type RangeOptions,
  type WriteOptions,
} from '../../../storage/index.js';
import { NamespacedStore } from '../../../storage/kv/namespace.js';

export class CrashStore implements KvStore {
  readonly #inner = new MemoryStore();
  #undo: Array<[key: string, prev: Uint8Array | undefined]> = [];
  /** Rolled-back operations over the store's life (for the report). */
  lostOps = 0;

  async #before(keys: readonly string[], opts?: WriteOptions): Promise<void> {
    if (opts?.sync) {
      this.#undo = [];
      return;
    }
    const prev = await this.#inner.getMany(keys);
    keys.forEach((k, i) => this.#undo.push([k, prev[i]]));
  }

  /** Power loss: drops the writes not yet made durable. */
  async crash(): Promise<void> {
    const undo = this.#undo;
    this.#undo = [];
    this.lostOps += undo.length;
    const ops: BatchOp[] = [];
    for (let i = undo.length - 1; i >= 0; i--) {
      const [key, prev] = undo[i];
      ops.push(prev === undefined ? { type: 'del', key } : { type: 'put', key, value: prev });
    }
    await this.#inner.batch(ops);
  }

  get(key: string): Promise<Uint8Array | undefined> {
    return this.#inner.get(key);
  }

  getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    return this.#inner.getMany(keys);
  }

  async put(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void> {
    await this.#before([key], opts);
    await this.#inner.put(key, value);
  }

  async del(key: string, opts?: WriteOptions): Promise<void> {
    await this.#before([key], opts);
    await this.#inner.del(key);
  }

  async batch(ops: readonly BatchOp[], opts?: WriteOptions): Promise<void> {
    await this.#before(
      ops.map((o) => o.key),
      opts,
    );
    await this.#inner.batch(ops);
  }

  entries(opts?: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    return this.#inner.entries(opts);
  }

  keys(opts?: RangeOptions): AsyncIterable<string> {
    return this.#inner.keys(opts);
  }

  namespace(name: string): KvStore {
    return new NamespacedStore(this, name);
  }

  /** The disk outlives the process: closing does nothing. */
  async close(): Promise<void> {}
}
