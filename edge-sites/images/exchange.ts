// What agents tell each other about images, apart from chunks: the images gossip topic (a head
// announcement when a version is stored or removed, progress announcements of who holds how much)
// and manifest anti-entropy over /edgeswarm/images/1.0.0 (a round every IMAGE_SYNC_INTERVAL_MS
// with a random member). An announced version is fetched from its first announcer only.
import type { Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { Backoff, Broadcast, type BroadcastComponents } from '../../membership/index.js';
import { isOutOfSpace } from '../../storage/errors.js';
import {
  decodeImageRecord,
  encodeManifest,
  encodeTombstone,
  verifyImageRecord,
  type Manifest,
  type ManifestStore,
} from '../../storage/images/index.js';
import { fetchRecords, serveImages, syncImages, type SyncDeps } from './manifest-sync.js';
import {
  MANIFEST_LOCAL_BACKOFF_MAX_MS,
  MANIFEST_LOCAL_BACKOFF_MS,
  type ImageComponents,
} from './options.js';
import type { ProgressTable } from './status.js';
import {
  decodeGossip,
  encodeGossip,
  IMAGES_PROTOCOL,
  IMAGES_TOPIC,
  type ImagesGossip,
} from './wire.js';

/** Time to open a stream for a manifest exchange (ms). */
const OPEN_TIMEOUT_MS = 10_000;
/** Time one manifest exchange may take (ms). */
const EXCHANGE_TIMEOUT_MS = 60_000;

export interface ExchangeDeps {
  pubsub: BroadcastComponents['pubsub'];
  membership: BroadcastComponents['membership'] & { randomPeer(): string | undefined };
  dial: ImageComponents['node']['dialProtocol'];
  manifests(): ManifestStore;
  /** Stores a verified manifest from a peer; false if it was not new. */
  store(m: Manifest): Promise<boolean>;
  /** A tombstone from a peer removed an image here. */
  removed(): void;
  progress: ProgressTable;
  /** Whether a peer is in our own site or across the WAN (for the byte counters). */
  scope(peer: string): 'site' | 'wan';
  logger: ImageComponents['logger'];
  metrics?: Pick<NonNullable<ImageComponents['metrics']>, 'bytes' | 'dropped'>;
  signal: AbortSignal;
}

export class ImageExchange {
  readonly #d: ExchangeDeps;
  readonly #broadcast: Broadcast;
  /** Announced versions being fetched now (name:tag:rank). */
  readonly #fetching = new Set<string>();
  readonly #backoff = new Backoff(MANIFEST_LOCAL_BACKOFF_MS, MANIFEST_LOCAL_BACKOFF_MAX_MS);

  constructor(deps: ExchangeDeps) {
    this.#d = deps;
    this.#broadcast = new Broadcast(
      { pubsub: deps.pubsub, membership: deps.membership },
      IMAGES_TOPIC,
      // only signed messages: a message's publisher is who it speaks for
      (m) => void (m.from ? this.#gossip(m.from, m.data).catch(() => {}) : undefined),
    );
  }

  start(): void {
    this.#broadcast.start();
  }

  stop(): void {
    this.#broadcast.stop();
  }

  async publish(msg: ImagesGossip): Promise<void> {
    try {
      await this.#broadcast.publish(encodeGossip(msg));
    } catch {
      // no peers yet
    }
  }

  /** One manifest anti-entropy round with `peer` (a random member if none); records fetched. */
  async syncOnce(peer?: string): Promise<number> {
    const target = peer ?? this.#d.membership.randomPeer();
    if (!target) return 0;
    return this.#fetchingManifests(() =>
      syncImages(() => this.#open(target), this.#syncDeps(target), this.#exchangeSignal()),
    );
  }

  /** Answers a peer's request on the images protocol. */
  async serve(stream: Stream, peer: string): Promise<void> {
    try {
      await serveImages(stream, this.#syncDeps(peer), this.#exchangeSignal());
    } catch (err) {
      this.#d.metrics?.dropped('images_wire');
      stream.abort(err as Error);
    }
  }

  async #gossip(from: string, data: Uint8Array): Promise<void> {
    let msg: ImagesGossip;
    try {
      msg = decodeGossip(data);
    } catch {
      this.#d.metrics?.dropped('images_gossip');
      return;
    }
    if (msg.t === 'progress') {
      this.#d.progress.set(msg.d, from, {
        have: msg.have,
        total: msg.total,
        bytes: msg.bytes,
        done: msg.done,
        at: Date.now(),
      });
      return;
    }
    // a version far above the clock would be refused once fetched: do not fetch it at all
    if (msg.v > this.#d.manifests().versionLimit()) {
      this.#d.metrics?.dropped('version_ahead');
      return;
    }
    const heads = await this.#d.manifests().heads();
    const head = heads.find((h) => h.name === msg.n && h.tag === msg.g);
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
          this.#exchangeSignal(),
        ),
      );
    } catch (err) {
      this.#d.logger.debug(
        { from, err: (err as Error).message },
        'could not fetch an announced manifest (anti-entropy will)',
      );
    } finally {
      this.#fetching.delete(ref);
    }
  }

  #exchangeSignal(): AbortSignal {
    return AbortSignal.any([this.#d.signal, AbortSignal.timeout(EXCHANGE_TIMEOUT_MS)]);
  }

  #open(peer: string): Promise<Stream> {
    return this.#d.dial(peerIdFromString(peer), IMAGES_PROTOCOL, {
      signal: AbortSignal.any([this.#d.signal, AbortSignal.timeout(OPEN_TIMEOUT_MS)]),
    });
  }

  /** Manifest exchange with `peer`: the record bytes count as replication bytes too. */
  #syncDeps(peer: string): SyncDeps {
    const scope = this.#d.scope(peer);
    const metrics = this.#d.metrics;
    return {
      heads: () => this.#d.manifests().heads(),
      record: async (name, tag, version) => {
        const manifests = this.#d.manifests();
        const t = await manifests.tombstone(name, tag);
        if (t && t.version >= version) return encodeTombstone(t);
        const m = await manifests.get(name, tag, version);
        const out = m ? encodeManifest(m) : undefined;
        if (out) metrics?.bytes('out', scope, out.length);
        return out;
      },
      accept: async (bytes) => {
        metrics?.bytes('in', scope, bytes.length);
        let rec;
        try {
          rec = decodeImageRecord(bytes);
          await verifyImageRecord(rec);
        } catch {
          metrics?.dropped('bad_manifest');
          return;
        }
        // a version above the bound would make NAME:TAG impossible to push again (manifest-store.ts)
        const version = rec.type === 'manifest' ? rec.manifest.version : rec.tombstone.version;
        if (version > this.#d.manifests().versionLimit()) {
          metrics?.dropped('version_ahead');
          return;
        }
        if (rec.type === 'manifest') {
          await this.#d.store(rec.manifest);
          return;
        }
        const { name, tag } = rec.tombstone;
        const r = await this.#d.manifests().applyTombstone(rec.tombstone, { verify: false });
        if (r.status !== 'applied') return;
        this.#d.removed();
        void this.publish({ t: 'head', n: name, g: tag, v: version, r: true });
      },
    };
  }

  /**
   * Runs a manifest fetch (resolving with the records fetched) unless they are paused, when it is
   * 0: storing a fetched manifest that fails for want of space pauses them, since the next round
   * would fetch the same.
   */
  async #fetchingManifests(fetch: () => Promise<number>): Promise<number> {
    const backoff = this.#backoff;
    if (backoff.waiting(Date.now())) return 0;
    try {
      const r = await fetch();
      if (backoff.failures > 0) this.#d.logger.info({}, 'manifest fetches resumed');
      backoff.reset();
      return r;
    } catch (err) {
      if (isOutOfSpace(err)) {
        const ms = backoff.fail(Date.now());
        if (backoff.failures === 1)
          this.#d.logger.warn(
            { err: (err as Error).message, retryInMs: ms },
            'manifest fetches paused: no space left on the device holding the data directory',
          );
      }
      throw err;
    }
  }
}

/** A tombstone at version V removes every version up to V, so it outranks the manifest of V. */
function headRank(version: number, removed: boolean): number {
  return version * 2 + (removed ? 1 : 0);
}
