import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ChunkStore,
  corruptChunkForTest,
  quarantinedChunks,
  sha256Hex,
} from '../../../storage/chunks/index.js';
import { IndexDb, encodeEntry, entryKey } from '../../../storage/chunks/index-db.js';
import { PACK_MAGIC, encodeRecordHeader, packName } from '../../../storage/chunks/pack-format.js';
import { ChunkTable } from '../../../storage/chunks/chunk-table.js';
import {
  ChunkCorruptError,
  ChunkHashMismatchError,
  ChunkTooLargeError,
  InvalidChunkHashError,
  StoreClosedError,
  StoreLockedError,
} from '../../../storage/errors.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'es-chunks-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function chunk(n = 1000): { hash: string; bytes: Uint8Array } {
  const bytes = randomBytes(n);
  return { hash: sha256Hex(bytes), bytes };
}

const same = (a: Uint8Array | undefined, b: Uint8Array): boolean =>
  a !== undefined && Buffer.from(a).equals(Buffer.from(b));

async function packFiles(): Promise<string[]> {
  return (await readdir(join(dir, 'packs'))).sort();
}

/** Rewrites index entries with the store closed, as a garbled or lost index would. */
async function editIndex(edit: (db: IndexDb) => Promise<void>): Promise<void> {
  const { db } = await IndexDb.open(join(dir, 'index'));
  try {
    await edit(db);
  } finally {
    await db.close();
  }
}

const tableKey = (hash: string): string => Buffer.from(hash, 'hex').toString('latin1');

