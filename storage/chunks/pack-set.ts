// The packs of a chunk store: which exist, which one is being filled, appending and reading.
//
// One pack at a time is active. Records are appended at offsets reserved in call order; records
// reserved in the same turn of the event loop go out in one writev (pack-io.ts). When a record
// does not fit under `packBytes` the pack is retired and the next one created. Packs are never written after a restart: open()
// only learns the existing files, and the first append creates a new pack, so an uncommitted
// tail of an old pack stays dead space that nothing points to.
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../errors.js';
import { fsyncDir, isNotFound } from './fs-util.js';
import { sha256Hex } from './hash.js';
import {
  RECORD_HEADER_BYTES,
  encodeRecordHeader,
  headerMatches,
  packName,
  parsePackName,
} from './pack-format.js';
import { PackReaders, PackWriter } from './pack-io.js';
import { recordBytes, type ChunkTable } from './chunk-table.js';

/** A record read back: its bytes, or what is wrong with it (and what could be read of it). */
export type RecordRead = { data: Buffer; problem?: undefined } | { data?: Buffer; problem: string };

export interface PackSetOptions {
  /** Roll over to a new pack when a record would take the active one past this. Bytes. */
  packBytes: number;
  /** fsync at all (false: tests and benchmarks). */
  sync: boolean;
  /** Read fds kept open. */
  readFds: number;
}

export class PackSet {
  readonly dir: string;
  readonly #o: PackSetOptions;
  readonly #readers: PackReaders;
  /** File size of every pack on disk (for open writers: the reserved end). */
  readonly #sizes = new Map<number, number>();
  /** Writers still open: the active one, and retired ones not yet synced or still writing. */
  readonly #writers = new Set<PackWriter>();
  #active: PackWriter | undefined;
  #rolling: Promise<void> | undefined;
  #nextSeq = 1;
  /** A pack was created since packs/ was last fsynced. */
  #dirDirty = false;

  private constructor(dir: string, opts: PackSetOptions) {
    this.dir = dir;
    this.#o = opts;
    this.#readers = new PackReaders(dir, opts.readFds);
  }

  /** Learns the packs in `dir` (which must exist). Creates nothing. */
  static async open(dir: string, opts: PackSetOptions): Promise<PackSet> {
    const set = new PackSet(dir, opts);
    for (const name of await readdir(dir)) {
      const seq = parsePackName(name);
      if (seq === undefined) continue;
      const st = await stat(join(dir, name));
      set.#sizes.set(seq, st.size);
      set.#nextSeq = Math.max(set.#nextSeq, seq + 1);
    }
    return set;
  }

  /** Every pack on disk and its size in bytes. */
  sizes(): ReadonlyMap<number, number> {
    return this.#sizes;
  }

