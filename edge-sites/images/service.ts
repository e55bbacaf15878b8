// Master-less image replication. Any agent can push an image; its signed manifest spreads by
// gossip (a small head announcement, then the manifest fetched from the announcer) and by
// anti-entropy; every agent works out from the manifest's placement and the membership whether it
// must hold the image, and if so pulls what it lacks from every agent that has pieces of it (see
// puller.ts), itself becoming a source for the others as chunks arrive.
import type { GossipSub } from '@libp2p/gossipsub';
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface';
import type { KadDHT } from '@libp2p/kad-dht';
import { peerIdFromString } from '@libp2p/peer-id';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { Backoff, Broadcast } from '../../membership/index.js';
import { ChunkStore, KeyedLock } from '../../storage/chunks/index.js';
import {
  ChunkCorruptError,
  ChunkStoreFailedError,
  InsufficientSpaceError,
  isOutOfSpace,
} from '../../storage/errors.js';
import type { KvStore } from '../../storage/index.js';
import {
  collectGarbage,
  decodeImageRecord,
  encodeManifest,
  encodeTombstone,
  exportImage,
  importImage,
  ManifestStore,
  PinSet,
  signManifest,
  verifyImageRecord,
  type Manifest,
  type PinHold,
} from '../../storage/images/index.js';
import { shouldHold, type PlacementMember } from '../placement.js';
import { Bitfield } from './bitfield.js';
import { ImageIndex } from './image-index.js';
import { fetchRecords, serveImages, syncImages, type SyncDeps } from './manifest-sync.js';
import { DEFAULT_PULL_OPTIONS, Pull, type PullOptions } from './puller.js';
import { serveChunks, type ServedImage } from './server.js';
import { ProgressTable, siteStatus, type SiteStatus } from './status.js';
import { TokenBucket } from './token-bucket.js';
import {
  CHUNKS_PROTOCOL,
  decodeGossip,
  encodeGossip,
  IMAGES_PROTOCOL,
  IMAGES_TOPIC,
  type ImagesGossip,
} from './wire.js';

/** Time between manifest anti-entropy rounds (ms). */
export const IMAGE_SYNC_INTERVAL_MS = 10_000;
/** Rounds started by members coming up (joins, restarts) are at least this far apart (ms). */
export const IMAGE_UP_SYNC_GAP_MS = 1_000;
/** A pulling agent announces its progress this often (ms); a holder every IMAGE_HOLDER_ANNOUNCE_MS. */
export const IMAGE_PROGRESS_INTERVAL_MS = 1_000;
export const IMAGE_HOLDER_ANNOUNCE_MS = 30_000;
/**
 * Providers found in the DHT for an image are used this long before it is asked again (ms). A
 * puller asks when it knows no holder in its own site.
 */
export const PROVIDER_LOOKUP_CACHE_MS = 10_000;
/**
 * A pull that failed on this agent's own store (a full disk, a store made read-only) is not
 * started again for this long, doubled after each such failure up to PULL_LOCAL_BACKOFF_MAX_MS
 * (ms). Other failures (sources gone) are retried after 2 s.
 */
export const PULL_LOCAL_BACKOFF_MS = 5_000;
export const PULL_LOCAL_BACKOFF_MAX_MS = 60_000;
/**
 * A pull starts only when the device holding the data directory has the bytes it still needs plus
 * this much free (bytes), so that a pull does not fill the disk that KV writes and registrations
 * need too; otherwise it is paused as if the disk were full.
 */
export const PULL_FREE_SPACE_RESERVE_BYTES = 64 * 2 ** 20;

/**
 * Manifest fetches (anti-entropy rounds, announced versions) stop for this long after storing one
 * failed for want of space, doubling after each such failure up to MANIFEST_LOCAL_BACKOFF_MAX_MS
 * (ms): until then every round fetched the same manifests again (a manifest holds ~2 KiB per MiB
 * of image).
 */
export const MANIFEST_LOCAL_BACKOFF_MS = 10_000;
export const MANIFEST_LOCAL_BACKOFF_MAX_MS = 120_000;

/**
 * A chunk store that turned read-only after a failed commit is closed and opened again this long
 * after (ms), doubling after each reopen that fails, up to CHUNK_STORE_REOPEN_MAX_MS. Opening
 * re-checks the index against the packs, as after a crash.
 */
export const CHUNK_STORE_REOPEN_MS = 2_000;
export const CHUNK_STORE_REOPEN_MAX_MS = 60_000;

/** Time between garbage collections of unreferenced chunks (ms). */
export const IMAGE_GC_INTERVAL_MS = 10 * 60_000;
/** New chunks are told to connected pullers in batches this often (ms). */
export const HAVE_BATCH_MS = 20;
/** Failed chunk reads while serving (EIO, say) are logged at most once per this long (ms). */
export const READ_FAILURE_LOG_MS = 60_000;

export interface ImageMembership {
  readonly selfId: string;
  readonly selfSite: string;
  members(): Array<PlacementMember & { name: string }>;
  site(id: string): string | undefined;
  state(id: string): string | undefined;
  rtt(id: string): number | undefined;
  randomPeer(opts?: { otherSite?: boolean }): string | undefined;
  addEventListener(type: 'change', l: (e: Event) => void): void;
  removeEventListener(type: 'change', l: (e: Event) => void): void;
}

