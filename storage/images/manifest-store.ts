// The manifest store: signed image manifests and tombstones in a KvStore namespace.
//
// Per NAME:TAG it keeps the newest `keepVersions` versions (so an agent can roll back) and at
// most one tombstone. A tombstone at version V hides and deletes every version <= V; a manifest
// above V is alive again (a later push wins). Tombstones are kept for good (a few hundred bytes
// each) so that a site that was cut off for days cannot bring a removed image back.
//
// Keys in the namespace:
//   m:<name>:<tag>:<version, 16 digits>   encoded manifest
//   t:<name>:<tag>                        encoded tombstone
// Names and tags cannot contain ':', so the prefixes never overlap. Writes are batches with
// sync: true: a put() or remove() that resolved survives a crash. Updates of one NAME:TAG are
// serialized in memory, so use one ManifestStore per namespace in a process.
import type { PrivateKey } from '@libp2p/interface';
import { CorruptDataError } from '../errors.js';
import type { KvStore } from '../kv/index.js';
import { KeyedLock } from '../chunks/keyed-lock.js';
import {
  compareManifests,
  decodeManifest,
  encodeManifest,
  verifyManifest,
  type Manifest,
} from './manifest.js';
import { validateImageName, validateImageTag } from './names.js';
import {
  decodeTombstone,
  encodeTombstone,
  signTombstone,
  verifyTombstone,
  type Tombstone,
} from './tombstone.js';

/**
 * Versions kept per NAME:TAG. Default 3: the current one, the one before it to roll back to, and
 * one more for a rollback of a rollback; each costs only its manifest and its unshared chunks.
 */

/** Decoded manifests kept in memory (see ManifestStore.#decodeManifest). */
const DECODED_CACHE_ENTRIES = 64;
export const DEFAULT_KEEP_VERSIONS = 3;
/** Namespace of the KvStore the manifests live in. */
export const MANIFEST_NAMESPACE = 'images';
/**
 * How far a manifest or tombstone version may run ahead of this agent's clock. Unit: ms. Default
 * 1 hour. Versions are counters (1, 2, 3, ...: each push takes the highest version known + 1),
 * and no honest push makes one anywhere near the clock in ms since the epoch, so a version above
 * `now + MAX_VERSION_AHEAD_MS` is refused wherever it is stored. Without a bound, one key holder
 * could sign a manifest at Number.MAX_SAFE_INTEGER and no agent could ever push that NAME:TAG
 * again (the next version would not be a safe integer). With it, such a manifest only moves the
 * counter up to about the clock, and pushes go on from there: at 1 ms per version the room left
 * lasts ~285,000 years. The bound is absolute, not relative to the versions held, so an agent that
 * joins late (or was cut off during many pushes) still takes any honest version.
 */
export const MAX_VERSION_AHEAD_MS = 60 * 60 * 1000;

/** The highest version `put` and `applyTombstone` take at `now` (ms since the epoch). */
export function maxAcceptedVersion(now: number, aheadMs = MAX_VERSION_AHEAD_MS): number {
  return Math.min(Number.MAX_SAFE_INTEGER - 1, Math.max(0, Math.floor(now)) + aheadMs);
}

export interface ManifestStoreOptions {
  /** Versions kept per NAME:TAG, >= 1. Default DEFAULT_KEEP_VERSIONS. */
  keepVersions?: number;
  /** Namespace inside the given KvStore. Default MANIFEST_NAMESPACE. */
  namespace?: string;
  /** Clock for the version bound (ms since the epoch). Default Date.now. */
  now?: () => number;
  /** See MAX_VERSION_AHEAD_MS. */
  maxVersionAheadMs?: number;
}