describe('ChunkStore', () => {
  it('puts, gets, lists, counts and deletes chunks', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk(100);
    const b = chunk(2000);
    expect(await store.put(a.hash, a.bytes)).toBe(true);
    expect(await store.put(a.hash, a.bytes)).toBe(false); // idempotent
    expect((await store.add(b.bytes)).added).toBe(true);
    expect(same(await store.get(a.hash), a.bytes)).toBe(true);
    expect(await store.get(chunk().hash)).toBeUndefined();
    expect(await store.has(b.hash)).toBe(true);
    expect(await store.hasMany([a.hash, chunk().hash, b.hash])).toEqual([true, false, true]);
    expect(await store.size(b.hash)).toBe(2000);
    expect((await store.stat(b.hash))?.size).toBe(2000);
    expect(store.stats()).toEqual({ chunks: 2, bytes: 2100 });
    const listed: string[] = [];
    for await (const h of store.list()) listed.push(h);
    expect(listed.sort()).toEqual([a.hash, b.hash].sort());
    // one pack holds both records (header 44 bytes each, after the 8-byte file header)
    expect(await packFiles()).toEqual([packName(1)]);
    expect(store.packStats()).toEqual({ packs: 1, packBytes: 8 + 44 * 2 + 2100, liveBytes: 2188 });
    expect(await store.delete(a.hash)).toBe(true);
    expect(await store.delete(a.hash)).toBe(false);
    expect(store.stats()).toEqual({ chunks: 1, bytes: 2000 });
    await store.close();
    await store.close(); // twice is fine
    await expect(store.get(b.hash)).rejects.toBeInstanceOf(StoreClosedError);
    const again = await ChunkStore.open(dir);
    expect(again.stats()).toEqual({ chunks: 1, bytes: 2000 });
    expect(same(await again.get(b.hash), b.bytes)).toBe(true);
    await again.close();
  });

  it('returns a buffer of its own from get()', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk(5000);
    await store.put(a.hash, a.bytes);
    const got = (await store.get(a.hash))!;
    expect(got.byteOffset).toBe(0);
    expect(got.buffer.byteLength).toBe(5000);
    got.fill(0); // the caller may scribble on it
    expect(same(await store.get(a.hash), a.bytes)).toBe(true);
    await store.close();
  });

  it('rejects bytes that do not match their hash, and writes nothing', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    const wrong = Buffer.from(a.bytes);
    wrong[10] ^= 1;
    const err = await store.put(a.hash, wrong).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChunkHashMismatchError);
    expect((err as ChunkHashMismatchError).code).toBe('chunk_hash_mismatch');
    expect(await store.has(a.hash)).toBe(false);
    expect(await packFiles()).toEqual([]); // not even a pack was created
    await expect(store.put('ABC', a.bytes)).rejects.toBeInstanceOf(InvalidChunkHashError);
    await expect(store.get('../../etc/passwd')).rejects.toBeInstanceOf(InvalidChunkHashError);
    const small = await ChunkStore.open(join(dir, 'small'), { maxChunkBytes: 10 });
    await expect(small.add(new Uint8Array(11))).rejects.toBeInstanceOf(ChunkTooLargeError);
    await small.close();
    await store.close();
  });

  it('allows one process per directory', async () => {
    const store = await ChunkStore.open(dir);
    await expect(ChunkStore.open(dir)).rejects.toBeInstanceOf(StoreLockedError);
    await store.close();
  });

  it('detects a chunk corrupted inside its pack, quarantines it, and accepts a good copy', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    const b = chunk();
    await store.put(a.hash, a.bytes);
    await store.put(b.hash, b.bytes);
    expect(await corruptChunkForTest(dir, a.hash)).toBe(a.hash);
    // without verification the bad bytes come back (the header is intact; callers take the risk)
    expect(same(await store.get(a.hash, { verify: false }), a.bytes)).toBe(false);
    const err = await store.get(a.hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChunkCorruptError);
    expect((err as ChunkCorruptError).hash).toBe(a.hash);
    expect(await store.has(a.hash)).toBe(false);
    expect(await store.get(a.hash)).toBeUndefined();
    expect(await quarantinedChunks(dir)).toEqual([a.hash]);
    expect(store.stats()).toEqual({ chunks: 1, bytes: 1000 });
    expect(same(await store.get(b.hash), b.bytes)).toBe(true); // its neighbour is fine
    expect(await store.put(a.hash, a.bytes)).toBe(true);
    expect(same(await store.get(a.hash), a.bytes)).toBe(true);
    await store.close();
    // the removal was committed: the corrupt record stays dead after a restart
    const again = await ChunkStore.open(dir);
    expect(same(await again.get(a.hash), a.bytes)).toBe(true);
    await again.close();
  });

  it('never serves a torn record left by a crash, and writes to a new pack after a restart', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    await store.put(a.hash, a.bytes);
    await store.close();
    // a crash in the middle of an append: header and half the bytes, no index entry
    const torn = chunk(4000);
    const path = join(dir, 'packs', packName(1));
    const sizeBefore = (await stat(path)).size;
    await appendFile(
      path,
      Buffer.concat([
        encodeRecordHeader(Buffer.from(torn.hash, 'hex'), 4000),
        torn.bytes.subarray(0, 2000),
      ]),
    );
    const reopened = await ChunkStore.open(dir);
    expect(await reopened.has(torn.hash)).toBe(false);
    expect(await reopened.get(torn.hash)).toBeUndefined();
    expect(reopened.stats().chunks).toBe(1);
    const b = chunk();
    await reopened.put(b.hash, b.bytes);
    expect(await packFiles()).toEqual([packName(1), packName(2)]);
    expect((await stat(path)).size).toBe(sizeBefore + 44 + 2000); // the old pack was not touched
    expect(same(await reopened.get(a.hash), a.bytes)).toBe(true);
    expect(same(await reopened.get(b.hash), b.bytes)).toBe(true);
    // junk in packs/ that is not a pack is ignored
    await writeFile(join(dir, 'packs', 'not-a-pack'), 'x');
    await reopened.close();
    const third = await ChunkStore.open(dir);
    expect(third.stats().chunks).toBe(2);
    await third.close();
  });

  it('deletes packs nothing points to at open (a crashed session wrote but never committed)', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    await store.put(a.hash, a.bytes);
    await store.close();
    const orphan = join(dir, 'packs', packName(7));
    const c = chunk(300);
    await writeFile(
      orphan,
      Buffer.concat([PACK_MAGIC, encodeRecordHeader(Buffer.from(c.hash, 'hex'), 300), c.bytes]),
    );
    const reopened = await ChunkStore.open(dir);
    expect(await packFiles()).toEqual([packName(1)]);
    expect(await reopened.has(c.hash)).toBe(false);
    // and the next pack is numbered after every pack ever seen
    const b = chunk();
    await reopened.put(b.hash, b.bytes);
    expect(await packFiles()).toEqual([packName(1), packName(8)]);
    await reopened.close();
  });

  it('puts with flush: false are visible at once and durable after flush()', async () => {
    const store = await ChunkStore.open(dir, { commitDelayMs: 60_000 });
    const cs = Array.from({ length: 20 }, () => chunk(700));
    for (const c of cs) expect(await store.put(c.hash, c.bytes, { flush: false })).toBe(true);
    for (const c of cs) expect(same(await store.get(c.hash), c.bytes)).toBe(true);
    // a put with flush of a chunk whose entry is not durable yet waits for the commit
    expect(await store.put(cs[0].hash, cs[0].bytes)).toBe(false);
    await store.flush();
    await store.close();
    const again = await ChunkStore.open(dir);
    expect(again.stats().chunks).toBe(20);
    await again.close();
  });

  it('drops quarantined chunks after they have been kept long enough', async () => {
    await mkdir(join(dir, 'quarantine'), { recursive: true });
    const old = join(dir, 'quarantine', `${'a'.repeat(64)}.1.1.8`);
    await writeFile(old, 'x');
    const then = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    await utimes(old, then, then);
    const fresh = join(dir, 'quarantine', `${'b'.repeat(64)}.2.1.8`);
    await writeFile(fresh, 'y');
    const store = await ChunkStore.open(dir);
    expect(await quarantinedChunks(dir)).toEqual(['b'.repeat(64)]);
    await store.close();
  });

  it('delete() honours ifOlderThanMs and unless, and put() refreshes the mtime', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    await store.put(a.hash, a.bytes);
    const first = (await store.stat(a.hash))!.mtimeMs;
    const later = first + 3600_000;
    expect(await store.delete(a.hash, { ifOlderThanMs: later, unless: () => true })).toBe(false);
    expect(await store.delete(a.hash, { ifOlderThanMs: first })).toBe(false); // not older
    await new Promise((r) => setTimeout(r, 5));
    await store.put(a.hash, a.bytes); // present: refreshes the mtime
    const refreshed = (await store.stat(a.hash))!.mtimeMs;
    expect(refreshed).toBeGreaterThan(first);
    expect(await store.delete(a.hash, { ifOlderThanMs: refreshed })).toBe(false);
    await store.close();
    // the refreshed mtime is in the index
    const again = await ChunkStore.open(dir);
    expect((await again.stat(a.hash))!.mtimeMs).toBe(refreshed);
    expect(await again.delete(a.hash, { ifOlderThanMs: refreshed + 1 })).toBe(true);
    await again.close();
  });

  it('handles many concurrent puts of the same and different chunks', async () => {
    const store = await ChunkStore.open(dir, { packBytes: 8192 });
    const cs = Array.from({ length: 50 }, () => chunk(500));
    const results = await Promise.all([...cs, ...cs, ...cs].map((c) => store.put(c.hash, c.bytes)));
    expect(results.filter(Boolean).length).toBe(50);
    expect(store.stats()).toEqual({ chunks: 50, bytes: 25_000 });
    const infos: number[] = [];
    for await (const i of store.entries()) infos.push(i.size);
    expect(infos.length).toBe(50);
    expect((await packFiles()).length).toBeGreaterThan(3); // rolled over at 8 KiB
    for (const c of cs) expect(same(await store.get(c.hash), c.bytes)).toBe(true);
    await store.close();
  });
});

