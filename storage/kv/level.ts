// KvStore on level (classic-level, LevelDB on disk). Keys are utf8 strings, values raw bytes.
//
// A write that fails (a full disk) can leave a torn record in LevelDB's log, and its recovery at
// the next open drops the rest of that log block and whatever was appended after it: every write
// acknowledged after a full disk was lost at the next restart. So after a write fails with an I/O
// error this store refuses writes (StoreFailedError) until it has closed and reopened the
// database, which recovers the log up to the torn record and starts a new one. Reads go on until
// the reopen; a scan running across it ends with StoreClosedError, and if the open fails, reads
// fail too until a retry opens it.
import { statfs } from 'node:fs/promises';
import { Level } from 'level';
import { isOutOfSpace, StoreClosedError, StoreFailedError, StoreLockedError } from '../errors.js';
import { NamespacedStore } from './namespace.js';
import {
  resolveRange,
  type BatchOp,
  type KvStore,
  type RangeOptions,
  type WriteOptions,
} from './types.js';

export type Db = Level<string, Uint8Array>;

/**
 * A store whose write failed is reopened this long after, checking this often for the free space
 * below (ms); after an open that fails, the wait doubles up to LEVEL_REOPEN_MAX_MS.
 */
export const LEVEL_REOPEN_MS = 2_000;
export const LEVEL_REOPEN_MAX_MS = 60_000;
/**
 * It is reopened only when the device holding it has this much free (bytes): recovery writes the
 * recovered log as a table and a new manifest, and an open that fails leaves no database to read.
 */
export const LEVEL_REOPEN_FREE_BYTES = 16 * 2 ** 20;

export interface LevelStoreOptions {
  logger?: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
  /** Makes the database at each (re)open; tests wrap it to inject failures. */
  openDb?: (path: string) => Db;
}

/**
 * An error of the disk under the database (LevelDB's I/O errors, a full disk), not of the call:
 * only these may have torn the log.
 */
function isIoError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'LEVEL_IO_ERROR' || code === 'LEVEL_CORRUPTION' || isOutOfSpace(err);
}