export interface ImageComponents {
  node: {
    peerId: PeerId;
    services: { pubsub: GossipSub; dht: KadDHT };
    handle(
      protocol: string,
      handler: (stream: Stream, connection: Connection) => void | Promise<void>,
      opts?: { maxInboundStreams?: number; maxOutboundStreams?: number },
    ): Promise<void>;
    unhandle(protocol: string): Promise<void>;
    dialProtocol(peer: PeerId, protocols: string, opts?: { signal?: AbortSignal }): Promise<Stream>;
  };
  privateKey: PrivateKey;
  /** Namespace of the agent's store for manifests. */
  store: KvStore;
  /** Directory for chunk files. */
  chunkDir: string;
  membership: ImageMembership;
  logger: {
    debug(o: object, m?: string): void;
    info(o: object, m?: string): void;
    warn(o: object, m?: string): void;
  };
  metrics?: {
    bytes(direction: 'in' | 'out', scope: 'site' | 'wan', n: number): void;
    images(counts: Record<LocalState, number>): void;
    dropped(reason: string): void;
    badChunk(): void;
  };
}

export interface ImageOptions {
  keepVersions?: number;
  /** Upload cap for serving chunks, bytes/s (0 = none). */
  uploadRate?: number;
  /** Cap on chunk bytes sent to other sites, bytes/s (0 = none). */
  wanRate?: number;
  /** Largest image accepted by push (bytes). */
  maxImageBytes?: number;
  pull?: Partial<PullOptions>;
  syncIntervalMs?: number;
}

export type LocalState = 'complete' | 'pulling' | 'not_placed';

export interface ImageSummary {
  name: string;
  tag: string;
  version: number;
  digest: string;
  size: number;
  chunks: number;
  creator: string;
  createdAt: number;
  placement: Manifest['placement'];
  /** What this agent holds of it. */
  local: LocalStatus;
}

export interface LocalStatus {
  state: LocalState;
  bytes: number;
  /**
   * Set while this agent's pull of the image is paused after it failed on this agent's own store
   * (a full disk): why, and in how long it is tried again (ms).
   */
  paused?: { reason: string; retryInMs: number };
  /** Chunks held here (readable and served to peers). */
  chunks: number;
  /** Of those, chunks that survive a crash (a pull stores chunks and flushes them every 500 ms). */
  durableChunks: number;
}

interface Served extends ServedImage {
  manifest: Manifest;
}

interface Pulling {
  pull: Pull;
  done: Promise<void>;
  controller: AbortController;
  hold: PinHold;
  transient: boolean;
}

export async function digestKey(digest: string): Promise<CID> {
  return CID.createV1(
    0x55,
    await sha256.digest(new TextEncoder().encode(`/edgeswarm/image/${digest}`)),
  );
}