export type PutResult =
  /** Stored; `current` if it is now the newest; `dropped`: versions that fell out of the window. */
  | { status: 'stored'; current: boolean; dropped: number[] }
  /** This exact manifest was already here. */
  | { status: 'duplicate' }
  /** Not kept: older than every kept version, or it lost a same-version tie (compareManifests). */
  | { status: 'stale' }
  /** Not kept: a tombstone covers this version. */
  | { status: 'removed'; tombstone: Tombstone }
  /** Refused: the version is above maxAcceptedVersion (see MAX_VERSION_AHEAD_MS). */
  | { status: 'too_far_ahead'; limit: number };

export type TombstoneResult =
  /** Applied; `removed` lists the versions it deleted. */
  | { status: 'applied'; removed: number[] }
  | { status: 'duplicate' }
  /** A tombstone at least as new was already here. */
  | { status: 'stale' }
  /** Refused: the version is above maxAcceptedVersion (see MAX_VERSION_AHEAD_MS). */
  | { status: 'too_far_ahead'; limit: number };

/** Per NAME:TAG: the highest version known, alive or removed (for replication summaries). */
export interface ImageHead {
  name: string;
  tag: string;
  /** The highest manifest or tombstone version. */
  version: number;
  /** True if a tombstone is the newest record. */
  removed: boolean;
}

const VERSION_DIGITS = 16;

function groupPrefix(name: string, tag: string): string {
  return `m:${name}:${tag}:`;
}

function versionKey(name: string, tag: string, version: number): string {
  return groupPrefix(name, tag) + String(version).padStart(VERSION_DIGITS, '0');
}

function tombstoneKey(name: string, tag: string): string {
  return `t:${name}:${tag}`;
}

/** Splits "m:name:tag:version" into its parts (names and tags hold no ':'). */
function parseVersionKey(key: string): { name: string; tag: string; version: number } {
  const [, name, tag, v] = key.split(':');
  return { name, tag, version: Number(v) };
}

/** Splits "t:name:tag" into its parts. */
function parseTombstoneKey(key: string): { name: string; tag: string } {
  const [, name, tag] = key.split(':');
  return { name, tag };
}

export class ManifestStore {
  readonly keepVersions: number;
  readonly maxVersionAheadMs: number;
  readonly #kv: KvStore;
  readonly #now: () => number;
  readonly #lock = new KeyedLock();

  constructor(kv: KvStore, opts: ManifestStoreOptions = {}) {
    this.keepVersions = opts.keepVersions ?? DEFAULT_KEEP_VERSIONS;
    this.maxVersionAheadMs = opts.maxVersionAheadMs ?? MAX_VERSION_AHEAD_MS;
    this.#now = opts.now ?? Date.now;
    if (!Number.isInteger(this.keepVersions) || this.keepVersions < 1)
      throw new RangeError(`keepVersions must be an integer >= 1, got ${this.keepVersions}`);
    this.#kv = kv.namespace(opts.namespace ?? MANIFEST_NAMESPACE);
  }

  /** The highest version this store takes now (see MAX_VERSION_AHEAD_MS). */
  versionLimit(): number {
    return maxAcceptedVersion(this.#now(), this.maxVersionAheadMs);
  }

  /**
   * Decoded manifests by key, kept while their stored bytes stay the same: status queries and
   * the replication loop read the same few manifests again and again, and decoding one (checking
   * every chunk hash) costs milliseconds for a large image.
   */
  readonly #decoded = new Map<string, { bytes: Uint8Array; manifest: Manifest }>();

  #decodeManifest(key: string, bytes: Uint8Array): Manifest {
    const hit = this.#decoded.get(key);
    if (hit !== undefined && Buffer.compare(hit.bytes, bytes) === 0) return hit.manifest;
    let manifest: Manifest;
    try {
      manifest = decodeManifest(bytes);
    } catch (err) {
      throw new CorruptDataError(`stored manifest ${key}: ${(err as Error).message}`);
    }
    if (this.#decoded.size >= DECODED_CACHE_ENTRIES) {
      const oldest = this.#decoded.keys().next().value;
      if (oldest !== undefined) this.#decoded.delete(oldest);
    }
    this.#decoded.set(key, { bytes, manifest });
    return manifest;
  }