describe('ChunkStore compaction', () => {
  it('reclaims the space of deleted chunks and keeps the live ones', async () => {
    const store = await ChunkStore.open(dir, { packBytes: 16 * 1024 });
    const cs = Array.from({ length: 60 }, () => chunk(2000));
    for (const c of cs) await store.put(c.hash, c.bytes, { flush: false });
    await store.flush();
    const before = store.packStats();
    expect(before.packs).toBeGreaterThanOrEqual(8);
    // delete all of some packs, most of others, little of the rest
    const gone = cs.filter((_, i) => i < 20 || (i < 40 && i % 4 !== 0) || i % 10 === 5);
    const kept = cs.filter((c) => !gone.includes(c));
    for (const c of gone) expect(await store.delete(c.hash)).toBe(true);
    const r = await store.compact();
    expect(r.packs).toBeGreaterThan(0);
    expect(r.reclaimedBytes).toBeGreaterThan(0);
    const after = store.packStats();
    // (+ 8: the copies may have rolled over into a new pack, with its file header)
    expect(after.packBytes).toBeLessThanOrEqual(before.packBytes - r.reclaimedBytes + 8);
    expect(after.packBytes).toBeLessThan(before.packBytes / 2);
    expect(after.liveBytes).toBe(kept.length * (44 + 2000));
    expect(store.stats()).toEqual({ chunks: kept.length, bytes: kept.length * 2000 });
    for (const c of kept) expect(same(await store.get(c.hash), c.bytes)).toBe(true);
    for (const c of gone) expect(await store.has(c.hash)).toBe(false);
    // nothing left to do
    expect((await store.compact()).packs).toBe(0);
    await store.close();
    const again = await ChunkStore.open(dir);
    expect(again.stats()).toEqual({ chunks: kept.length, bytes: kept.length * 2000 });
    for (const c of kept) expect(same(await again.get(c.hash), c.bytes)).toBe(true);
    for (const c of gone) expect(await again.has(c.hash)).toBe(false);
    await again.close();
  });

  it('compacts the pack being filled once it is mostly dead, and deletes empty packs', async () => {
    const store = await ChunkStore.open(dir, { sync: false });
    const cs = Array.from({ length: 10 }, () => chunk(3000));
    for (const c of cs) await store.put(c.hash, c.bytes);
    for (const c of cs.slice(1)) await store.delete(c.hash);
    const r = await store.compact();
    expect(r).toMatchObject({ packs: 1, movedChunks: 1, movedBytes: 3000 });
    expect(store.packStats()).toEqual({ packs: 1, packBytes: 8 + 44 + 3000, liveBytes: 3044 });
    await store.delete(cs[0].hash);
    expect((await store.compact()).packs).toBe(1);
    expect(store.packStats()).toEqual({ packs: 0, packBytes: 0, liveBytes: 0 });
    expect(await packFiles()).toEqual([]);
    await store.close();
  });

  it('quarantines a corrupt record it meets instead of copying it', async () => {
    const store = await ChunkStore.open(dir, { sync: false });
    const cs = Array.from({ length: 4 }, () => chunk(1500));
    for (const c of cs) await store.put(c.hash, c.bytes);
    await corruptChunkForTest(dir, cs[0].hash);
    for (const c of cs.slice(2)) await store.delete(c.hash);
    const r = await store.compact();
    expect(r.movedChunks).toBe(1);
    expect(await store.has(cs[0].hash)).toBe(false);
    expect(await quarantinedChunks(dir)).toEqual([cs[0].hash]);
    expect(same(await store.get(cs[1].hash), cs[1].bytes)).toBe(true);
    await store.close();
  });
});

