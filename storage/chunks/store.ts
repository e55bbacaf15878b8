// The chunk store: content-addressed chunks in append-only pack files, with an index.
//
// Layout under `dir`:
//   packs/00000001.pack   records (magic, length, sha256, bytes) appended back to back; a new
//                         pack after `packBytes` and after every restart (pack-format.ts)
//   index/                level database: sha256 -> (pack, offset, length, mtime), the truth
//                         (index-db.ts); also held in memory (chunk-table.ts, ~100 B per chunk)
//   quarantine/           bytes of chunks that failed verification when read (quarantine.ts)
//
// put(): verify the hash; append the record (one writev at a reserved offset, concurrent puts
// write concurrently); publish the entry in memory (get()/has() now see the whole chunk); queue
// the index entry for the group commit (committer.ts): fdatasync of the packs, fsync of packs/
// if a pack was created, then one synced level batch. With `flush` (the default) put() resolves
// after that commit; with `{ flush: false }` after the append (durable at the next commit, within
// ~COMMIT_DELAY_MS, or at flush()).
//
// Crash safety (kill -9, power loss): an entry reaches level only after the bytes it points to
// were fdatasynced, so every durable entry points to a whole record; a torn or unsynced tail has
// no durable entry and is never read (packs are not appended to after a restart). A crash loses
// only the updates of uncommitted batches: unflushed `{ flush: false }` puts (never acknowledged
// as durable), deletions (the chunk comes back; the next GC deletes it again), mtime refreshes.
// Every read also checks the record header (magic, length, hash) before the bytes.
//
// Trust: put() refuses bytes that do not hash to their name; get() re-hashes by default and on a
// mismatch (disk corruption, tampering, a garbled index entry) drops the entry, keeps the bytes in
// quarantine/ and throws ChunkCorruptError: fetch the chunk from a peer and put() it again.
// Deleted chunks' space comes back with compact() (compaction.ts). One process per directory:
// the index database is locked (StoreLockedError).
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ChunkCorruptError,
  ChunkHashMismatchError,
  ChunkTooLargeError,
  StoreClosedError,
} from '../errors.js';
import { hashKey, keyHash, type ChunkLoc, type ChunkTable } from './chunk-table.js';
import { Committer } from './committer.js';
import { compactPacks, moveRecord, type CompactOptions, type CompactResult } from './compaction.js';
import { assertChunkHash, sha256Hex } from './hash.js';
import { encodeEntry, entryKey, type IndexDb } from './index-db.js';
import { KeyedLock } from './keyed-lock.js';
import { migrateLegacyChunks } from './legacy.js';
import { openStoreDir, type OpenedStore } from './open.js';
import {
  COMMIT_DELAY_MS,
  COMMIT_MAX_OPS,
  MAX_CHUNK_BYTES,
  PACK_BYTES,
  READ_FDS,
  RECENT_CHUNK_BYTES,
  type ChunkInfo,
  type ChunkStoreOptions,
  type ChunkStoreStats,
  type GetOptions,
  type PackStats,
  type PutOptions,
} from './options.js';
import { RECORD_HEADER_BYTES } from './pack-format.js';
import type { PackSet } from './pack-set.js';
import { quarantineBytes } from './quarantine.js';
import { RecentChunks } from './recent.js';

export class ChunkStore {
  readonly dir: string;
  readonly #quarantineDir: string;
  readonly #maxChunkBytes: number;
  /** Per-hash queue: put, delete, stat, quarantine and moves of one chunk never interleave. */
  readonly #lock = new KeyedLock();
  readonly #table: ChunkTable;
  readonly #db: IndexDb;
  readonly #packs: PackSet;
  readonly #committer: Committer;
  #compacting: Promise<CompactResult> | undefined;
  #closed = false;
  readonly #recent: RecentChunks;

