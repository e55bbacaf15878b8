import { createCipheriv, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ChunkStore,
  corruptChunkForTest,
  quarantinedChunks,
  sha256Hex,
} from '../../../storage/chunks/index.js';
import {
  ChunkCorruptError,
  ChunkNotFoundError,
  ImageDigestMismatchError,
  ImageTooLargeError,
} from '../../../storage/errors.js';
import {
  ManifestStore,
  PinSet,
  collectGarbage,
  exportImage,
  importImage,
  localCopy,
  missingChunks,
  signManifest,
  type Manifest,
} from '../../../storage/images/index.js';
import { MemoryStore } from '../../../storage/kv/index.js';

function seeded(seed: number, n: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed, 0);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

function* pieces(data: Uint8Array, size: number): Iterable<Uint8Array> {
  for (let o = 0; o < data.length; o += size) yield data.subarray(o, o + size);
}

async function collect(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

let key: PrivateKey;
let dir: string;
let chunks: ChunkStore;
beforeAll(async () => {
  key = await generateKeyPair('Ed25519');
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'es-import-'));
  chunks = await ChunkStore.open(dir, { sync: false });
});
afterEach(async () => {
  await chunks.close();
  await rm(dir, { recursive: true, force: true });
});

async function push(
  manifests: ManifestStore,
  data: Uint8Array,
  name: string,
  version = 1,
): Promise<Manifest> {
  const r = await importImage(pieces(data, 100_000), chunks);
  const m = await signManifest({ name, tag: 'v1', ...r, createdAt: 1, version }, key);
  await manifests.put(m);
  return m;
}

describe('importImage / exportImage', () => {
  it('round-trips multi-MiB data, whatever the buffer sizes, and dedups', async () => {
    // random bytes, then a long run of zeros, then random again
    const data = Buffer.concat([seeded(1, 3 << 20), Buffer.alloc(1 << 20), seeded(2, 2 << 20)]);
    const r = await importImage(pieces(data, 65_536), chunks, { concurrency: 3 });
    expect(r.size).toBe(data.length);
    expect(r.digest).toBe(`sha256:${createHash('sha256').update(data).digest('hex')}`);
    expect(r.chunks.reduce((s, c) => s + c.size, 0)).toBe(data.length);
    expect(r.chunks.every((c) => /^[0-9a-f]{64}$/.test(c.hash))).toBe(true);
    // a run of zeros is 8 identical max-size chunks: stored once
    expect(r.newChunks).toBe(new Set(r.chunks.map((c) => c.hash)).size);
    // other buffer sizes give the same chunks, and nothing new is written
    for (const size of [4093, 1 << 20]) {
      const again = await importImage(pieces(data, size), chunks);
      expect(again.chunks).toEqual(r.chunks);
      expect(again.newBytes).toBe(0);
    }
    const slice = data.subarray(0, 300_000);
    const byByte = await importImage(pieces(slice, 1), chunks);
    expect(byByte.chunks).toEqual((await importImage([slice], chunks)).chunks);
    const m = await signManifest({ name: 'img', tag: 't', ...r, createdAt: 1, version: 1 }, key);
    const out = await collect(exportImage(m, chunks));
    expect(out.equals(data)).toBe(true);
    expect(await missingChunks(m, chunks)).toEqual([]);
  });

  it('copies the input: a source may reuse its buffer', async () => {
    const data = seeded(13, 700_000);
    const shared = Buffer.alloc(50_000);
    async function* reusing(): AsyncIterable<Uint8Array> {
      for (let o = 0; o < data.length; o += shared.length) {
        const n = data.copy(shared, 0, o, o + shared.length);
        yield shared.subarray(0, n);
        shared.fill(0xee); // the importer must not have kept a view of it
      }
    }
    const r = await importImage(reusing(), chunks);
    const m = await signManifest({ name: 'img', tag: 't', ...r, createdAt: 1, version: 1 }, key);
    expect((await collect(exportImage(m, chunks))).equals(data)).toBe(true);
  });

  it('handles an empty stream and enforces maxBytes', async () => {
    const r = await importImage([], chunks);
    expect(r).toMatchObject({ size: 0, chunks: [], newChunks: 0 });
    expect(r.digest).toBe(`sha256:${createHash('sha256').digest('hex')}`);
    await expect(
      importImage(pieces(seeded(3, 5000), 1000), chunks, { maxBytes: 4999 }),
    ).rejects.toBeInstanceOf(ImageTooLargeError);
    const ac = new AbortController();
    ac.abort();
    await expect(importImage([new Uint8Array(1)], chunks, { signal: ac.signal })).rejects.toThrow();
  });

  it('export detects a tampered chunk, a missing chunk and a lying manifest', async () => {
    const data = seeded(4, 400_000);
    const r = await importImage([data], chunks);
    const m = await signManifest({ name: 'img', tag: 't', ...r, createdAt: 1, version: 1 }, key);
    const victim = r.chunks[3].hash;
    await corruptChunkForTest(dir, victim);
    await expect(collect(exportImage(m, chunks))).rejects.toBeInstanceOf(ChunkCorruptError);
    expect(await quarantinedChunks(dir)).toEqual([victim]);
    // quarantined: now it is missing, and the puller knows what to fetch
    await expect(collect(exportImage(m, chunks))).rejects.toBeInstanceOf(ChunkNotFoundError);
    expect(await missingChunks(m, chunks)).toEqual([r.chunks[3]]);
    expect(await localCopy(m, chunks)).toEqual({
      chunks: r.chunks.length,
      presentChunks: r.chunks.length - 1,
      bytes: data.length,
      presentBytes: data.length - r.chunks[3].size,
      complete: false,
    });
    await chunks.put(
      victim,
      data
        .subarray(r.chunks.slice(0, 3).reduce((s, c) => s + c.size, 0))
        .subarray(0, r.chunks[3].size),
    );
    expect((await collect(exportImage(m, chunks))).equals(data)).toBe(true);
    const liar = { ...m, digest: `sha256:${sha256Hex(new Uint8Array(1))}` };
    await expect(collect(exportImage(liar, chunks))).rejects.toBeInstanceOf(
      ImageDigestMismatchError,
    );
  });
});