describe('ChunkStore under concurrency', () => {
  it('stays consistent with puts, gets and deletes running while it compacts', async () => {
    const store = await ChunkStore.open(dir, { packBytes: 32 * 1024, commitDelayMs: 2 });
    const until = Date.now() + 1500;
    let compactions = 0;
    let moved = 0;
    const worker = async (): Promise<Map<string, Uint8Array>> => {
      const mine = new Map<string, Uint8Array>(); // this worker's chunks: nobody else touches them
      while (Date.now() < until) {
        const c = chunk(500 + Math.floor(Math.random() * 3000));
        expect(await store.put(c.hash, c.bytes, { flush: Math.random() < 0.5 })).toBe(true);
        mine.set(c.hash, c.bytes);
        const keys = [...mine.keys()];
        const pick = keys[Math.floor(Math.random() * keys.length)];
        expect(same(await store.get(pick), mine.get(pick)!)).toBe(true);
        if (Math.random() < 0.45) {
          expect(await store.delete(pick)).toBe(true);
          mine.delete(pick);
        }
      }
      return mine;
    };
    const compactor = async (): Promise<void> => {
      while (Date.now() < until) {
        const r = await store.compact({ minDeadFraction: 0.2 });
        compactions++;
        moved += r.movedChunks;
        await new Promise((res) => setTimeout(res, 3));
      }
    };
    const [maps] = await Promise.all([
      Promise.all([worker(), worker(), worker(), worker()]),
      compactor(),
    ]);
    const live = new Map(maps.flatMap((m) => [...m]));
    expect(compactions).toBeGreaterThan(3);
    expect(moved).toBeGreaterThan(0);
    expect(store.stats().chunks).toBe(live.size);
    for (const [h, b] of live) expect(same(await store.get(h), b)).toBe(true);
    expect(await quarantinedChunks(dir)).toEqual([]);
    await store.close();
    const again = await ChunkStore.open(dir);
    expect(again.stats().chunks).toBe(live.size);
    for (const [h, b] of live) expect(same(await again.get(h), b)).toBe(true);
    await again.close();
  });
});