  private constructor(dir: string, opts: ChunkStoreOptions, opened: OpenedStore) {
    this.dir = dir;
    this.#quarantineDir = join(dir, 'quarantine');
    this.#maxChunkBytes = opts.maxChunkBytes ?? MAX_CHUNK_BYTES;
    this.#recent = new RecentChunks(opts.recentBytes ?? RECENT_CHUNK_BYTES);
    this.#db = opened.db;
    this.#packs = opened.packs;
    this.#table = opened.table;
    this.#committer = new Committer({
      db: opened.db,
      sync: opts.sync ?? true,
      delayMs: opts.commitDelayMs ?? COMMIT_DELAY_MS,
      maxOps: opts.commitMaxOps ?? COMMIT_MAX_OPS,
      syncFiles: () => this.#packs.syncAll(),
      failed: (committed, err) => {
        this.#commitFailed(committed);
        // told after the store has forgotten what was not durable, outside the committer's call
        if (opts.onFailed) queueMicrotask(() => opts.onFailed!(err as Error));
      },
    });
  }

  /**
   * Opens (creating if needed) the store in `dir` (see open.ts): loads the index into memory,
   * checking every entry against the packs, or rebuilds it from the packs if it is missing or
   * unreadable; deletes packs without live records; drops old quarantined chunks; and migrates a
   * store of the old one-file-per-chunk layout (legacy.ts).
   */
  static async open(dir: string, opts: ChunkStoreOptions = {}): Promise<ChunkStore> {
    const maxChunkBytes = opts.maxChunkBytes ?? MAX_CHUNK_BYTES;
    const packBytes = opts.packBytes ?? PACK_BYTES;
    if (packBytes + maxChunkBytes + RECORD_HEADER_BYTES >= 2 ** 32)
      throw new RangeError('packBytes + maxChunkBytes must stay under 4 GiB');
    const opened = await openStoreDir(dir, {
      maxChunkBytes,
      packBytes,
      sync: opts.sync ?? true,
      readFds: opts.readFds ?? READ_FDS,
    });
    const store = new ChunkStore(dir, opts, opened);
    try {
      await migrateLegacyChunks(dir, {
        maxChunkBytes,
        putVerified: async (hash, bytes, mtimeMs) => {
          await store.#write(hash, bytes, false, mtimeMs);
        },
        flush: () => store.#committer.flush(),
      });
    } catch (err) {
      await store.close();
      throw err;
    }
    return store;
  }

  #check(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  /** #check(), and ChunkStoreFailedError if a commit failed (the store is read-only then). */
  #checkWritable(): void {
    this.#check();
    this.#committer.check();
  }

  /** A commit failed: forget every entry that was not durable, as a crash would. */
  #commitFailed(committed: number): void {
    this.#packs.retireAll();
    this.#table.dropNewerThan(committed);
  }

  /**
   * Stores a chunk. Verifies first that `bytes` hash to `hash` (ChunkHashMismatchError if not,
   * and nothing is written). Resolves true once the chunk is stored (durably, unless `flush` is
   * false), false if it was already there (its mtime is then refreshed, which protects it from
   * a GC grace period; with `flush` it is durable when this resolves).
   */
  async put(hash: string, bytes: Uint8Array, opts: PutOptions = {}): Promise<boolean> {
    this.#checkWritable();
    assertChunkHash(hash);
    if (bytes.length > this.#maxChunkBytes)
      throw new ChunkTooLargeError(bytes.length, this.#maxChunkBytes);
    const actual = sha256Hex(bytes);
    if (actual !== hash) throw new ChunkHashMismatchError(hash, actual);
    return this.#write(hash, bytes, opts.flush ?? true);
  }

  /**
   * Stores bytes under their own sha256 (hashed once, for callers that did not hash them yet,
   * such as an import). Returns the hash and whether the chunk is new (see put()).
   */
  async add(bytes: Uint8Array, opts: PutOptions = {}): Promise<{ hash: string; added: boolean }> {
    this.#checkWritable();
    if (bytes.length > this.#maxChunkBytes)
      throw new ChunkTooLargeError(bytes.length, this.#maxChunkBytes);
    const hash = sha256Hex(bytes);
    return {
      hash,
      added: await this.#write(hash, bytes, opts.flush ?? true),
    };
  }

  /**
   * Writes a chunk whose hash has been checked. With `keepMtime` (a migration) a present chunk
   * is left alone and a new one gets that mtime.
   */
  async #write(
    hash: string,
    bytes: Uint8Array,
    flush: boolean,
    keepMtime?: number,
  ): Promise<boolean> {
    const raw = Buffer.from(hash, 'hex');
    const key = raw.toString('latin1');
    let durable: Promise<void> | undefined;
    const added = await this.#lock.run(key, async () => {
      const cur = this.#table.get(key);
      if (cur !== undefined) {
        const pending = cur.batch > this.#committer.committedSeq;
        const loc = { ...cur };
        if (keepMtime === undefined) {
          loc.mtimeMs = Date.now();
          const seq = this.#enqueuePut(key, loc);
          if (pending) loc.batch = seq; // durable with its newest update, not before
          this.#table.set(key, loc);
        }
        if (flush && pending) durable = this.#committer.wait(loc.batch);
        return false;
      }
      const at = await this.#packs.append(raw, bytes);
      const loc: ChunkLoc = {
        ...at,
        length: bytes.length,
        mtimeMs: keepMtime ?? Date.now(),
        batch: 0,
      };
      loc.batch = this.#enqueuePut(key, loc);
      this.#table.set(key, loc);
      this.#recent.add(key, bytes);
      if (flush) durable = this.#committer.wait(loc.batch);
      return true;
    });
    if (durable !== undefined) await durable;
    return added;
  }

  /** Queues the index update of `loc`; returns the batch that will make it durable. */
  #enqueuePut(key: string, loc: ChunkLoc): number {
    return this.#committer.enqueue({ type: 'put', key: entryKey(key), value: encodeEntry(loc) })
      .seq;
  }

  /** Makes every chunk put so far (also with `{ flush: false }`), and every delete, durable. */
  async flush(): Promise<void> {
    this.#checkWritable();
    await this.#committer.flush();
  }

  /**
   * Reads a chunk, or undefined if it is not here. With `verify` (the default) the bytes are
   * re-hashed; on a mismatch the chunk is taken out of the store (its bytes kept in
   * quarantine/) and ChunkCorruptError is thrown: fetch the chunk elsewhere and put() it again.
   * Without `verify` the record header (magic, length, hash) is still checked.
   */
  async get(hash: string, opts: GetOptions = {}): Promise<Uint8Array | undefined> {
    this.#check();
    assertChunkHash(hash);
    const raw = Buffer.from(hash, 'hex');
    const key = raw.toString('latin1');
    if (opts.recent && this.#table.has(key)) {
      const kept = this.#recent.get(key);
      if (kept !== undefined) return kept;
    }
    for (let attempt = 0; ; attempt++) {
      const loc = this.#table.get(key);
      if (loc === undefined) return undefined;
      const r = await this.#packs.readRecord(hash, raw, loc, opts.verify ?? true);
      if (r.problem === undefined) return r.data;
      const now = this.#table.get(key);
      if (now === undefined) return undefined; // deleted while we read
      // moved by compaction (whose old pack may be gone), or replaced, while we read: again
      if ((now.pack !== loc.pack || now.offset !== loc.offset) && attempt < 3) continue;
      const dropped = await this.#lock.run(key, async () => this.#drop(key, loc));
      if (dropped) await quarantineBytes(this.#quarantineDir, hash, r.data ?? Buffer.alloc(0), loc);
      throw new ChunkCorruptError(hash, r.problem);
    }
  }

  /** Takes the chunk out of the store if it is still at `loc` (call under its lock). */
  #drop(key: string, loc: ChunkLoc): boolean {
    const cur = this.#table.get(key);
    if (cur === undefined || cur.pack !== loc.pack || cur.offset !== loc.offset) return false;
    this.#table.delete(key);
    this.#recent.delete(key);
    this.#committer.enqueue({ type: 'del', key: entryKey(key) });
    return true;
  }

  /**
   * Size and mtime of a chunk, or undefined if it is not here. Does not verify. Runs in turn
   * with put() and delete() of the same chunk, so an answer is never overtaken by a delete that
   * had already started (see collectGarbage and PinSet).
   */
  async stat(hash: string): Promise<ChunkInfo | undefined> {
    this.#check();
    assertChunkHash(hash);
    const key = hashKey(hash);
    return this.#lock.run(key, async () => {
      const loc = this.#table.get(key);
      return loc === undefined ? undefined : { hash, size: loc.length, mtimeMs: loc.mtimeMs };
    });
  }

  /**
   * True if the chunk is here (not verified: get() checks the bytes). Answered from memory; a
   * delete decides and removes in one step, so a pinned chunk seen here is not deleted after.
   */
  async has(hash: string): Promise<boolean> {
    this.#check();
    assertChunkHash(hash);
    return this.#table.has(hashKey(hash));
  }

  /** has() for many hashes at once; the answers are in the same order. */
  async hasMany(hashes: readonly string[]): Promise<boolean[]> {
    this.#check();
    for (const h of hashes) assertChunkHash(h);
    return hashes.map((h) => this.#table.has(hashKey(h)));
  }

  /** The chunk's size in bytes, or undefined if it is not here. */
  async size(hash: string): Promise<number | undefined> {
    this.#check();
    assertChunkHash(hash);
    return this.#table.get(hashKey(hash))?.length;
  }

  /**
   * Deletes a chunk; true if it was deleted. Both conditions are checked in turn with put() and
   * stat() of the same chunk, which is what makes GC safe against concurrent imports and pulls:
   *  - `ifOlderThanMs`: delete only if the chunk's mtime is older (ms since the epoch); put()
   *    of a present chunk refreshes its mtime;
   *  - `unless`: do not delete if it returns true (GC passes "is this hash pinned").
   * The deletion is durable at the next commit; its disk space comes back with compact().
   */
  async delete(
    hash: string,
    opts: { ifOlderThanMs?: number; unless?: (hash: string) => boolean } = {},
  ): Promise<boolean> {
    this.#checkWritable();
    assertChunkHash(hash);
    const key = hashKey(hash);
    return this.#lock.run(key, async () => {
      const cur = this.#table.get(key);
      if (cur === undefined) return false;
      if (opts.ifOlderThanMs !== undefined && cur.mtimeMs >= opts.ifOlderThanMs) return false;
      if (opts.unless?.(hash) === true) return false;
      return this.#drop(key, cur);
    });
  }

  /** Every chunk hash in the store (live: chunks added meanwhile may be listed, deleted ones not). */
  async *list(): AsyncIterable<string> {
    this.#check();
    let n = 0;
    for (const key of this.#table.keys()) {
      if ((++n & 4095) === 0) this.#check();
      yield keyHash(key);
    }
  }

  /** Every chunk with its size and mtime (live, like list()). */
  async *entries(): AsyncIterable<ChunkInfo> {
    this.#check();
    let n = 0;
    for (const key of this.#table.keys()) {
      if ((++n & 4095) === 0) this.#check();
      const loc = this.#table.get(key);
      if (loc !== undefined) yield { hash: keyHash(key), size: loc.length, mtimeMs: loc.mtimeMs };
    }
  }

  /** Chunk count and total bytes, kept up to date in memory. O(1). */
  stats(): ChunkStoreStats {
    return { chunks: this.#table.size, bytes: this.#table.bytes };
  }

  /** Pack files and how much of them is live (O(packs)). */
  packStats(): PackStats {
    return this.#packs.stats(this.#table);
  }

  /**
   * Gives back the space of deleted chunks: rewrites the live records of mostly dead packs and
   * deletes those packs (see compaction.ts). One compaction at a time; a second call joins it.
   */
  compact(opts: CompactOptions = {}): Promise<CompactResult> {
    this.#checkWritable();
    this.#compacting ??= compactPacks(
      {
        table: this.#table,
        sealedPacks: () => this.#packs.sealed(),
        retireActive: (worth) => this.#packs.retireActive(worth),
        move: (key, seq) =>
          moveRecord(key, seq, {
            lock: this.#lock,
            table: this.#table,
            packs: this.#packs,
            quarantineDir: this.#quarantineDir,
            commit: (k, loc) => this.#enqueuePut(k, loc),
            drop: (k, loc) => this.#drop(k, loc),
          }),
        flush: async () => {
          await this.#committer.barrier();
          await this.#packs.reap(); // without sync no commit syncs (and closes) retired packs
        },
        removePacks: (seqs) => this.#packs.remove(seqs),
        closed: () => this.#closed,
      },
      opts,
    ).finally(() => {
      this.#compacting = undefined;
    });
    return this.#compacting;
  }

  /**
   * Waits for running writes and the compaction, commits what is pending, then refuses further
   * calls. Safe to call twice.
   */
  /**
   * Bytes free for an unprivileged writer on the device holding the store (statfs), or undefined
   * where that cannot be read.
   */
  async freeBytes(): Promise<number | undefined> {
    try {
      const s = await statfs(this.dir);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#recent.clear();
    await this.#compacting?.catch(() => {});
    await this.#lock.idle();
    const failedBefore = this.#committer.failed; // already reported to the writers
    try {
      await this.#committer.close();
    } catch (err) {
      if (!failedBefore) throw err;
    } finally {
      await this.#packs.close();
      await this.#db.close();
    }
  }
}
