// Master-less image replication. Any agent can push an image; its signed manifest spreads by
// gossip (a small head announcement, then the manifest fetched from the announcer) and by
// anti-entropy (exchange.ts); every agent works out from the manifest's placement and the
// membership whether it must hold the image, and if so pulls what it lacks (pulls.ts) from every
// agent that has pieces of it (puller.ts), itself becoming a source for the others as chunks
// arrive (server.ts).
import type { Stream } from '@libp2p/interface';
import { ChunkStore, KeyedLock } from '../../storage/chunks/index.js';
import { Backoff, LogThrottle } from '../../membership/index.js';
import { ChunkCorruptError } from '../../storage/errors.js';
import {
  collectGarbage,
  exportImage,
  importImage,
  ManifestStore,
  PinSet,
  signManifest,
  type Manifest,
} from '../../storage/images/index.js';
import { shouldHold } from '../placement.js';
import { scopeOf } from '../sources.js';
import { Bitfield } from './bitfield.js';
import { ChunkEvents } from './chunk-events.js';
import { ImageExchange } from './exchange.js';
import { ImageIndex } from './image-index.js';
import {
  CHUNK_STORE_REOPEN_MAX_MS,
  CHUNK_STORE_REOPEN_MS,
  IMAGE_GC_INTERVAL_MS,
  IMAGE_HOLDER_ANNOUNCE_MS,
  IMAGE_PROGRESS_INTERVAL_MS,
  IMAGE_SYNC_INTERVAL_MS,
  IMAGE_UP_SYNC_GAP_MS,
  READ_FAILURE_LOG_MS,
  type ImageComponents,
  type ImageOptions,
  type ImageSummary,
  type LocalState,
  type LocalStatus,
} from './options.js';
import { ImageProviders } from './providers.js';
import { ImagePulls, type Served } from './pulls.js';
import { serveChunks } from './server.js';
import { ProgressTable, siteStatus, type SiteStatus } from './status.js';
import { TokenBucket } from './token-bucket.js';
import { CHUNKS_PROTOCOL, IMAGES_PROTOCOL } from './wire.js';

export class ImageService extends EventTarget {
  readonly #c: ImageComponents;
  readonly #o: ImageOptions;
  chunks!: ChunkStore;
  manifests!: ManifestStore;
  readonly pins = new PinSet();
  readonly progress = new ProgressTable();
  readonly #served = new Map<string, Served>();
  readonly #events = new ChunkEvents();
  readonly #exchange: ImageExchange;
  readonly #pulls: ImagePulls;
  readonly #providers: ImageProviders;
  readonly #byDigest = new Map<string, { name: string; tag: string; version: number }>();
  readonly #reopenBackoff = new Backoff(CHUNK_STORE_REOPEN_MS, CHUNK_STORE_REOPEN_MAX_MS);
  #reopenTimer: NodeJS.Timeout | undefined;
  /** Version assignment and store of local pushes, one at a time per NAME:TAG. */
  readonly #pushLock = new KeyedLock();
  #upload!: TokenBucket;
  #wan!: TokenBucket;
  #started = false;
  readonly #controller = new AbortController();
  readonly #timers: NodeJS.Timeout[] = [];
  #evaluating: Promise<void> = Promise.resolve();
  #evalTimer: NodeJS.Timeout | undefined;
  /** Chunk reads that failed while serving (EIO): warned about at most once a READ_FAILURE_LOG_MS. */
  readonly #readFailures = new LogThrottle(READ_FAILURE_LOG_MS);
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