describe('ChunkStore index', () => {
  it('a lost index entry makes the chunk missing, never wrong', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    const b = chunk();
    await store.put(a.hash, a.bytes);
    await store.put(b.hash, b.bytes);
    await store.close();
    await editIndex((db) =>
      db.batch([{ type: 'del', key: entryKey(tableKey(a.hash)) }], { sync: true }),
    );
    const again = await ChunkStore.open(dir);
    expect(await again.has(a.hash)).toBe(false);
    expect(await again.get(a.hash)).toBeUndefined();
    expect(same(await again.get(b.hash), b.bytes)).toBe(true);
    await again.close();
  });

  it('a garbled index entry never returns wrong bytes', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk(1000);
    const b = chunk(1000);
    const c = chunk(1000);
    for (const x of [a, b, c]) await store.put(x.hash, x.bytes);
    await store.close();
    await editIndex(async (db) => {
      await db.batch(
        [
          // a now points at b's record (same length), b at an offset inside a record, c at
          // garbage outside the pack: all must be caught
          {
            type: 'put',
            key: entryKey(tableKey(a.hash)),
            value: encodeEntry({ pack: 1, offset: 8 + 1044, length: 1000, mtimeMs: 1, batch: 0 }),
          },
          {
            type: 'put',
            key: entryKey(tableKey(b.hash)),
            value: encodeEntry({ pack: 1, offset: 100, length: 1000, mtimeMs: 1, batch: 0 }),
          },
          {
            type: 'put',
            key: entryKey(tableKey(c.hash)),
            value: encodeEntry({ pack: 1, offset: 1 << 30, length: 1000, mtimeMs: 1, batch: 0 }),
          },
          { type: 'put', key: Buffer.from('c-not-a-key'), value: Buffer.from('junk') },
        ],
        { sync: true },
      );
    });
    const again = await ChunkStore.open(dir);
    expect(await again.has(c.hash)).toBe(false); // dropped at open: outside its pack
    for (const x of [a, b]) {
      const err = await again.get(x.hash, { verify: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ChunkCorruptError);
      expect(await again.has(x.hash)).toBe(false);
    }
    expect(again.stats().chunks).toBe(0);
    // a good copy is accepted again
    expect(await again.put(a.hash, a.bytes)).toBe(true);
    expect(same(await again.get(a.hash), a.bytes)).toBe(true);
    await again.close();
  });

  it('rebuilds a lost index from the packs, skipping garbage and torn records', async () => {
    const store = await ChunkStore.open(dir, { packBytes: 8000 });
    const cs = Array.from({ length: 12 }, () => chunk(1500));
    for (const c of cs) await store.put(c.hash, c.bytes);
    await store.delete(cs[11].hash); // deleted, so it comes back with a rebuild (GC deletes it again)
    await store.close();
    // garbage and a torn tail after the records
    const first = join(dir, 'packs', packName(1));
    await appendFile(
      first,
      Buffer.concat([randomBytes(333), encodeRecordHeader(Buffer.alloc(32), 100)]),
    );
    // a pack with garbage (a failed write, a flipped bit in a header) between two good records
    const x = chunk(700);
    const y = chunk(900);
    const record = (c: { hash: string; bytes: Uint8Array }) =>
      Buffer.concat([encodeRecordHeader(Buffer.from(c.hash, 'hex'), c.bytes.length), c.bytes]);
    const broken = record(chunk(500));
    broken[3] ^= 0x40; // its magic
    await writeFile(
      join(dir, 'packs', packName(9)),
      Buffer.concat([PACK_MAGIC, record(x), randomBytes(77), broken, record(y)]),
    );
    await rm(join(dir, 'index'), { recursive: true, force: true });
    const again = await ChunkStore.open(dir);
    expect(again.stats().chunks).toBe(14);
    for (const c of [...cs, x, y]) expect(same(await again.get(c.hash), c.bytes)).toBe(true);
    await again.close();
    const third = await ChunkStore.open(dir);
    expect(third.stats().chunks).toBe(14);
    await third.close();
  });

  it('migrates a store of the one-file-per-chunk layout', async () => {
    const a = chunk();
    const b = chunk();
    const bad = chunk();
    for (const x of [a, b, bad])
      await mkdir(join(dir, 'chunks', x.hash.slice(0, 2)), { recursive: true });
    await writeFile(join(dir, 'chunks', a.hash.slice(0, 2), a.hash), a.bytes);
    await writeFile(join(dir, 'chunks', b.hash.slice(0, 2), b.hash), b.bytes);
    await writeFile(join(dir, 'chunks', bad.hash.slice(0, 2), bad.hash), randomBytes(1000));
    const old = new Date(Date.now() - 3600_000);
    await utimes(join(dir, 'chunks', a.hash.slice(0, 2), a.hash), old, old);
    await mkdir(join(dir, 'tmp'));
    await writeFile(join(dir, 'tmp', 'leftover'), 'x');
    const store = await ChunkStore.open(dir);
    expect(store.stats().chunks).toBe(2);
    expect(same(await store.get(a.hash), a.bytes)).toBe(true);
    expect(same(await store.get(b.hash), b.bytes)).toBe(true);
    expect(await store.has(bad.hash)).toBe(false);
    expect(Math.abs((await store.stat(a.hash))!.mtimeMs - old.getTime())).toBeLessThan(1000);
    const names = await readdir(dir);
    expect(names).not.toContain('chunks');
    expect(names).not.toContain('tmp');
    await store.close();
  });
});