describe('collectGarbage', () => {
  it('keeps referenced chunks and removes the rest', async () => {
    const manifests = new ManifestStore(new MemoryStore(), { keepVersions: 2 });
    const base = seeded(5, 1 << 20);
    const m1 = await push(manifests, base, 'app', 1);
    const edited = Buffer.from(base);
    seeded(6, 20_000).copy(edited, 500_000);
    const m2 = await push(manifests, edited, 'app', 2);
    const m3 = await push(manifests, seeded(7, 300_000), 'app', 3); // drops version 1
    const orphan = await chunks.add(seeded(8, 5000));
    const unique1 = m1.chunks.filter((c) => !m2.chunks.some((d) => d.hash === c.hash));
    expect(unique1.length).toBeGreaterThan(0);
    // everything is young: nothing is removed yet
    const early = await collectGarbage(chunks, manifests);
    expect(early.removed).toBe(0);
    expect(early.young).toBe(unique1.length + 1);
    const later = Date.now() + 2 * 3600_000;
    const dry = await collectGarbage(chunks, manifests, { now: later, dryRun: true });
    expect(dry.removed).toBe(unique1.length + 1);
    const r = await collectGarbage(chunks, manifests, { now: later });
    expect(r.removed).toBe(unique1.length + 1);
    expect(await chunks.has(orphan.hash)).toBe(false);
    for (const m of [m2, m3]) expect(await missingChunks(m, chunks)).toEqual([]);
    expect((await collect(exportImage(m2, chunks))).equals(edited)).toBe(true);
    // removing the image frees its chunks
    await manifests.remove('app', 'v1', key);
    const after = await collectGarbage(chunks, manifests, { now: later });
    expect(after.referenced).toBe(0);
    expect(chunks.stats()).toEqual({ chunks: 0, bytes: 0 });
    // and the compaction at the end of the GC gave the disk space back
    expect(after.compaction?.packs).toBeGreaterThan(0);
    expect(chunks.packStats()).toEqual({ packs: 0, packBytes: 0, liveBytes: 0 });
  });

  it('compacts the packs after deleting, and keeps the images it must keep', async () => {
    await chunks.close();
    chunks = await ChunkStore.open(dir, { sync: false, packBytes: 256 * 1024 });
    const manifests = new ManifestStore(new MemoryStore(), { keepVersions: 1 });
    const v1 = seeded(20, 2 << 20);
    const v2 = seeded(21, 2 << 20);
    await push(manifests, v1, 'app', 1);
    const m2 = await push(manifests, v2, 'app', 2); // drops version 1
    const before = chunks.packStats();
    const later = Date.now() + 2 * 3600_000;
    const dry = await collectGarbage(chunks, manifests, { now: later, dryRun: true });
    expect(dry.compaction).toBeUndefined();
    const r = await collectGarbage(chunks, manifests, { now: later });
    expect(r.removedBytes).toBe(v1.length);
    expect(r.compaction!.reclaimedBytes).toBeGreaterThan(v1.length * 0.9);
    expect(chunks.packStats().packBytes).toBeLessThan(before.packBytes - v1.length * 0.9);
    expect((await collect(exportImage(m2, chunks))).equals(v2)).toBe(true);
    const off = await collectGarbage(chunks, manifests, { now: later, compact: false });
    expect(off.compaction).toBeUndefined();
  });

  it('respects pins, and a release during a GC waits for it to end', async () => {
    const manifests = new ManifestStore(new MemoryStore());
    const a = await chunks.add(seeded(10, 3000));
    const b = await chunks.add(seeded(11, 3000));
    const later = Date.now() + 2 * 3600_000; // both are past the grace period then
    const pins = new PinSet();
    const hold = pins.hold([a.hash]);
    const r = await collectGarbage(chunks, manifests, { pins, now: later });
    expect(r).toMatchObject({ removed: 1, pinned: 1 });
    expect(await chunks.has(a.hash)).toBe(true);
    pins.gcBegin();
    hold.release();
    expect(pins.has(a.hash)).toBe(true); // deferred while a GC runs
    pins.gcEnd();
    expect(pins.has(a.hash)).toBe(false);
    expect(() => hold.add(b.hash)).toThrow();
    // import pins what it writes
    const h2 = pins.hold();
    const imp = await importImage([seeded(12, 50_000)], chunks, { pin: h2 });
    for (const c of imp.chunks) expect(pins.has(c.hash)).toBe(true);
    h2.release();
    expect(pins.size).toBe(0);
  });
});