  constructor(components: ImageComponents, options: ImageOptions = {}) {
    super();
    this.#c = components;
    this.#o = options;
    const node = components.node;
    // looked up at each dial, as before: a test may wrap the node's dialProtocol after start
    const dial: ImageComponents['node']['dialProtocol'] = (...args) => node.dialProtocol(...args);
    const scope = (peer: string) => this.#scope(peer);
    this.#exchange = new ImageExchange({
      pubsub: node.services.pubsub,
      membership: components.membership,
      dial,
      manifests: () => this.manifests,
      store: (m) => this.#store(m),
      removed: () => this.#scheduleEvaluate(0),
      progress: this.progress,
      scope,
      logger: components.logger,
      metrics: components.metrics,
      signal: this.#controller.signal,
    });
    this.#providers = new ImageProviders(node.services.dht, this.#controller.signal);
    this.#pulls = new ImagePulls({
      chunks: () => this.chunks,
      pins: this.pins,
      dial,
      membership: components.membership,
      progress: this.progress,
      providers: this.#providers,
      events: this.#events,
      scope,
      logger: components.logger,
      metrics: components.metrics,
      options: options.pull,
      signal: this.#controller.signal,
      started: (m) => void this.#announce(m.digest),
      completed: async (m) => {
        this.#toldComplete.add(m.digest);
        await this.#announce(m.digest);
        void this.#providers.provide(m.digest);
        this.dispatchEvent(
          new CustomEvent('change', { detail: { name: m.name, tag: m.tag, version: m.version } }),
        );
      },
      ended: (delayMs) => this.#scheduleEvaluate(delayMs),
    });
  }

  get selfId(): string {
    return this.#c.membership.selfId;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.chunks = await this.#openChunks();
    this.manifests = new ManifestStore(this.#c.store, { keepVersions: this.#o.keepVersions });
    const purged = await this.manifests.purgeAllAhead();
    if (purged > 0)
      this.#c.logger.warn(
        { purged },
        'deleted manifests or tombstones with versions far in the future (forged, see docs/security.md)',
      );
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
      (stream, conn) => void this.#exchange.serve(stream, conn.remotePeer.toString()),
      { maxInboundStreams: 32, maxOutboundStreams: 32 },
    );
    this.#exchange.start();
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
    await this.#pulls.abortAll();
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
    this.#pulls.resume();
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
    this.#events.stop();
    const node = this.#c.node;
    this.#c.membership.removeEventListener('change', this.#onMembers);
    this.#exchange.stop();
    await this.#pulls.abortAll();
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
    void this.#exchange.publish({ t: 'head', n: m.name, g: m.tag, v: m.version, r: false });
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
    void this.#exchange.publish({ t: 'head', n: name, g: tag, v: t.version, r: true });
    this.#scheduleEvaluate(0);
    void this.gc().catch(() => {});
    return true;
  }

  async #localOf(m: Manifest): Promise<LocalStatus> {
    const s = await this.#servedFor(m);
    const bytes = s.index.bytesOf(indexesOf(s.bits));
    const pull = this.#pulls.get(m.digest);
    const state = this.#stateOf(m, s);
    const paused = state === 'pulling' ? this.#pulls.paused(m.digest) : undefined;
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
    return this.#pulls.get(m.digest) || this.#placedHere(m, members) ? 'pulling' : 'not_placed';
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
    if (!s.bits.complete) this.#startReading(m);
    for (let k = 0; k < m.chunks.length; k++) {
      const i = s.index.indexOf(m.chunks[k].hash)!;
      if (!s.bits.has(i)) {
        const ahead: number[] = [];
        for (let j = k; j < m.chunks.length && ahead.length < 16; j++) {
          const x = s.index.indexOf(m.chunks[j].hash)!;
          if (!s.bits.has(x)) ahead.push(x);
        }
        this.#pulls.get(m.digest)?.urgent(ahead);
        await this.#events.waitFor(m.digest, s.bits, i, signal);
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
        this.#startReading(m);
        this.#pulls.get(m.digest)?.urgent([i]);
        await this.#events.waitFor(m.digest, s.bits, i, signal);
      }
      yield data;
    }
  }

  /**
   * Starts a pull of `m` for a reader, on the image's current bitfield: after a reopen of the
   * chunk store a reader may hold one that no longer counts, and none is started then.
   */
  #startReading(m: Manifest): void {
    const s = this.#served.get(m.digest);
    if (s) this.#pulls.start(s, true);
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

  // ---- placement ----

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
      if (!s.bits.complete && placed) this.#pulls.start(s, false);
      // complete with no pull (no chunks, or all of them held already for another image): say so
      // now rather than at the next holder round
      if (s.bits.complete && placed && !this.#toldComplete.has(m.digest)) {
        this.#toldComplete.add(m.digest);
        void this.#announce(m.digest);
      }
      counts[this.#stateOf(m, s, members)]++;
    }
    // pulls of images that are no longer current (replaced or removed), unless someone reads them
    this.#pulls.abortStale(current);
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

  /** A chunk of an image was found corrupt (and quarantined): want it again. */
  #lost(digest: string, i: number): void {
    const s = this.#served.get(digest);
    if (!s) return;
    const pull = this.#pulls.get(digest);
    if (pull) pull.lost(i);
    else s.bits.clear(i);
    this.#c.metrics?.badChunk();
    this.#scheduleEvaluate(0);
  }

  #scope(peer: string): 'site' | 'wan' {
    return scopeOf(this.#c.membership, peer);
  }

  // ---- announcements and anti-entropy ----

  async #announce(digest: string): Promise<void> {
    const s = this.#served.get(digest);
    // nothing held, nothing to say (an empty image is held complete with no chunks)
    if (!s || (s.bits.count === 0 && !s.bits.complete)) return;
    await this.#exchange.publish({
      t: 'progress',
      d: digest,
      have: s.bits.count,
      total: s.index.size,
      bytes: s.index.bytesOf(indexesOf(s.bits)),
      done: s.bits.complete,
    });
  }

  async #announcePulling(): Promise<void> {
    for (const d of this.#pulls.digests()) await this.#announce(d);
  }

  async #announceHeld(): Promise<void> {
    for (const [d, s] of this.#served)
      if (s.bits.complete && this.#byDigest.has(d)) await this.#announce(d);
  }

  /** One manifest anti-entropy round with `peer` (a random member if none); records fetched. */
  async syncOnce(peer?: string): Promise<number> {
    if (!this.#started) return 0;
    return this.#exchange.syncOnce(peer);
  }

  // ---- serving chunks, garbage collection ----

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
        subscribe: (digest, onHave) => this.#events.subscribe(digest, onHave),
        sent: (p, n) => this.#c.metrics?.bytes('out', this.#scope(p), n),
        badInput: (reason) => this.#c.metrics?.dropped(reason),
        readFailed: (err) => this.#readFailed(err),
      },
      this.#controller.signal,
    );
  }

  /** Serving a chunk failed to read it (not corruption): warn, at most once a READ_FAILURE_LOG_MS. */
  #readFailed(err: Error): void {
    const failures = this.#readFailures.hit();
    if (failures === undefined) return;
    this.#c.logger.warn(
      { err: err.message, failures },
      'chunk reads failing while serving: answered as missing (check the disk holding the data directory)',
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
          !this.#pulls.get(d) &&
          !(await this.manifests.get(s.manifest.name, s.manifest.tag, s.manifest.version))
        )
          this.#served.delete(d);
    return res.removed;
  }
}

function* indexesOf(bits: Bitfield): Iterable<number> {
  for (let i = 0; i < bits.size; i++) if (bits.has(i)) yield i;
}