  async #tombstone(name: string, tag: string): Promise<Tombstone | undefined> {
    const key = tombstoneKey(name, tag);
    const bytes = await this.#kv.get(key);
    if (bytes === undefined) return undefined;
    try {
      return decodeTombstone(bytes);
    } catch (err) {
      throw new CorruptDataError(`stored tombstone ${key}: ${(err as Error).message}`);
    }
  }

  /** Stored versions of NAME:TAG, ascending (tombstoned ones are deleted, so never listed). */
  async versions(name: string, tag: string): Promise<number[]> {
    validateImageName(name);
    validateImageTag(tag);
    const out: number[] = [];
    for await (const k of this.#kv.keys({ prefix: groupPrefix(name, tag) }))
      out.push(parseVersionKey(k).version);
    return out;
  }

  /**
   * Stores a manifest (received from a peer or just pushed). With `verify` (default true) checks
   * it first with verifyManifest(), which throws InvalidManifestError or ManifestSignatureError.
   */
  async put(m: Manifest, opts: { verify?: boolean } = {}): Promise<PutResult> {
    if (opts.verify ?? true) await verifyManifest(m);
    const encoded = encodeManifest(m);
    const limit = this.versionLimit();
    if (m.version > limit) return { status: 'too_far_ahead', limit };
    return this.#lock.run(`${m.name}:${m.tag}`, async () => {
      // a forged far-future tombstone or manifest stored before the bound must not refuse this
      const { versions, tomb } = await this.#purgeAhead(m.name, m.tag);
      if (tomb !== undefined && m.version <= tomb.version)
        return { status: 'removed', tombstone: tomb };
      const key = versionKey(m.name, m.tag, m.version);
      if (versions.includes(m.version)) {
        const existing = this.#decodeManifest(key, (await this.#kv.get(key))!);
        const cmp = compareManifests(m, existing);
        if (cmp === 0) return { status: 'duplicate' };
        if (cmp < 0) return { status: 'stale' };
      } else if (versions.length >= this.keepVersions && m.version < versions[0]) {
        return { status: 'stale' };
      }
      const all = [...new Set([...versions, m.version])].sort((a, b) => a - b);
      const dropped = all.slice(0, Math.max(0, all.length - this.keepVersions));
      await this.#kv.batch(
        [
          { type: 'put', key, value: encoded },
          ...dropped.map((v) => ({ type: 'del' as const, key: versionKey(m.name, m.tag, v) })),
        ],
        { sync: true },
      );
      return { status: 'stored', current: m.version === all[all.length - 1], dropped };
    });
  }

  /**
   * The manifest of NAME:TAG at `version`, or the current (newest) one; undefined if there is
   * none or it was removed. Throws InvalidImageRefError for a bad name or tag.
   */
  async get(name: string, tag: string, version?: number): Promise<Manifest | undefined> {
    validateImageName(name);
    validateImageTag(tag);
    let key: string | undefined;
    let bytes: Uint8Array | undefined;
    if (version === undefined) {
      for await (const [k, v] of this.#kv.entries({
        prefix: groupPrefix(name, tag),
        reverse: true,
        limit: 1,
      })) {
        key = k;
        bytes = v;
      }
    } else {
      if (!Number.isSafeInteger(version) || version < 1) return undefined;
      key = versionKey(name, tag, version);
      bytes = await this.#kv.get(key);
    }
    return key === undefined || bytes === undefined ? undefined : this.#decodeManifest(key, bytes);
  }

  /** The tombstone of NAME:TAG, if it was ever removed. */
  async tombstone(name: string, tag: string): Promise<Tombstone | undefined> {
    validateImageName(name);
    validateImageTag(tag);
    return this.#tombstone(name, tag);
  }

  /**
   * The version a new push of NAME:TAG should carry: one above every version seen or removed.
   * Manifests and a tombstone above the version bound (stored before it existed, or while this
   * agent's clock was far ahead) are deleted here first: no agent takes them any more, and a push
   * must not fail, or lose, because of them.
   */
  async nextVersion(name: string, tag: string): Promise<number> {
    validateImageName(name);
    validateImageTag(tag);
    return this.#lock.run(`${name}:${tag}`, async () => {
      const { versions, tomb } = await this.#purgeAhead(name, tag);
      return Math.max(versions[versions.length - 1] ?? 0, tomb?.version ?? 0) + 1;
    });
  }

  /**
   * Deletes every manifest and tombstone above the version bound, of every NAME:TAG: stored before
   * the bound existed (a forged far-future version), they would stay current for reads (`get`)
   * and refuse honest pushes (`put` against a forged tombstone) on every agent but the one that
   * pushes next. Run at start. Returns how many records went.
   */
  async purgeAllAhead(): Promise<number> {
    const groups = new Map<string, { name: string; tag: string }>();
    const add = ({ name, tag }: { name: string; tag: string }) =>
      groups.set(`${name}:${tag}`, { name, tag });
    for await (const k of this.#kv.keys({ prefix: 'm:' })) add(parseVersionKey(k));
    for await (const k of this.#kv.keys({ prefix: 't:' })) add(parseTombstoneKey(k));
    let purged = 0;
    for (const [lockKey, { name, tag }] of groups)
      purged += (await this.#lock.run(lockKey, () => this.#purgeAhead(name, tag))).purged;
    return purged;
  }

  /**
   * Deletes the manifests and the tombstone of NAME:TAG above the version bound, and returns what
   * is left (the stored versions, ascending, and the tombstone) and how many records went. Under
   * the lock.
   */
  async #purgeAhead(
    name: string,
    tag: string,
  ): Promise<{ versions: number[]; tomb: Tombstone | undefined; purged: number }> {
    const limit = this.versionLimit();
    const all = await this.versions(name, tag);
    const ahead = all.filter((v) => v > limit);
    const stored = await this.#tombstone(name, tag);
    const dropTomb = stored !== undefined && stored.version > limit;
    const left = {
      versions: all.filter((v) => v <= limit),
      tomb: dropTomb ? undefined : stored,
      purged: ahead.length + (dropTomb ? 1 : 0),
    };
    if (left.purged === 0) return left;
    await this.#kv.batch(
      [
        ...ahead.map((v) => ({ type: 'del' as const, key: versionKey(name, tag, v) })),
        ...(dropTomb ? [{ type: 'del' as const, key: tombstoneKey(name, tag) }] : []),
      ],
      { sync: true },
    );
    return left;
  }

  /** The current manifest of every NAME:TAG that has one, ordered by name and tag. */
  async *list(): AsyncIterable<Manifest> {
    let lastKey: string | undefined;
    let lastGroup: string | undefined;
    const flush = async (): Promise<Manifest | undefined> => {
      if (lastKey === undefined) return undefined;
      const bytes = await this.#kv.get(lastKey);
      return bytes === undefined ? undefined : this.#decodeManifest(lastKey, bytes);
    };
    for await (const k of this.#kv.keys({ prefix: 'm:' })) {
      const group = k.slice(0, k.lastIndexOf(':') + 1);
      if (lastGroup !== undefined && group !== lastGroup) {
        const m = await flush();
        if (m !== undefined) yield m;
      }
      lastGroup = group;
      lastKey = k;
    }
    const m = await flush();
    if (m !== undefined) yield m;
  }

  /** Every stored manifest, all kept versions, ordered by name, tag and version. */
  async *all(): AsyncIterable<Manifest> {
    for await (const [k, v] of this.#kv.entries({ prefix: 'm:' })) yield this.#decodeManifest(k, v);
  }

  /** Every tombstone. */
  async *tombstones(): AsyncIterable<Tombstone> {
    for await (const [k, v] of this.#kv.entries({ prefix: 't:' })) {
      try {
        yield decodeTombstone(v);
      } catch (err) {
        throw new CorruptDataError(`stored tombstone ${k}: ${(err as Error).message}`);
      }
    }
  }

  /** The newest version known of every NAME:TAG, alive or removed. */
  async heads(): Promise<ImageHead[]> {
    const heads = new Map<string, ImageHead>();
    // versions above the bound (kept from before it, until the next push or remove) are not
    // offered: every peer would fetch and refuse them on every round
    const limit = this.versionLimit();
    for await (const k of this.#kv.keys({ prefix: 'm:' })) {
      const { name, tag, version } = parseVersionKey(k);
      if (version > limit) continue;
      heads.set(`${name}:${tag}`, { name, tag, version, removed: false });
    }
    for await (const t of this.tombstones()) {
      if (t.version > limit) continue;
      const id = `${t.name}:${t.tag}`;
      const h = heads.get(id);
      if (h === undefined || h.version <= t.version)
        heads.set(id, { name: t.name, tag: t.tag, version: t.version, removed: true });
    }
    return [...heads.values()].sort((a, b) =>
      a.name === b.name ? (a.tag < b.tag ? -1 : 1) : a.name < b.name ? -1 : 1,
    );
  }

  /**
   * Removes NAME:TAG here (every stored version) with a tombstone signed by `signer`, which the
   * caller then replicates. Returns the tombstone, or undefined if there was nothing to remove.
   */
  async remove(
    name: string,
    tag: string,
    signer: PrivateKey,
    now = Date.now(),
  ): Promise<Tombstone | undefined> {
    const { versions } = await this.#lock.run(`${name}:${tag}`, () => this.#purgeAhead(name, tag));
    if (versions.length === 0) return undefined;
    const t = await signTombstone(
      { name, tag, version: versions[versions.length - 1], removedAt: now },
      signer,
    );
    const r = await this.applyTombstone(t, { verify: false });
    return r.status === 'stale' ? await this.#tombstone(name, tag) : t;
  }

  /**
   * Applies a tombstone (received from a peer, or made by remove()): deletes the versions it
   * covers and keeps it. With `verify` (default true) checks its signature first.
   */
  async applyTombstone(t: Tombstone, opts: { verify?: boolean } = {}): Promise<TombstoneResult> {
    if (opts.verify ?? true) await verifyTombstone(t);
    const encoded = encodeTombstone(t);
    const limit = this.versionLimit();
    if (t.version > limit) return { status: 'too_far_ahead', limit };
    return this.#lock.run(`${t.name}:${t.tag}`, async () => {
      const old = await this.#tombstone(t.name, t.tag);
      if (old !== undefined) {
        if (Buffer.compare(encodeTombstone(old), encoded) === 0) return { status: 'duplicate' };
        const newer =
          t.version !== old.version
            ? t.version > old.version
            : t.removedAt !== old.removedAt
              ? t.removedAt > old.removedAt
              : Buffer.compare(encodeTombstone(old), encoded) < 0;
        if (!newer) return { status: 'stale' };
      }
      const removed = (await this.versions(t.name, t.tag)).filter((v) => v <= t.version);
      await this.#kv.batch(
        [
          { type: 'put', key: tombstoneKey(t.name, t.tag), value: encoded },
          ...removed.map((v) => ({ type: 'del' as const, key: versionKey(t.name, t.tag, v) })),
        ],
        { sync: true },
      );
      return { status: 'applied', removed };
    });
  }

  /** The hashes of every chunk that a kept manifest (any kept version) references: for GC. */
  async referencedChunks(): Promise<Set<string>> {
    const out = new Set<string>();
    for await (const m of this.all()) for (const c of m.chunks) out.add(c.hash);
    return out;
  }
}