describe('ChunkTable', () => {
  it('grows, reuses slots, accounts per pack and drops entries that are not durable', () => {
    const t = new ChunkTable();
    const keys = Array.from({ length: 5000 }, () => randomBytes(32).toString('latin1'));
    keys.forEach((k, i) =>
      t.set(k, { pack: 1 + (i % 3), offset: 8 + i, length: 100, mtimeMs: i, batch: i % 10 }),
    );
    expect(t.size).toBe(5000);
    expect(t.bytes).toBe(500_000);
    expect(t.packUse(1)).toEqual({ records: 1667, bytes: 1667 * 144 });
    expect(t.get(keys[4321])).toEqual({
      pack: 2,
      offset: 4329,
      length: 100,
      mtimeMs: 4321,
      batch: 1,
    });
    // replacing an entry moves its accounting
    t.set(keys[0], { pack: 3, offset: 8, length: 50, mtimeMs: 0, batch: 0 });
    expect(t.packUse(1).records).toBe(1666);
    expect(t.bytes).toBe(500_000 - 50);
    expect(t.delete(keys[10])).toMatchObject({ pack: 2 });
    expect(t.delete(keys[10])).toBeUndefined();
    const fresh = randomBytes(32).toString('latin1');
    t.set(fresh, { pack: 4, offset: 8, length: 7, mtimeMs: 1, batch: 0 }); // takes the free slot
    expect(t.get(fresh)?.length).toBe(7);
    expect(t.get(keys[2])?.length).toBe(100);
    t.dropNewerThan(4); // batches 5..9 were not committed
    expect([...t.keys()].every((k) => t.get(k)!.batch <= 4)).toBe(true);
    // batches 0..4: 2500 of the 5000, minus keys[10] (batch 0), plus fresh
    expect(t.size).toBe(2500);
  });
});