  /** Pack files, their total size, and how much of it the entries of `table` use. */
  stats(table: ChunkTable): { packs: number; packBytes: number; liveBytes: number } {
    let packBytes = 0;
    let liveBytes = 0;
    for (const [seq, size] of this.#sizes) {
      packBytes += size;
      liveBytes += table.packUse(seq).bytes;
    }
    return { packs: this.#sizes.size, packBytes, liveBytes };
  }

  /** Packs no writer has open (compaction may rewrite them), with their sizes. */
  sealed(): Array<{ seq: number; size: number }> {
    const open = new Set([...this.#writers].map((w) => w.seq));
    return [...this.#sizes].filter(([seq]) => !open.has(seq)).map(([seq, size]) => ({ seq, size }));
  }

  /**
   * Appends a record of chunk `hash` (raw, 32 bytes) to the active pack; resolves with its
   * place once the bytes are written (not yet synced), so a read of that place sees them whole.
   */
  async append(hash: Uint8Array, data: Uint8Array): Promise<{ pack: number; offset: number }> {
    const bytes = recordBytes(data.length);
    for (;;) {
      const w = this.#active;
      if (w !== undefined && !w.retired && w.fits(bytes, this.#o.packBytes)) {
        const offset = w.reserve(bytes);
        this.#sizes.set(w.seq, w.end);
        await w.write(offset, [encodeRecordHeader(hash, data.length), data]);
        // a failed fsync on this pack may have dropped earlier writes from the page cache; this
        // one could be anywhere between, so it is not acknowledged
        if (w.poisoned) throw new StorageError('pack_failed', `pack ${w.seq} failed to sync`);
        return { pack: w.seq, offset };
      }
      await this.#roll(w);
    }
  }

  async #roll(old: PackWriter | undefined): Promise<void> {
    while (this.#rolling !== undefined) await this.#rolling;
    if (this.#active !== old) return; // someone else rolled meanwhile
    this.#rolling = (async () => {
      if (old !== undefined) old.retired = true;
      const w = await PackWriter.create(this.dir, this.#nextSeq++);
      this.#dirDirty = true;
      this.#writers.add(w);
      this.#sizes.set(w.seq, w.end);
      this.#active = w;
      await this.#reap();
    })();
    try {
      await this.#rolling;
    } finally {
      this.#rolling = undefined;
    }
  }

  /**
   * Reads the record of chunk `hash` (hex, and raw in `raw`) at `at` and checks it: the pack
   * exists, the record is whole, its header is this chunk's and (with `verify`) the bytes hash to
   * `hash`. `data` is a buffer of its own (not shared with any other read).
   */
  async readRecord(
    hash: string,
    raw: Uint8Array,
    at: { pack: number; offset: number; length: number },
    verify: boolean,
  ): Promise<RecordRead> {
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    const data = Buffer.allocUnsafeSlow(at.length);
    let n: number;
    try {
      n = await this.#readers.read(at.pack, at.offset, [header, data]);
    } catch (err) {
      if (isNotFound(err)) return { problem: `its pack ${at.pack} is missing` };
      throw err;
    }
    const where = `pack ${at.pack} offset ${at.offset}`;
    if (n < RECORD_HEADER_BYTES + at.length)
      return {
        data: data.subarray(0, Math.max(0, n - RECORD_HEADER_BYTES)),
        problem: `its record at ${where} is cut short`,
      };
    if (!headerMatches(header, raw, at.length))
      return { data, problem: `the record at ${where} is not this chunk's` };
    if (verify) {
      const actual = sha256Hex(data);
      if (actual !== hash) return { data, problem: `its bytes hash to ${actual}` };
    }
    return { data };
  }

  /**
   * Makes every append that finished before the call durable: fdatasync of each pack written
   * since its last sync, then fsync of packs/ if a pack was created since. Throws if a sync
   * fails (that pack is poisoned and retired).
   */
  async syncAll(): Promise<void> {
    const ws = [...this.#writers];
    const results = await Promise.allSettled(ws.map((w) => w.sync()));
    const failed = results.find((r) => r.status === 'rejected');
    if (this.#dirDirty) {
      this.#dirDirty = false;
      await fsyncDir(this.dir);
    }
    await this.#reap();
    if (failed !== undefined) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Retires the active pack if `worth(seq, size)` says so: the next append starts a new pack, and
   * once the next commit has synced it, it is sealed (compaction may rewrite it).
   */
  retireActive(worth: (seq: number, size: number) => boolean): void {
    const w = this.#active;
    if (w !== undefined && !w.retired && worth(w.seq, w.end)) w.retired = true;
  }

  /** After a failed commit: no more appends to the packs written so far. */
  retireAll(): void {
    for (const w of this.#writers) w.retired = true;
  }

  /** Closes retired writers with no write in flight and nothing left to sync. */
  reap(): Promise<void> {
    return this.#reap();
  }

  async #reap(): Promise<void> {
    for (const w of [...this.#writers]) {
      if (w === this.#active && !w.retired) continue;
      if (w.inflight > 0 || w.syncing || (this.#o.sync && w.dirty && !w.poisoned)) continue;
      this.#writers.delete(w);
      if (this.#active === w) this.#active = undefined;
      await w.close();
    }
  }

  /** Deletes sealed packs (their records must all be dead, durably), then fsyncs packs/. */
  async remove(seqs: readonly number[]): Promise<number> {
    let freed = 0;
    for (const seq of seqs) {
      const size = this.#sizes.get(seq);
      if (size === undefined || [...this.#writers].some((w) => w.seq === seq)) continue;
      this.#readers.forget(seq);
      await unlink(join(this.dir, packName(seq))).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      this.#sizes.delete(seq);
      freed += size;
    }
    if (seqs.length > 0 && this.#o.sync) await fsyncDir(this.dir);
    return freed;
  }

  /** Closes every fd. The caller has synced what it needs. */
  async close(): Promise<void> {
    while (this.#rolling !== undefined) await this.#rolling.catch(() => {});
    for (const w of this.#writers) await w.close();
    this.#writers.clear();
    this.#active = undefined;
    await this.#readers.closeAll();
  }
}
