import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { beforeAll, describe, expect, it } from 'vitest';
import { InvalidImageRefError, ManifestSignatureError } from '../../../storage/errors.js';
import {
  ManifestStore,
  signManifest,
  signTombstone,
  type Manifest,
} from '../../../storage/images/index.js';
import { LevelStore, MemoryStore } from '../../../storage/kv/index.js';

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

let key: PrivateKey;
let other: PrivateKey;
beforeAll(async () => {
  key = await generateKeyPair('Ed25519');
  other = await generateKeyPair('Ed25519');
});

async function manifest(
  version: number,
  opts: { name?: string; tag?: string; chunks?: string[]; signer?: PrivateKey; at?: number } = {},
): Promise<Manifest> {
  const chunks = (opts.chunks ?? [`c${version}`, 'shared']).map((c) => ({
    hash: hex(c),
    size: 10,
  }));
  return signManifest(
    {
      name: opts.name ?? 'edge/app',
      tag: opts.tag ?? 'v1',
      digest: `sha256:${hex(`content ${version}`)}`,
      size: chunks.length * 10,
      chunks,
      createdAt: opts.at ?? 1000 + version,
      version,
    },
    opts.signer ?? key,
  );
}

describe('ManifestStore', () => {
  it('keeps the newest keepVersions versions and rolls the window', async () => {
    const kv = new MemoryStore();
    const store = new ManifestStore(kv);
    expect(store.keepVersions).toBe(3);
    for (const v of [1, 2, 3]) expect((await store.put(await manifest(v))).status).toBe('stored');
    expect(await store.versions('edge/app', 'v1')).toEqual([1, 2, 3]);
    const r = await store.put(await manifest(4));
    expect(r).toEqual({ status: 'stored', current: true, dropped: [1] });
    expect(await store.versions('edge/app', 'v1')).toEqual([2, 3, 4]);
    expect((await store.get('edge/app', 'v1'))?.version).toBe(4);
    expect((await store.get('edge/app', 'v1', 2))?.version).toBe(2); // roll back target
    expect(await store.get('edge/app', 'v1', 1)).toBeUndefined();
    // an old version arriving late is stale; a missing one inside the window is stored
    expect((await store.put(await manifest(1))).status).toBe('stale');
    expect((await store.put(await manifest(4))).status).toBe('duplicate');
    expect(await store.nextVersion('edge/app', 'v1')).toBe(5);
    // it keeps data in its own namespace of the KvStore
    const keys: string[] = [];
    for await (const k of kv.keys()) keys.push(k);
    expect(keys.every((k) => k.startsWith('\x01images\x01m:edge/app:v1:'))).toBe(true);
    const small = new ManifestStore(new MemoryStore(), { keepVersions: 1 });
    await small.put(await manifest(5));
    expect((await small.put(await manifest(6))).status).toBe('stored');
    expect(await small.versions('edge/app', 'v1')).toEqual([6]);
  });

  it('verifies before storing and picks one winner for a same-version conflict', async () => {
    const store = new ManifestStore(new MemoryStore());
    const m = await manifest(1);
    await expect(store.put({ ...m, version: 2 })).rejects.toBeInstanceOf(ManifestSignatureError);
    const a = await manifest(1, { at: 5000 });
    const b = await manifest(1, { at: 6000, signer: other });
    expect((await store.put(b)).status).toBe('stored');
    expect((await store.put(a)).status).toBe('stale');
    const c = new ManifestStore(new MemoryStore());
    await c.put(a);
    expect((await c.put(b)).status).toBe('stored'); // same winner in either order
    expect((await c.get('edge/app', 'v1'))?.creator).toBe(b.creator);
    await expect(store.get('Bad', 'v1')).rejects.toBeInstanceOf(InvalidImageRefError);
  });

  it('lists current manifests and the chunks that kept versions reference', async () => {
    const store = new ManifestStore(new MemoryStore());
    await store.put(await manifest(1, { name: 'a', chunks: ['a1'] }));
    await store.put(await manifest(2, { name: 'a', chunks: ['a2'] }));
    await store.put(await manifest(1, { name: 'a', tag: 'v2', chunks: ['x'] }));
    await store.put(await manifest(7, { name: 'b/c', chunks: ['b7', 'a2'] }));
    const listed: string[] = [];
    for await (const m of store.list()) listed.push(`${m.name}:${m.tag}@${m.version}`);
    expect(listed).toEqual(['a:v1@2', 'a:v2@1', 'b/c:v1@7']);
    expect(await store.referencedChunks()).toEqual(new Set(['a1', 'a2', 'x', 'b7'].map(hex)));
  });

  it('removes with a tombstone that a later push overrides', async () => {
    const store = new ManifestStore(new MemoryStore());
    expect(await store.remove('edge/app', 'v1', key)).toBeUndefined();
    await store.put(await manifest(1));
    await store.put(await manifest(2));
    const t = await store.remove('edge/app', 'v1', key, 9999);
    expect(t).toMatchObject({ name: 'edge/app', tag: 'v1', version: 2, removedAt: 9999 });
    expect(await store.get('edge/app', 'v1')).toBeUndefined();
    expect(await store.versions('edge/app', 'v1')).toEqual([]);
    expect(await store.referencedChunks()).toEqual(new Set());
    // replication delivers an old version late: the tombstone wins
    const late = await store.put(await manifest(2));
    expect(late.status).toBe('removed');
    expect(await store.heads()).toEqual([
      { name: 'edge/app', tag: 'v1', version: 2, removed: true },
    ]);
    // a later push (version above the tombstone) brings it back
    expect(await store.nextVersion('edge/app', 'v1')).toBe(3);
    expect((await store.put(await manifest(3))).status).toBe('stored');
    expect((await store.get('edge/app', 'v1'))?.version).toBe(3);
    expect(await store.heads()).toEqual([
      { name: 'edge/app', tag: 'v1', version: 3, removed: false },
    ]);
  });

  it('applies replicated tombstones: verified, idempotent, newest wins', async () => {
    const store = new ManifestStore(new MemoryStore());
    for (const v of [3, 4, 5]) await store.put(await manifest(v));
    const t4 = await signTombstone(
      { name: 'edge/app', tag: 'v1', version: 4, removedAt: 1 },
      other,
    );
    await expect(store.applyTombstone({ ...t4, version: 5 })).rejects.toBeInstanceOf(
      ManifestSignatureError,
    );
    expect(await store.applyTombstone(t4)).toEqual({ status: 'applied', removed: [3, 4] });
    expect(await store.applyTombstone(t4)).toEqual({ status: 'duplicate' });
    expect((await store.get('edge/app', 'v1'))?.version).toBe(5); // pushed after: alive
    const t3 = await signTombstone({ name: 'edge/app', tag: 'v1', version: 3, removedAt: 2 }, key);
    expect((await store.applyTombstone(t3)).status).toBe('stale');
    expect((await store.tombstone('edge/app', 'v1'))?.version).toBe(4);
  });

  it('refuses versions far above the clock, so a forged one cannot block pushes', async () => {
    const now = 1_700_000_000_000;
    const store = new ManifestStore(new MemoryStore(), { now: () => now });
    expect(store.versionLimit()).toBe(now + 60 * 60 * 1000);
    await store.put(await manifest(1));
    // any key holder can sign a manifest with a throwaway key at the largest safe version
    const forged = await manifest(Number.MAX_SAFE_INTEGER, { signer: other, at: 5 });
    expect(await store.put(forged)).toEqual({ status: 'too_far_ahead', limit: now + 3_600_000 });
    const t = await signTombstone(
      { name: 'edge/app', tag: 'v1', version: Number.MAX_SAFE_INTEGER, removedAt: 1 },
      other,
    );
    expect((await store.applyTombstone(t)).status).toBe('too_far_ahead');
    expect(await store.versions('edge/app', 'v1')).toEqual([1]);
    expect(await store.nextVersion('edge/app', 'v1')).toBe(2);
    // the most a forgery can do is move the counter up to about the clock: pushes go on from there
    const high = store.versionLimit();
    expect((await store.put(await manifest(high, { signer: other, at: 5 }))).status).toBe('stored');
    expect(await store.nextVersion('edge/app', 'v1')).toBe(high + 1);
  });

  it('drops versions above the bound stored before it existed, at the next push or remove', async () => {
    const kv = new MemoryStore();
    // an agent whose clock reads Number.MAX_SAFE_INTEGER stores anything, like an old one did
    const old = new ManifestStore(kv, { now: () => Number.MAX_SAFE_INTEGER });
    await old.put(await manifest(1));
    await old.put(await manifest(Number.MAX_SAFE_INTEGER, { signer: other, at: 5 }));
    await old.put(await manifest(2, { name: 'other' }));
    await old.applyTombstone(
      await signTombstone(
        { name: 'other', tag: 'v1', version: Number.MAX_SAFE_INTEGER - 1, removedAt: 1 },
        other,
      ),
    );
    const store = new ManifestStore(kv, { now: () => 1_700_000_000_000 });
    // not offered to peers, who would refuse it
    expect(await store.heads()).toEqual([
      { name: 'edge/app', tag: 'v1', version: 1, removed: false },
    ]);
    expect(await store.nextVersion('edge/app', 'v1')).toBe(2);
    expect(await store.versions('edge/app', 'v1')).toEqual([1]);
    expect((await store.put(await manifest(2))).status).toBe('stored');
    expect((await store.get('edge/app', 'v1'))?.version).toBe(2);
    // a removed NAME:TAG whose tombstone is above the bound can be pushed again
    expect(await store.nextVersion('other', 'v1')).toBe(1);
    expect(await store.tombstone('other', 'v1')).toBeUndefined();
    expect((await store.put(await manifest(1, { name: 'other' }))).status).toBe('stored');
  });

  it('an agent that does not push heals too: at start, and when an honest version arrives', async () => {
    // (only the pushing agent purged: elsewhere the forged version stayed current for reads, and
    // a forged tombstone refused the honest re-push of a removed NAME:TAG)
    const forge = async (kv: MemoryStore) => {
      const old = new ManifestStore(kv, { now: () => Number.MAX_SAFE_INTEGER });
      await old.put(await manifest(1));
      // (MAX_SAFE_INTEGER - 1: the highest any store ever took)
      const high = await manifest(Number.MAX_SAFE_INTEGER - 1, { signer: other, at: 5 });
      expect((await old.put(high)).status).toBe('stored');
      await old.applyTombstone(
        await signTombstone(
          { name: 'other', tag: 'v1', version: Number.MAX_SAFE_INTEGER - 1, removedAt: 1 },
          other,
        ),
      );
    };
    const now = () => 1_700_000_000_000;
    // a received honest manifest (put, not a push) is stored and current; the re-push too
    const kv1 = new MemoryStore();
    await forge(kv1);
    const receiver = new ManifestStore(kv1, { now });
    expect((await receiver.put(await manifest(2))).status).toBe('stored');
    expect((await receiver.get('edge/app', 'v1'))?.version).toBe(2);
    expect((await receiver.put(await manifest(1, { name: 'other' }))).status).toBe('stored');
    // at start, everything above the bound goes, of every NAME:TAG
    const kv2 = new MemoryStore();
    await forge(kv2);
    const started = new ManifestStore(kv2, { now });
    expect(await started.purgeAllAhead()).toBe(2);
    expect((await started.get('edge/app', 'v1'))?.version).toBe(1);
    expect(await started.tombstone('other', 'v1')).toBeUndefined();
    expect(await started.purgeAllAhead()).toBe(0);
  });

  it('persists in a LevelStore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'es-manifests-'));
    try {
      const db = await LevelStore.open(join(dir, 'db'));
      const store = new ManifestStore(db);
      const m = await manifest(1);
      await store.put(m);
      await db.close();
      const db2 = await LevelStore.open(join(dir, 'db'));
      expect(await new ManifestStore(db2).get('edge/app', 'v1')).toEqual(m);
      await db2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