export function openDb(path: string): Db {
  return new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
}

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
  #db: Db;
  readonly #o: LevelStoreOptions;
  /** The first write that failed since the database was (re)opened. */
  #failed: Error | undefined;
  #reopening: Promise<void> | undefined;
  #reopenTimer: NodeJS.Timeout | undefined;
  #reopenDelay = LEVEL_REOPEN_MS;
  #closed = false;

  private constructor(path: string, db: Db, opts: LevelStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#o = opts;
  }

  /** Opens (creating if needed) the database at `path`. */
  static async open(path: string, opts: LevelStoreOptions = {}): Promise<LevelStore> {
    const db = (opts.openDb ?? openDb)(path);
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if ((err as { code?: string }).code === 'LEVEL_LOCKED' || cause?.code === 'LEVEL_LOCKED') {
        throw new StoreLockedError(path, { cause: err });
      }
      throw err;
    }
    return new LevelStore(path, db, opts);
  }

  /** Set while writes are refused after one failed, until the database is reopened. */
  get failed(): Error | undefined {
    return this.#failed;
  }

  async #ready(): Promise<Db> {
    if (this.#reopening) await this.#reopening;
    if (this.#closed || this.#db.status !== 'open') throw new StoreClosedError();
    return this.#db;
  }

  /**
   * Runs a write unless writes are refused. A write that fails starts the refusal; one that
   * completes after another failed is reported as failed too: it may sit behind the torn record.
   */
  async #write(fn: (db: Db) => Promise<void>): Promise<void> {
    const db = await this.#ready();
    if (this.#failed) throw new StoreFailedError(this.#failed);
    try {
      await fn(db);
    } catch (err) {
      if (db.status === 'open' && isIoError(err)) this.#fail(err as Error);
      throw err;
    }
    if (this.#failed) throw new StoreFailedError(this.#failed);
  }

  #fail(err: Error): void {
    if (this.#failed || this.#closed) return;
    this.#failed = err;
    this.#o.logger?.warn(
      { err: err.message, reopenInMs: this.#reopenDelay },
      'a write to the database failed: writes are refused until it is reopened',
    );
    this.#scheduleReopen();
  }

  /** The next try in `ms` (default: the current delay, which only a failed open doubles). */
  #scheduleReopen(ms = this.#reopenDelay): void {
    if (this.#closed) return;
    this.#reopenTimer = setTimeout(() => void this.#tryReopen(), ms);
    this.#reopenTimer.unref?.();
  }

  async #tryReopen(): Promise<void> {
    this.#reopenTimer = undefined;
    let free: number | undefined;
    try {
      const st = await statfs(this.path);
      free = st.bavail * st.bsize;
    } catch {
      // unknown: try
    }
    if (this.#closed) return;
    // still full: look again soon, so writes are taken within seconds of space being freed
    if (free !== undefined && free < LEVEL_REOPEN_FREE_BYTES) {
      this.#scheduleReopen(LEVEL_REOPEN_MS);
      return;
    }
    this.#reopening = (async () => {
      try {
        await this.#db.close();
        // closed meanwhile: close() waits for this and finds the database closed
        if (this.#closed) return;
        const db = (this.#o.openDb ?? openDb)(this.path);
        this.#db = db;
        await db.open();
        this.#failed = undefined;
        this.#reopenDelay = LEVEL_REOPEN_MS;
        this.#o.logger?.info({}, 'database reopened: writes are taken again');
      } catch (err) {
        this.#o.logger?.warn(
          { err: (err as Error).message, retryInMs: this.#reopenDelay },
          'reopening the database failed',
        );
        this.#scheduleReopen();
        this.#reopenDelay = Math.min(this.#reopenDelay * 2, LEVEL_REOPEN_MAX_MS);
      }
    })();
    await this.#reopening;
    this.#reopening = undefined;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const db = await this.#ready();
    return (await db.get(key)) ?? undefined;
  }

  async getMany(keys: readonly string[]): Promise<Array<Uint8Array | undefined>> {
    const db = await this.#ready();
    const vals = await db.getMany(keys as string[]);
    return vals.map((v) => v ?? undefined);
  }

  put(key: string, value: Uint8Array, opts?: WriteOptions): Promise<void> {
    return this.#write((db) => db.put(key, value, { sync: opts?.sync ?? false }));
  }

  del(key: string, opts?: WriteOptions): Promise<void> {
    return this.#write((db) => db.del(key, { sync: opts?.sync ?? false }));
  }

  batch(ops: readonly BatchOp[], opts?: WriteOptions): Promise<void> {
    if (ops.length === 0) return this.#ready().then(() => undefined);
    return this.#write((db) =>
      db.batch(
        ops.map((op) =>
          op.type === 'put'
            ? { type: 'put', key: op.key, value: op.value }
            : { type: 'del', key: op.key },
        ),
        { sync: opts?.sync ?? false },
      ),
    );
  }

  async *entries(opts?: RangeOptions): AsyncIterable<[string, Uint8Array]> {
    const db = await this.#ready();
    try {
      for await (const [k, v] of db.iterator(levelRange(opts))) yield [k, v];
    } catch (err) {
      throw this.#scanError(db, err);
    }
  }

  async *keys(opts?: RangeOptions): AsyncIterable<string> {
    const db = await this.#ready();
    try {
      for await (const k of db.keys(levelRange(opts))) yield k;
    } catch (err) {
      throw this.#scanError(db, err);
    }
  }

  /** A scan whose database was closed under it (a reopen, close()) ends as a closed store. */
  #scanError(db: Db, err: unknown): unknown {
    return db !== this.#db || db.status !== 'open' ? new StoreClosedError() : err;
  }

  namespace(name: string): KvStore {
    return new NamespacedStore(this, name);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reopenTimer);
    await this.#reopening?.catch(() => {});
    if (this.#db.status === 'open' || this.#db.status === 'opening') await this.#db.close();
  }
}