describe('ChunkStore recent chunks (served from memory)', () => {
  it('serves a just-stored chunk from memory only when asked, and forgets it when it is dropped', async () => {
    const store = await ChunkStore.open(dir, { sync: false });
    try {
      const c = chunk(5000);
      await store.put(c.hash, c.bytes);
      await corruptChunkForTest(dir, c.hash);
      // a peer asking gets the bytes that were hashed on the way in
      expect(same(await store.get(c.hash, { recent: true }), c.bytes)).toBe(true);
      // a read of the disk copy still finds the damage and drops the chunk...
      await expect(store.get(c.hash)).rejects.toBeInstanceOf(ChunkCorruptError);
      // ...and then the memory copy is gone too
      expect(await store.get(c.hash, { recent: true })).toBeUndefined();
      // deleted chunks are not served from memory either
      const d = chunk(3000);
      await store.put(d.hash, d.bytes);
      await store.delete(d.hash);
      expect(await store.get(d.hash, { recent: true })).toBeUndefined();
    } finally {
      await store.close();
    }
  });

  it('keeps at most recentBytes, the oldest chunks going first, in private copies', async () => {
    const store = await ChunkStore.open(dir, { sync: false, recentBytes: 10_000 });
    try {
      const cs = [chunk(4000), chunk(4000), chunk(4000)];
      for (const c of cs) await store.put(c.hash, c.bytes); // 12,000 > 10,000: cs[0] goes
      for (const c of cs) await corruptChunkForTest(dir, c.hash);
      expect(same(await store.get(cs[1].hash, { recent: true }), cs[1].bytes)).toBe(true);
      expect(same(await store.get(cs[2].hash, { recent: true }), cs[2].bytes)).toBe(true);
      // cs[0] is read from disk, where it is damaged
      await expect(store.get(cs[0].hash, { recent: true })).rejects.toBeInstanceOf(
        ChunkCorruptError,
      );
      // the memory copy is private both ways: changing the caller's buffer, or the one get()
      // returned, changes nothing
      const e = chunk(1000);
      const mine = Buffer.from(e.bytes);
      await store.put(e.hash, mine);
      mine.fill(0);
      const got = await store.get(e.hash, { recent: true });
      expect(same(got, e.bytes)).toBe(true);
      got!.fill(0);
      expect(same(await store.get(e.hash, { recent: true }), e.bytes)).toBe(true);
    } finally {
      await store.close();
    }
  });
});
