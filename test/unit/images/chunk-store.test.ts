import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChunkStore, sha256Hex } from '../../../storage/chunks/index.js';
import {
  ChunkCorruptError,
  ChunkHashMismatchError,
  ChunkTooLargeError,
  InvalidChunkHashError,
  StoreClosedError,
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

describe('ChunkStore', () => {
  it('puts, gets, lists, counts and deletes chunks', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk(100);
    const b = chunk(2000);
    expect(await store.put(a.hash, a.bytes)).toBe(true);
    expect(await store.put(a.hash, a.bytes)).toBe(false); // idempotent
    expect((await store.add(b.bytes)).added).toBe(true);
    expect(Buffer.from((await store.get(a.hash))!).equals(Buffer.from(a.bytes))).toBe(true);
    expect(await store.get(chunk().hash)).toBeUndefined();
    expect(await store.has(b.hash)).toBe(true);
    expect(await store.hasMany([a.hash, chunk().hash, b.hash])).toEqual([true, false, true]);
    expect(await store.size(b.hash)).toBe(2000);
    expect(store.stats()).toEqual({ chunks: 2, bytes: 2100 });
    const listed: string[] = [];
    for await (const h of store.list()) listed.push(h);
    expect(listed.sort()).toEqual([a.hash, b.hash].sort());
    // files are sharded by the first two hex digits
    expect(await readdir(join(dir, 'chunks', a.hash.slice(0, 2)))).toContain(a.hash);
    expect(await store.delete(a.hash)).toBe(true);
    expect(await store.delete(a.hash)).toBe(false);
    expect(store.stats()).toEqual({ chunks: 1, bytes: 2000 });
    await store.close();
    await expect(store.get(b.hash)).rejects.toBeInstanceOf(StoreClosedError);
    const again = await ChunkStore.open(dir);
    expect(again.stats()).toEqual({ chunks: 1, bytes: 2000 });
    await again.close();
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
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    await expect(store.put('ABC', a.bytes)).rejects.toBeInstanceOf(InvalidChunkHashError);
    await expect(store.get('../../etc/passwd')).rejects.toBeInstanceOf(InvalidChunkHashError);
    const small = await ChunkStore.open(join(dir, 'small'), { maxChunkBytes: 10 });
    await expect(small.add(new Uint8Array(11))).rejects.toBeInstanceOf(ChunkTooLargeError);
    await small.close();
    await store.close();
  });

  it('detects a tampered chunk on get, quarantines it, and accepts a good copy again', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    await store.put(a.hash, a.bytes);
    const path = join(dir, 'chunks', a.hash.slice(0, 2), a.hash);
    const bad = Buffer.from(a.bytes);
    bad[0] ^= 0xff;
    await writeFile(path, bad);
    // without verification the bad bytes come back (callers that skip it take the risk)
    expect((await store.get(a.hash, { verify: false }))![0]).toBe(bad[0]);
    const err = await store.get(a.hash).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChunkCorruptError);
    expect((err as ChunkCorruptError).hash).toBe(a.hash);
    expect(await store.has(a.hash)).toBe(false);
    expect(await store.get(a.hash)).toBeUndefined();
    expect((await readdir(join(dir, 'quarantine')))[0]).toMatch(new RegExp(`^${a.hash}\\.`));
    expect(store.stats().chunks).toBe(0);
    expect(await store.put(a.hash, a.bytes)).toBe(true);
    expect(Buffer.from((await store.get(a.hash))!).equals(Buffer.from(a.bytes))).toBe(true);
    // a truncated file (wrong size) is replaced by put()
    await writeFile(path, bad.subarray(0, 10));
    expect(await store.put(a.hash, a.bytes)).toBe(true);
    expect((await readFile(path)).length).toBe(a.bytes.length);
    await store.close();
  });

  it('never serves a temp file left by a crash, and cleans it at open', async () => {
    const a = chunk();
    const store = await ChunkStore.open(dir);
    await store.close();
    // a crash between write and rename leaves a (possibly partial) file in tmp/
    const leftover = join(dir, 'tmp', `${a.hash}.123.abcdef`);
    await writeFile(leftover, a.bytes.subarray(0, 10));
    const reopened = await ChunkStore.open(dir);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    expect(await reopened.has(a.hash)).toBe(false);
    expect(await reopened.get(a.hash)).toBeUndefined();
    expect(reopened.stats().chunks).toBe(0);
    // junk in a shard directory is not a chunk
    await writeFile(join(dir, 'chunks', 'ab', 'not-a-chunk'), 'x');
    const listed: string[] = [];
    for await (const h of reopened.list()) listed.push(h);
    expect(listed).toEqual([]);
    await reopened.close();
  });

  it('drops quarantined files after they have been kept long enough', async () => {
    await mkdir(join(dir, 'quarantine'), { recursive: true });
    const old = join(dir, 'quarantine', `${'a'.repeat(64)}.1`);
    await writeFile(old, 'x');
    const then = new Date(Date.now() - 8 * 24 * 3600 * 1000);
    await utimes(old, then, then);
    const fresh = join(dir, 'quarantine', `${'b'.repeat(64)}.2`);
    await writeFile(fresh, 'y');
    const store = await ChunkStore.open(dir);
    expect(await readdir(join(dir, 'quarantine'))).toEqual([`${'b'.repeat(64)}.2`]);
    await store.close();
  });

  it('delete() honours ifOlderThanMs and unless, and put() refreshes the mtime', async () => {
    const store = await ChunkStore.open(dir);
    const a = chunk();
    await store.put(a.hash, a.bytes);
    const path = join(dir, 'chunks', a.hash.slice(0, 2), a.hash);
    const old = new Date(Date.now() - 3600_000);
    await utimes(path, old, old);
    const cutoff = Date.now() - 60_000;
    expect(await store.delete(a.hash, { ifOlderThanMs: cutoff, unless: () => true })).toBe(false);
    await store.put(a.hash, a.bytes); // present: refreshes the mtime
    expect(await store.delete(a.hash, { ifOlderThanMs: cutoff })).toBe(false);
    await utimes(path, old, old);
    expect(await store.delete(a.hash, { ifOlderThanMs: cutoff })).toBe(true);
    await store.close();
  });

  it('handles many concurrent puts of the same and different chunks', async () => {
    const store = await ChunkStore.open(dir);
    const cs = Array.from({ length: 50 }, () => chunk(500));
    const results = await Promise.all([...cs, ...cs, ...cs].map((c) => store.put(c.hash, c.bytes)));
    expect(results.filter(Boolean).length).toBe(50);
    expect(store.stats()).toEqual({ chunks: 50, bytes: 25_000 });
    const infos: number[] = [];
    for await (const i of store.entries()) infos.push(i.size);
    expect(infos.length).toBe(50);
    await store.close();
  });
});
