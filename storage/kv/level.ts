// KvStore on level (classic-level, LevelDB on disk). Keys are utf8 strings, values raw bytes.
import { Level } from 'level';
import { StoreClosedError, StoreLockedError } from '../errors.js';
import { NamespacedStore } from './namespace.js';
import {
  resolveRange,
  type BatchOp,
  type KvStore,
  type RangeOptions,
  type WriteOptions,
} from './types.js';

type Db = Level<string, Uint8Array>;

function levelRange(opts?: RangeOptions): Record<string, unknown> {
  const r = resolveRange(opts);
  const out: Record<string, unknown> = {};
  if (r.gt !== undefined) out.gt = r.gt;
  if (r.gte !== undefined) out.gte = r.gte;
  if (r.lt !== undefined) out.lt = r.lt;
  if (r.lte !== undefined) out.lte = r.lte;
  if (r.reverse) out.reverse = true;
  if (r.limit !== undefined) out.limit = r.limit;
  return out;
}

export class LevelStore implements KvStore {
  readonly path: string;
  readonly #db: Db;

  private constructor(path: string, db: Db) {
    this.path = path;
    this.#db = db;
  }

  /** Opens (creating if needed) the database at `path`. */
  static async open(path: string): Promise<LevelStore> {
    const db: Db = new Level<string, Uint8Array>(path, {
      keyEncoding: 'utf8',
      valueEncoding: 'view',
    });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if ((err as { code?: string }).code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
        throw new StoreLockedError(path, { cause: err });
      }
      throw err;
    }
    return new LevelStore(path, db);
  }

  #check(): void {
    if (this.#db.status !== 'open') throw new StoreClosedError();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check();
    return (await this.#db.get(key)) ?? undefined;
  }

  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    this.#check();
    const vals = await this.#db.getMany(keys as string[]);
    return vals.map((v) => v ?? undefined);
  }

  async put(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void> {
    this.#check();
    await this.#db.put(key, value, { sync: opts?.sync ?? false });
  }

  async del(key: string, opts?: WriteOptions): Promise<void> {
    this.#check();
    await this.#db.del(key, { sync: opts?.sync ?? false });
  }

  async batch(ops: readonly BatchOp[], opts?: WriteOptions): Promise<void> {
    this.#check();
    if (ops.length === 0) return;
    await this.#db.batch(
      ops.map((op) =>
        op.type === 'put'
          ? { type: 'put', key: op.key, value: op.value }
          : { type: 'del', key: op.key },
      ),
      { sync: opts?.sync ?? false },
    );
  }

  async *entries(opts?: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    this.#check();
    for await (const [k, v] of this.#db.iterator(levelRange(opts))) yield [k, v];
  }

  async *keys(opts?: RangeOptions): AsyncIterable<string> {
    this.#check();
    for await (const k of this.#db.keys(levelRange(opts))) yield k;
  }

  namespace(name: string): KvStore {
    return new NamespacedStore(this, name);
  }

  async close(): Promise<void> {
    if (this.#db.status === 'open' || this.#db.status === 'opening') await this.#db.close();
  }
}