export class ImageService extends EventTarget {
  readonly #c: ImageComponents;
  readonly #o: ImageOptions;
  chunks!: ChunkStore;
  manifests!: ManifestStore;
  readonly pins = new PinSet();
  readonly progress = new ProgressTable();
  readonly #served = new Map<string, Served>();
  /** Announced versions being fetched now (name:tag:rank). */
  readonly #fetching = new Set<string>();
  readonly #pulls = new Map<string, Pulling>();
  /** Pulls that failed on our own store, and why: not restarted (by evaluation) while waiting. */
  readonly #pullBackoff = new Map<string, { backoff: Backoff; reason: string }>();
  readonly #reopenBackoff = new Backoff(CHUNK_STORE_REOPEN_MS, CHUNK_STORE_REOPEN_MAX_MS);
  #reopenTimer: NodeJS.Timeout | undefined;
  readonly #manifestBackoff = new Backoff(MANIFEST_LOCAL_BACKOFF_MS, MANIFEST_LOCAL_BACKOFF_MAX_MS);
  readonly #subs = new Map<string, Set<(i: number[]) => void>>();
  /** Readers waiting for chunks of an image, told when its pull fails on our own store. */
  readonly #readerFailures = new Map<string, Set<(err: Error) => void>>();
  readonly #pendingHave = new Map<string, number[]>();
  readonly #dhtSources = new Map<string, Set<string>>();
  readonly #byDigest = new Map<string, { name: string; tag: string; version: number }>();
  /** Version assignment and store of local pushes, one at a time per NAME:TAG. */
  readonly #pushLock = new KeyedLock();
  #upload!: TokenBucket;
  #wan!: TokenBucket;
  #started = false;
  readonly #controller = new AbortController();
  readonly #timers: NodeJS.Timeout[] = [];
  #evaluating: Promise<void> = Promise.resolve();
  #evalTimer: NodeJS.Timeout | undefined;
  #haveTimer: NodeJS.Timeout | undefined;
  /** Chunk reads that failed while serving, since the last warning, and when that was (ms). */
  #readFailures = { count: 0, loggedAt: -Infinity };
  readonly #onMembers = (evt: Event) => {
    const ev = (evt as CustomEvent<{ type: string; member: { id: string } }>).detail;
    if (ev.type === 'member:down' || ev.type === 'member:left' || ev.type === 'member:reap')
      this.progress.forgetMember(ev.member.id);
    if (ev.type !== 'member:update' && ev.type !== 'member:alive') this.#scheduleEvaluate();
    if (ev.type === 'member:up' && !this.#upSinceStart) {
      // the first member seen after a (re)start: the next evaluation says again what we hold
      // (the one at start may have had nobody to tell), not the next holder round
      this.#upSinceStart = true;
      this.#toldComplete.clear();
    }
    // a member that joined or came back: compare manifests with it now rather than at a later
    // round (a new agent learns the images at once), at most one such round per second
    if (ev.type === 'member:up' && Date.now() - this.#lastUpSync >= IMAGE_UP_SYNC_GAP_MS) {
      this.#lastUpSync = Date.now();
      void this.syncOnce(ev.member.id).catch((err: Error) =>
        this.#c.logger.debug({ peer: ev.member.id, err: err.message }, 'images sync after up'),
      );
    }
  };
  #lastUpSync = -Infinity;
  #upSinceStart = false;
  /** Images whose complete copy here was announced (or is being pulled, which announces it). */
  readonly #toldComplete = new Set<string>();

  readonly #broadcast: Broadcast;

  constructor(components: ImageComponents, options: ImageOptions = {}) {
    super();
    this.#c = components;
    this.#o = options;
    this.#broadcast = new Broadcast(
      { pubsub: components.node.services.pubsub, membership: components.membership },
      IMAGES_TOPIC,
      // only signed messages: a message's publisher is who it speaks for
      (m) => void (m.from ? this.#gossip(m.from, m.data).catch(() => {}) : undefined),
    );
  }

  get selfId(): string {
    return this.#c.membership.selfId;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.chunks = await this.#openChunks();
    this.manifests = new ManifestStore(this.#c.store, { keepVersions: this.#o.keepVersions });
    this.#upload = new TokenBucket(this.#o.uploadRate ?? 0);
    this.#wan = new TokenBucket(this.#o.wanRate ?? 0);
    for await (const m of this.manifests.all())
      this.#byDigest.set(m.digest, { name: m.name, tag: m.tag, version: m.version });
    const node = this.#c.node;
    await node.handle(
      CHUNKS_PROTOCOL,
      (stream, conn) => void this.#serveChunks(stream, conn.remotePeer.toString()),
      { maxInboundStreams: 64, maxOutboundStreams: 64 },
    );
    await node.handle(
      IMAGES_PROTOCOL,
      (stream, conn) => void this.#serveImages(stream, conn.remotePeer.toString()),
      {
        maxInboundStreams: 32,
        maxOutboundStreams: 32,
      },
    );
    this.#broadcast.start();
    this.#c.membership.addEventListener('change', this.#onMembers);
    const every = (ms: number, fn: () => Promise<unknown> | void) => {
      const t = setInterval(
        () =>
          void Promise.resolve(fn()).catch((err: Error) =>
            this.#c.logger.debug({ err: err.message }, 'images timer'),
          ),
        ms,
      );
      t.unref();
      this.#timers.push(t);
    };
    every(this.#o.syncIntervalMs ?? IMAGE_SYNC_INTERVAL_MS, () => this.syncOnce());
    every(IMAGE_PROGRESS_INTERVAL_MS, () => this.#announcePulling());
    every(IMAGE_HOLDER_ANNOUNCE_MS, () => this.#announceHeld());
    every(IMAGE_GC_INTERVAL_MS, () => this.gc());
    this.#scheduleEvaluate(0);
  }

  #openChunks(): Promise<ChunkStore> {
    return ChunkStore.open(this.#c.chunkDir, { onFailed: (err) => this.#chunksFailed(err) });
  }

  /** The chunk store turned read-only (a failed commit): reopen it, after a pause. */
  #chunksFailed(err: Error): void {
    if (!this.#started || this.#reopenTimer !== undefined) return;
    const ms = this.#reopenBackoff.fail(Date.now());
    this.#c.logger.warn(
      { err: err.message, reopenInMs: ms },
      'chunk store failed a write and is read-only; reopening it',
    );
    this.#reopenTimer = setTimeout(() => {
      this.#evaluating = this.#evaluating.then(() => this.#reopenChunks());
    }, ms);
    this.#reopenTimer.unref?.();
  }

  /**
   * Stops the pulls, closes the failed store and opens it again (another try later if that
   * fails). Reads and pushes in flight on the old store end with an error; what was not durable
   * is fetched again, as after a crash.
   */
  async #reopenChunks(): Promise<void> {
    if (!this.#started) return;
    for (const p of this.#pulls.values()) p.controller.abort();
    await Promise.allSettled([...this.#pulls.values()].map((p) => p.done));
    await this.chunks.close().catch(() => {});
    try {
      this.chunks = await this.#openChunks();
    } catch (err) {
      this.#reopenTimer = undefined;
      this.#chunksFailed(err as Error);
      return;
    }
    this.#reopenTimer = undefined;
    this.#reopenBackoff.reset();
    this.#served.clear();
    this.#pullBackoff.clear();
    this.#c.logger.info({}, 'chunk store reopened');
    // (a stop() meanwhile waited for this reopen on #evaluating, and closes the new store)
    this.#scheduleEvaluate(0);
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#controller.abort();
    clearTimeout(this.#reopenTimer);
    for (const t of this.#timers) clearInterval(t);
    clearTimeout(this.#evalTimer);
    clearTimeout(this.#haveTimer);
    const node = this.#c.node;
    this.#c.membership.removeEventListener('change', this.#onMembers);
    this.#broadcast.stop();
    for (const p of this.#pulls.values()) p.controller.abort();
    await Promise.allSettled([...this.#pulls.values()].map((p) => p.done));
    await node.unhandle(CHUNKS_PROTOCOL).catch(() => {});
    await node.unhandle(IMAGES_PROTOCOL).catch(() => {});
    await this.#evaluating.catch(() => {});
    await this.chunks?.close();
  }

  // ---- push, list, status, remove ----

  /** Imports an image from a byte stream, signs its manifest and announces it. */
  async push(
    name: string,
    tag: string,
    body: AsyncIterable<Uint8Array>,
    placement: { sites?: 'all' | string[]; copies?: number },
    opts: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {},
  ): Promise<Manifest> {
    const hold = this.pins.hold();
    try {
      const r = await importImage(body, this.chunks, {
        pin: hold,
        maxBytes: this.#o.maxImageBytes,
        signal: opts.signal,
        onProgress: opts.onProgress,
      });
      await this.chunks.flush();
      // The next version and its store are one step per NAME:TAG: concurrent pushes all took the
      // same version and all answered success, and only one of them was kept. A manifest of that
      // version that a peer pushed meanwhile can still win the tie: then the next version is taken.
      const m = await this.#pushLock.run(`${name}:${tag}`, async () => {
        for (let attempt = 1; ; attempt++) {
          const version = await this.manifests.nextVersion(name, tag);
          const signed = await signManifest(
            {
              name,
              tag,
              digest: r.digest,
              size: r.size,
              chunks: r.chunks,
              createdAt: Date.now(),
              version,
              placement,
            },
            this.#c.privateKey,
          );
          if (await this.#store(signed)) return signed;
          if (attempt === 5)
            throw new Error(
              `${name}:${tag}: version ${version} was taken by a peer's push 5 times`,
            );
        }
      });
      // other agents' `image status` count this copy from now, not from the next holder round
      await this.#servedFor(m);
      this.#toldComplete.add(m.digest);
      void this.#announce(m.digest);
      this.#c.logger.info(
        {
          image: `${name}:${tag}`,
          version: m.version,
          digest: m.digest,
          size: m.size,
          chunks: m.chunks.length,
          newBytes: r.newBytes,
        },
        'image pushed',
      );
      return m;
    } finally {
      hold.release();
    }
  }

  /** Stores a verified manifest, indexes it, announces it and re-evaluates placement. */
  async #store(m: Manifest): Promise<boolean> {
    const res = await this.manifests.put(m);
    if (res.status !== 'stored') return false;
    this.#byDigest.set(m.digest, { name: m.name, tag: m.tag, version: m.version });
    void this.#publish({ t: 'head', n: m.name, g: m.tag, v: m.version, r: false });
    this.dispatchEvent(
      new CustomEvent('change', { detail: { name: m.name, tag: m.tag, version: m.version } }),
    );
    this.#scheduleEvaluate(0);
    return true;
  }

  /** Removes NAME:TAG everywhere (a signed tombstone); false if there was nothing to remove. */
  async remove(name: string, tag: string): Promise<boolean> {
    const t = await this.manifests.remove(name, tag, this.#c.privateKey);
    if (!t) return false;
    void this.#publish({ t: 'head', n: name, g: tag, v: t.version, r: true });
    this.#scheduleEvaluate(0);
    void this.gc().catch(() => {});
    return true;
  }

  async #localOf(m: Manifest): Promise<LocalStatus> {
    const s = await this.#servedFor(m);
    const bytes = s.index.bytesOf(indexesOf(s.bits));
    const pull = this.#pulls.get(m.digest)?.pull;
    const state = this.#stateOf(m, s);
    const p = this.#pullBackoff.get(m.digest);
    const now = Date.now();
    const paused =
      state === 'pulling' && !pull && p?.backoff.waiting(now)
        ? { reason: p.reason, retryInMs: p.backoff.until - now }
        : undefined;
    // outside a running pull, chunks were found in the store or flushed when a pull finished (a
    // stopped pull's last chunks are committed by the store within its commit delay)
    return {
      state,
      ...(paused && { paused }),
      bytes,
      chunks: s.bits.count,
      durableChunks: pull?.durableChunks ?? s.bits.count,
    };
  }

  /**
   * `pulling` while this agent should hold the image and does not yet (also between tries of its
   * pull), or while a reader's pull of it runs.
   */
  #stateOf(m: Manifest, s: Served, members = this.#c.membership.members()): LocalState {
    if (s.bits.complete) return 'complete';
    return this.#pulls.has(m.digest) || this.#placedHere(m, members) ? 'pulling' : 'not_placed';
  }

  #placedHere(m: Manifest, members = this.#c.membership.members()): boolean {
    return (
      m.creator === this.selfId || shouldHold(m, this.selfId, this.#c.membership.selfSite, members)
    );
  }

  async list(): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    for await (const m of this.manifests.list()) out.push(await this.#summary(m));
    return out.sort((a, b) => (`${a.name}:${a.tag}` < `${b.name}:${b.tag}` ? -1 : 1));
  }

  async #summary(m: Manifest): Promise<ImageSummary> {
    return {
      name: m.name,
      tag: m.tag,
      version: m.version,
      digest: m.digest,
      size: m.size,
      chunks: m.chunks.length,
      creator: m.creator,
      createdAt: m.createdAt,
      placement: m.placement,
      local: await this.#localOf(m),
    };
  }

  async status(
    name: string,
    tag: string,
  ): Promise<(ImageSummary & { sites: SiteStatus[]; versions: number[] }) | undefined> {
    const m = await this.manifests.get(name, tag);
    if (!m) return undefined;
    return {
      ...(await this.#summary(m)),
      versions: await this.manifests.versions(name, tag),
      sites: siteStatus(m, this.#c.membership.members(), this.#progressWithSelf(m)),
    };
  }

  #progressWithSelf(m: Manifest) {
    const p = new Map(this.progress.of(m.digest));
    const s = this.#served.get(m.digest);
    if (s)
      p.set(this.selfId, {
        have: s.bits.count,
        total: s.index.size,
        bytes: s.index.bytesOf(indexesOf(s.bits)),
        done: s.bits.complete,
        at: Date.now(),
      });
    return p;
  }

  /**
   * Per site: images placed there that have all their wanted copies, and images placed there. A
   * site whose members have all left counts none: it holds nothing and is not coming back (it
   * showed 0 of N complete until its members were forgotten). A dead member may come back, so a
   * site of dead members still counts what it should hold.
   */
  async sitesSummary(): Promise<Map<string, { complete: number; total: number }>> {
    const out = new Map<string, { complete: number; total: number }>();
    const members = this.#c.membership.members();
    const staying = new Set(members.filter((m) => m.state !== 'left').map((m) => m.site));
    for await (const m of this.manifests.list()) {
      for (const s of siteStatus(m, members, this.#progressWithSelf(m))) {
        if (!s.placed || !staying.has(s.site)) continue;
        const e = out.get(s.site) ?? { complete: 0, total: 0 };
        e.total++;
        if (s.wanted > 0 && s.complete.length >= s.wanted) e.complete++;
        out.set(s.site, e);
      }
    }
    return out;
  }

  // ---- content ----

  /** The image's bytes in order, pulling missing chunks from peers first in line. */
  async *content(m: Manifest, signal?: AbortSignal): AsyncGenerator<Uint8Array> {
    const s = await this.#servedFor(m);
    if (!s.bits.complete) this.#startPull(m, true);
    for (let k = 0; k < m.chunks.length; k++) {
      const i = s.index.indexOf(m.chunks[k].hash)!;
      if (!s.bits.has(i)) {
        const ahead: number[] = [];
        for (let j = k; j < m.chunks.length && ahead.length < 16; j++) {
          const x = s.index.indexOf(m.chunks[j].hash)!;
          if (!s.bits.has(x)) ahead.push(x);
        }
        this.#pulls.get(m.digest)?.pull.urgent(ahead);
        await this.#waitFor(m.digest, s.bits, i, signal);
      }
      let data: Uint8Array | undefined;
      for (;;) {
        try {
          data = await this.chunks.get(m.chunks[k].hash);
        } catch (err) {
          if (!(err instanceof ChunkCorruptError)) throw err;
          data = undefined;
        }
        if (data) break;
        // corrupt (now quarantined) or gone: fetch it again from a peer, then read on
        this.#lost(m.digest, i);
        this.#startPull(m, true);
        this.#pulls.get(m.digest)?.pull.urgent([i]);
        await this.#waitFor(m.digest, s.bits, i, signal);
      }
      yield data;
    }
  }

  #waitFor(digest: string, bits: Bitfield, i: number, signal?: AbortSignal): Promise<void> {
    if (bits.has(i)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        this.#subs.get(digest)?.delete(check);
        this.#readerFailures.get(digest)?.delete(onFailure);
        signal?.removeEventListener('abort', onAbort);
      };
      const check = () => {
        if (bits.has(i)) {
          done();
          resolve();
        }
      };
      const onAbort = () => {
        done();
        reject(signal?.reason);
      };
      // the pull that would bring the chunk failed on our own store (a full disk): no waiting
      const onFailure = (err: Error) => {
        done();
        reject(err);
      };
      let set = this.#subs.get(digest);
      if (!set) this.#subs.set(digest, (set = new Set()));
      set.add(check);
      let failures = this.#readerFailures.get(digest);
      if (!failures) this.#readerFailures.set(digest, (failures = new Set()));
      failures.add(onFailure);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Re-reads every chunk of an image from disk (each re-hashed) and checks the whole digest.
   * Returns false if anything is missing or wrong (bad chunks are quarantined and fetched again).
   */
  async verify(
    m: Manifest,
    signal?: AbortSignal,
  ): Promise<{ ok: boolean; bytes: number; error?: string }> {
    let bytes = 0;
    try {
      for await (const b of exportImage(m, this.chunks, { signal })) bytes += b.length;
      return { ok: true, bytes };
    } catch (err) {
      if (err instanceof ChunkCorruptError) this.#scheduleEvaluate(0);
      return { ok: false, bytes, error: (err as Error).message };
    }
  }

  // ---- placement and pulls ----

  #scheduleEvaluate(delay = 500): void {
    if (!this.#started) return;
    clearTimeout(this.#evalTimer);
    this.#evalTimer = setTimeout(() => {
      this.#evaluating = this.#evaluating
        .then(() => this.#evaluateAll())
        .catch((err: Error) =>
          this.#c.logger.warn({ err: err.message }, 'image placement evaluation failed'),
        );
    }, delay);
    this.#evalTimer.unref?.();
  }

  async #evaluateAll(): Promise<void> {
    if (!this.#started) return;
    const members = this.#c.membership.members();
    const counts: Record<LocalState, number> = { complete: 0, pulling: 0, not_placed: 0 };
    const current = new Set<string>();
    for await (const m of this.manifests.list()) {
      current.add(m.digest);
      const s = await this.#servedFor(m);
      const placed = this.#placedHere(m, members);
      if (!s.bits.complete && placed) this.#startPull(m, false);
      // complete with no pull (no chunks, or all of them held already for another image): say so
      // now rather than at the next holder round
      if (s.bits.complete && placed && !this.#toldComplete.has(m.digest)) {
        this.#toldComplete.add(m.digest);
        void this.#announce(m.digest);
      }
      counts[this.#stateOf(m, s, members)]++;
    }
    // pulls of images that are no longer current (replaced or removed), unless someone reads them
    for (const [digest, p] of this.#pulls)
      if (!current.has(digest) && !p.transient) p.controller.abort();
    this.#c.metrics?.images(counts);
  }

  async #servedFor(m: Manifest): Promise<Served> {
    let s = this.#served.get(m.digest);
    if (s) return s;
    const index = new ImageIndex(m);
    const present = await this.chunks.hasMany(index.hashes);
    const bits = new Bitfield(index.size);
    present.forEach((p, i) => p && bits.set(i));
    s = this.#served.get(m.digest) ?? { manifest: m, index, bits };
    this.#served.set(m.digest, s);
    return s;
  }

  /** Throws InsufficientSpaceError when the rest of the image would not fit (see the reserve). */
  async #checkSpace(s: Served): Promise<void> {
    let need = PULL_FREE_SPACE_RESERVE_BYTES;
    for (let i = 0; i < s.index.size; i++) if (!s.bits.has(i)) need += s.index.sizes[i];
    const free = await this.chunks.freeBytes();
    if (free !== undefined && free < need) throw new InsufficientSpaceError(need, free);
  }

  #startPull(m: Manifest, transient: boolean): void {
    const existing = this.#pulls.get(m.digest);
    if (existing) {
      if (!transient) existing.transient = false;
      return;
    }
    const s = this.#served.get(m.digest);
    if (!s) return;
    if (!transient && this.#pullBackoff.get(m.digest)?.backoff.waiting(Date.now())) return;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, this.#controller.signal]);
    const hold = this.pins.hold(s.index.hashes);
    const pull = new Pull(
      s.index,
      s.bits,
      {
        chunks: this.chunks,
        sources: () => this.#sources(m),
        open: (peer, sig) =>
          this.#c.node.dialProtocol(peerIdFromString(peer), CHUNKS_PROTOCOL, { signal: sig }),
        gotChunk: (i) => this.#gotChunk(m.digest, i),
        received: (peer, n) => this.#c.metrics?.bytes('in', this.#scope(peer), n),
        spared: (peer) => peer === m.creator && this.#scope(peer) === 'wan',
        badSource: (peer) => {
          this.#c.metrics?.badChunk();
          this.#c.logger.warn(
            { peer, image: `${m.name}:${m.tag}` },
            'a source served a chunk that does not match its hash; dropped',
          );
        },
        log: this.#c.logger,
      },
      { ...DEFAULT_PULL_OPTIONS, ...this.#o.pull },
    );
    const t0 = Date.now();
    this.#c.logger.info(
      { image: `${m.name}:${m.tag}`, version: m.version, have: s.bits.count, of: s.index.size },
      'pull started',
    );
    void this.#announce(m.digest);
    const entry: Pulling = { pull, controller, hold, transient, done: Promise.resolve() };
    entry.done = this.#checkSpace(s)
      .then(() => pull.run(signal))
      .then(async () => {
        this.#c.logger.info(
          {
            image: `${m.name}:${m.tag}`,
            version: m.version,
            ms: Date.now() - t0,
            bytes: pull.bytesReceived,
          },
          'pull complete',
        );
        this.#toldComplete.add(m.digest);
        await this.#announce(m.digest);
        void this.#provide(m.digest);
        this.dispatchEvent(
          new CustomEvent('change', { detail: { name: m.name, tag: m.tag, version: m.version } }),
        );
      })
      .then(() => void this.#pullBackoff.delete(m.digest))
      .catch((err: Error) => {
        if (signal.aborted) return;
        if (isOutOfSpace(err) || err instanceof ChunkStoreFailedError) {
          let p = this.#pullBackoff.get(m.digest);
          if (!p)
            this.#pullBackoff.set(
              m.digest,
              (p = {
                backoff: new Backoff(PULL_LOCAL_BACKOFF_MS, PULL_LOCAL_BACKOFF_MAX_MS),
                reason: '',
              }),
            );
          const ms = p.backoff.fail(Date.now());
          p.reason = err.message;
          for (const fail of [...(this.#readerFailures.get(m.digest) ?? [])]) fail(err);
          this.#c.logger.warn(
            { image: `${m.name}:${m.tag}`, err: err.message, retryInMs: ms },
            isOutOfSpace(err)
              ? 'pull paused: no space left on the device holding the data directory'
              : 'pull paused: the chunk store failed; it is being reopened',
          );
          return;
        }
        this.#c.logger.warn(
          { image: `${m.name}:${m.tag}`, err: err.message },
          'pull failed; will retry',
        );
      })
      .finally(() => {
        hold.release();
        this.#pulls.delete(m.digest);
        const until = this.#pullBackoff.get(m.digest)?.backoff.until ?? 0;
        if (!this.#started || s.bits.complete) this.#scheduleEvaluate(0);
        else this.#scheduleEvaluate(Math.max(2000, until - Date.now()));
      });
    this.#pulls.set(m.digest, entry);
  }

  /** Candidate sources for an image, best first: same site, then by estimated RTT. */
  #sources(m: Manifest): string[] {
    const ms = this.#c.membership;
    const cands = new Set<string>();
    for (const [peer, p] of this.progress.of(m.digest)) if (p.have > 0) cands.add(peer);
    cands.add(m.creator);
    for (const p of this.#dhtSources.get(m.digest) ?? []) cands.add(p);
    cands.delete(this.selfId);
    const live = [...cands].filter((p) => ms.state(p) === 'alive' || ms.state(p) === 'suspect');
    // No holder known in our own site: ask the DHT (at most once per PROVIDER_LOOKUP_CACHE_MS).
    // Holders say what they hold every IMAGE_HOLDER_ANNOUNCE_MS, so an agent that joined a site
    // took the whole image across the WAN from the origin meanwhile, past site-mates holding it.
    if (!live.some((p) => ms.site(p) === ms.selfSite)) void this.#findProviders(m.digest);
    const rank = (p: string) => [ms.site(p) === ms.selfSite ? 0 : 1, ms.rtt(p) ?? 1e9] as const;
    return live.sort((a, b) => {
      const [sa, ra] = rank(a);
      const [sb, rb] = rank(b);
      return sa - sb || ra - rb;
    });
  }

  async #findProviders(digest: string): Promise<void> {
    if (this.#dhtSources.has(digest)) return;
    const set = new Set<string>();
    this.#dhtSources.set(digest, set);
    try {
      const signal = AbortSignal.any([this.#controller.signal, AbortSignal.timeout(5000)]);
      for await (const ev of this.#c.node.services.dht.findProviders(await digestKey(digest), {
        signal,
      })) {
        if (ev.name === 'PROVIDER') for (const p of ev.providers) set.add(p.id.toString());
      }
    } catch {
      // no DHT answer: gossip will tell us
    }
    setTimeout(() => this.#dhtSources.delete(digest), PROVIDER_LOOKUP_CACHE_MS).unref();
  }

  async #provide(digest: string): Promise<void> {
    try {
      const signal = AbortSignal.any([this.#controller.signal, AbortSignal.timeout(30_000)]);
      for await (const _ of this.#c.node.services.dht.provide(await digestKey(digest), { signal }))
        void _;
    } catch {
      // best effort
    }
  }

  #gotChunk(digest: string, i: number): void {
    let list = this.#pendingHave.get(digest);
    if (!list) this.#pendingHave.set(digest, (list = []));
    list.push(i);
    this.#haveTimer ??= setTimeout(() => {
      this.#haveTimer = undefined;
      for (const [d, idx] of this.#pendingHave)
        for (const fn of [...(this.#subs.get(d) ?? [])]) fn(idx);
      this.#pendingHave.clear();
    }, HAVE_BATCH_MS);
  }

  /** A chunk of an image was found corrupt (and quarantined): want it again. */
  #lost(digest: string, i: number): void {
    const s = this.#served.get(digest);
    if (!s) return;
    const pull = this.#pulls.get(digest);
    if (pull) pull.pull.lost(i);
    else s.bits.clear(i);
    this.#c.metrics?.badChunk();
    this.#scheduleEvaluate(0);
  }

  /** Serving a chunk failed to read it (not corruption): warn, at most once a READ_FAILURE_LOG_MS. */
  #readFailed(err: Error): void {
    const f = this.#readFailures;
    f.count++;
    const now = Date.now();
    if (now - f.loggedAt < READ_FAILURE_LOG_MS) return;
    this.#c.logger.warn(
      { err: err.message, failures: f.count },
      'chunk reads failing while serving: answered as missing (check the disk holding the data directory)',
    );
    f.count = 0;
    f.loggedAt = now;
  }

  #scope(peer: string): 'site' | 'wan' {
    return this.#c.membership.site(peer) === this.#c.membership.selfSite ? 'site' : 'wan';
  }

  // ---- gossip and anti-entropy ----

  async #publish(msg: ImagesGossip): Promise<void> {
    try {
      await this.#broadcast.publish(encodeGossip(msg));
    } catch {
      // no peers yet
    }
  }

  async #announce(digest: string): Promise<void> {
    const s = this.#served.get(digest);
    // nothing held, nothing to say (an empty image is held complete with no chunks)
    if (!s || (s.bits.count === 0 && !s.bits.complete)) return;
    await this.#publish({
      t: 'progress',
      d: digest,
      have: s.bits.count,
      total: s.index.size,
      bytes: s.index.bytesOf(indexesOf(s.bits)),
      done: s.bits.complete,
    });
  }

  async #announcePulling(): Promise<void> {
    for (const d of this.#pulls.keys()) await this.#announce(d);
  }

  async #announceHeld(): Promise<void> {
    for (const [d, s] of this.#served)
      if (s.bits.complete && this.#byDigest.has(d)) await this.#announce(d);
  }

  async #gossip(from: string, data: Uint8Array): Promise<void> {
    let msg: ImagesGossip;
    try {
      msg = decodeGossip(data);
    } catch {
      this.#c.metrics?.dropped('images_gossip');
      return;
    }
    if (msg.t === 'progress') {
      this.progress.set(msg.d, from, {
        have: msg.have,
        total: msg.total,
        bytes: msg.bytes,
        done: msg.done,
        at: Date.now(),
      });
      return;
    }
    const head = (await this.manifests.heads()).find((h) => h.name === msg.n && h.tag === msg.g);
    if (head && headRank(head.version, head.removed) >= headRank(msg.v, msg.r)) return;
    // every agent that stores a version announces it: fetch it from the first announcer only
    // (a manifest of a 256 MiB image is ~0.5 MB; anti-entropy retries if this fetch fails)
    const ref = `${msg.n}:${msg.g}:${headRank(msg.v, msg.r)}`;
    if (this.#fetching.has(ref)) return;
    this.#fetching.add(ref);
    try {
      await this.#fetchingManifests(() =>
        fetchRecords(
          () => this.#open(from),
          [[msg.n, msg.g, msg.v]],
          this.#syncDeps(from),
          AbortSignal.any([this.#controller.signal, AbortSignal.timeout(60_000)]),
        ),
      );
    } catch (err) {
      this.#c.logger.debug(
        { from, err: (err as Error).message },
        'could not fetch an announced manifest (anti-entropy will)',
      );
    } finally {
      this.#fetching.delete(ref);
    }
  }

  #open(peer: string): Promise<Stream> {
    return this.#c.node.dialProtocol(peerIdFromString(peer), IMAGES_PROTOCOL, {
      signal: AbortSignal.any([this.#controller.signal, AbortSignal.timeout(10_000)]),
    });
  }

  /** Manifest exchange with `peer`: the record bytes count as replication bytes too. */
  #syncDeps(peer?: string): SyncDeps {
    const scope = peer ? this.#scope(peer) : 'site';
    return {
      heads: () => this.manifests.heads(),
      record: async (name, tag, version) => {
        const t = await this.manifests.tombstone(name, tag);
        if (t && t.version >= version) return encodeTombstone(t);
        const m = await this.manifests.get(name, tag, version);
        const out = m ? encodeManifest(m) : undefined;
        if (out) this.#c.metrics?.bytes('out', scope, out.length);
        return out;
      },
      accept: async (bytes) => {
        this.#c.metrics?.bytes('in', scope, bytes.length);
        let rec;
        try {
          rec = decodeImageRecord(bytes);
          await verifyImageRecord(rec);
        } catch {
          this.#c.metrics?.dropped('bad_manifest');
          return;
        }
        if (rec.type === 'manifest') await this.#store(rec.manifest);
        else {
          const r = await this.manifests.applyTombstone(rec.tombstone, { verify: false });
          if (r.status === 'applied') {
            this.#scheduleEvaluate(0);
            void this.#publish({
              t: 'head',
              n: rec.tombstone.name,
              g: rec.tombstone.tag,
              v: rec.tombstone.version,
              r: true,
            });
          }
        }
      },
    };
  }

  /** One manifest anti-entropy round with a random member. */
  async syncOnce(peer?: string): Promise<number> {
    const target = peer ?? this.#c.membership.randomPeer();
    if (!target || !this.#started) return 0;
    return this.#fetchingManifests(() =>
      syncImages(
        () => this.#open(target),
        this.#syncDeps(target),
        AbortSignal.any([this.#controller.signal, AbortSignal.timeout(60_000)]),
      ),
    );
  }

  /**
   * Runs a manifest fetch (resolving with the records fetched) unless they are paused, when it is
   * 0: storing a fetched manifest that fails for want of space pauses them, since the next round
   * would fetch the same.
   */
  async #fetchingManifests(fetch: () => Promise<number>): Promise<number> {
    const backoff = this.#manifestBackoff;
    if (backoff.waiting(Date.now())) return 0;
    try {
      const r = await fetch();
      if (backoff.failures > 0) this.#c.logger.info({}, 'manifest fetches resumed');
      backoff.reset();
      return r;
    } catch (err) {
      if (isOutOfSpace(err)) {
        const ms = backoff.fail(Date.now());
        if (backoff.failures === 1)
          this.#c.logger.warn(
            { err: (err as Error).message, retryInMs: ms },
            'manifest fetches paused: no space left on the device holding the data directory',
          );
      }
      throw err;
    }
  }

  async #serveImages(stream: Stream, peer: string): Promise<void> {
    try {
      await serveImages(
        stream,
        this.#syncDeps(peer),
        AbortSignal.any([this.#controller.signal, AbortSignal.timeout(60_000)]),
      );
    } catch (err) {
      this.#c.metrics?.dropped('images_wire');
      stream.abort(err as Error);
    }
  }

  async #serveChunks(stream: Stream, peer: string): Promise<void> {
    await serveChunks(
      stream,
      peer,
      {
        chunks: this.chunks,
        image: async (digest) => {
          const ref = this.#byDigest.get(digest);
          if (!ref) return undefined;
          const m =
            this.#served.get(digest)?.manifest ??
            (await this.manifests.get(ref.name, ref.tag, ref.version));
          return m ? this.#servedFor(m) : undefined;
        },
        buckets: (p) => (this.#scope(p) === 'wan' ? [this.#upload, this.#wan] : [this.#upload]),
        lost: (digest, i) => this.#lost(digest, i),
        subscribe: (digest, onHave) => {
          let set = this.#subs.get(digest);
          if (!set) this.#subs.set(digest, (set = new Set()));
          set.add(onHave);
          return () => set.delete(onHave);
        },
        sent: (p, n) => this.#c.metrics?.bytes('out', this.#scope(p), n),
        badInput: (reason) => this.#c.metrics?.dropped(reason),
        readFailed: (err) => this.#readFailed(err),
      },
      this.#controller.signal,
    );
  }

  /** Deletes chunks no kept manifest references (pinned chunks of running pulls are kept). */
  async gc(): Promise<number> {
    if (!this.#started) return 0;
    const res = await collectGarbage(this.chunks, this.manifests, {
      pins: this.pins,
      signal: this.#controller.signal,
    });
    // bitfields of images whose chunks went are rebuilt on next use
    if (res.removed > 0)
      for (const [d, s] of this.#served)
        if (
          !this.#pulls.has(d) &&
          !(await this.manifests.get(s.manifest.name, s.manifest.tag, s.manifest.version))
        )
          this.#served.delete(d);
    return res.removed;
  }
}

/** A tombstone at version V removes every version up to V, so it outranks the manifest of V. */
function headRank(version: number, removed: boolean): number {
  return version * 2 + (removed ? 1 : 0);
}

function* indexesOf(bits: Bitfield): Iterable<number> {
  for (let i = 0; i < bits.size; i++) if (bits.has(i)) yield i;
}
