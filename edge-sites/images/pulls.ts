// The pulls running on this agent, one per image: started when placement says the image belongs
// here (or a reader wants its bytes), each with the chunks it still needs pinned against garbage
// collection; a pull that fails on this agent's own store (a full disk) is paused with a doubling
// backoff, and one that fails otherwise (sources gone) is tried again at the next evaluation.
import { peerIdFromString } from '@libp2p/peer-id';
import { Backoff } from '../../membership/index.js';
import type { ChunkStore } from '../../storage/chunks/index.js';
import {
  ChunkStoreFailedError,
  InsufficientSpaceError,
  isOutOfSpace,
} from '../../storage/errors.js';
import type { Manifest, PinHold, PinSet } from '../../storage/images/index.js';
import { inOwnSite, isSpared, rankSources } from '../sources.js';
import type { ChunkEvents } from './chunk-events.js';
import {
  PULL_FREE_SPACE_RESERVE_BYTES,
  PULL_LOCAL_BACKOFF_MAX_MS,
  PULL_LOCAL_BACKOFF_MS,
  type ImageComponents,
  type ImageMembership,
} from './options.js';
import type { ImageProviders } from './providers.js';
import { DEFAULT_PULL_OPTIONS, Pull, type PullOptions } from './puller.js';
import type { ServedImage } from './server.js';
import type { ProgressTable } from './status.js';
import { CHUNKS_PROTOCOL } from './wire.js';

/** An image this agent holds some or all of (or pulls), with its bitfield. */
export interface Served extends ServedImage {
  manifest: Manifest;
}

interface Pulling {
  pull: Pull;
  done: Promise<void>;
  controller: AbortController;
  hold: PinHold;
  transient: boolean;
}

export interface PullsDeps {
  chunks(): ChunkStore;
  pins: PinSet;
  dial: ImageComponents['node']['dialProtocol'];
  membership: ImageMembership;
  progress: ProgressTable;
  providers: ImageProviders;
  events: ChunkEvents;
  scope(peer: string): 'site' | 'wan';
  logger: ImageComponents['logger'];
  metrics?: ImageComponents['metrics'];
  options?: Partial<PullOptions>;
  /** Aborts every pull (the service stopping). */
  signal: AbortSignal;
  /** A pull started: say what we hold of it. */
  started(m: Manifest): void;
  /** A pull finished with every chunk here. */
  completed(m: Manifest): Promise<void>;
  /** A pull ended, complete or not: evaluate placement again after `delayMs`. */
  ended(delayMs: number): void;
}

export class ImagePulls {
  readonly #d: PullsDeps;
  readonly #pulls = new Map<string, Pulling>();
  /** Pulls that failed on our own store, and why: not restarted (by evaluation) while waiting. */
  readonly #backoff = new Map<string, { backoff: Backoff; reason: string }>();

  constructor(deps: PullsDeps) {
    this.#d = deps;
  }

  /** The running pull of an image. */
  get(digest: string): Pull | undefined {
    return this.#pulls.get(digest)?.pull;
  }

  digests(): Iterable<string> {
    return this.#pulls.keys();
  }

  /** Why the pull of an image is paused and for how long more, while it is (ms). */
  paused(digest: string, now = Date.now()): { reason: string; retryInMs: number } | undefined {
    if (this.#pulls.has(digest)) return undefined;
    const p = this.#backoff.get(digest);
    return p?.backoff.waiting(now)
      ? { reason: p.reason, retryInMs: p.backoff.until - now }
      : undefined;
  }

  /** Forgets every pause (the chunk store was reopened). */
  resume(): void {
    this.#backoff.clear();
  }

  /** Aborts the pulls of images not in `current`, unless a reader started them. */
  abortStale(current: ReadonlySet<string>): void {
    for (const [digest, p] of this.#pulls)
      if (!current.has(digest) && !p.transient) p.controller.abort();
  }

  /** Aborts every pull and waits for them to end. */
  async abortAll(): Promise<void> {
    for (const p of this.#pulls.values()) p.controller.abort();
    await Promise.allSettled([...this.#pulls.values()].map((p) => p.done));
  }

  /**
   * Starts pulling what is missing of `s`, unless a pull of it runs (`transient`: for a reader, and
   * not aborted when the image stops being current) or, for placement, it is paused.
   */
  start(s: Served, transient: boolean): void {
    const m = s.manifest;
    const existing = this.#pulls.get(m.digest);
    if (existing) {
      if (!transient) existing.transient = false;
      return;
    }
    if (!transient && this.#backoff.get(m.digest)?.backoff.waiting(Date.now())) return;
    const d = this.#d;
    const controller = new AbortController();
    const signal = AbortSignal.any([controller.signal, d.signal]);
    const hold = d.pins.hold(s.index.hashes);
    const image = `${m.name}:${m.tag}`;
    const pull = new Pull(
      s.index,
      s.bits,
      {
        chunks: d.chunks(),
        sources: () => this.#sources(m),
        open: (peer, sig) => d.dial(peerIdFromString(peer), CHUNKS_PROTOCOL, { signal: sig }),
        gotChunk: (i) => d.events.got(m.digest, i),
        received: (peer, n) => d.metrics?.bytes('in', d.scope(peer), n),
        spared: (peer) => isSpared(d.membership, peer, m.creator, () => this.#wholeHolders(m)),
        badSource: (peer) => {
          d.metrics?.badChunk();
          d.logger.warn(
            { peer, image },
            'a source served a chunk that does not match its hash; dropped',
          );
        },
        log: d.logger,
      },
      { ...DEFAULT_PULL_OPTIONS, ...d.options },
    );
    const t0 = Date.now();
    d.logger.info(
      { image, version: m.version, have: s.bits.count, of: s.index.size },
      'pull started',
    );
    d.started(m);
    const entry: Pulling = { pull, controller, hold, transient, done: Promise.resolve() };
    entry.done = this.#checkSpace(s)
      .then(() => pull.run(signal))
      .then(async () => {
        d.logger.info(
          { image, version: m.version, ms: Date.now() - t0, bytes: pull.bytesReceived },
          'pull complete',
        );
        await d.completed(m);
      })
      .then(() => void this.#backoff.delete(m.digest))
      .catch((err: Error) => {
        if (signal.aborted) return;
        if (isOutOfSpace(err) || err instanceof ChunkStoreFailedError) {
          this.#pause(m, err);
          return;
        }
        d.logger.warn({ image, err: err.message }, 'pull failed; will retry');
      })
      .finally(() => {
        hold.release();
        this.#pulls.delete(m.digest);
        const until = this.#backoff.get(m.digest)?.backoff.until ?? 0;
        d.ended(s.bits.complete ? 0 : Math.max(2000, until - Date.now()));
      });
    this.#pulls.set(m.digest, entry);
  }

  /** The pull failed on our own store: pause it, and fail the readers waiting for it. */
  #pause(m: Manifest, err: Error): void {
    let p = this.#backoff.get(m.digest);
    if (!p)
      this.#backoff.set(
        m.digest,
        (p = {
          backoff: new Backoff(PULL_LOCAL_BACKOFF_MS, PULL_LOCAL_BACKOFF_MAX_MS),
          reason: '',
        }),
      );
    const ms = p.backoff.fail(Date.now());
    p.reason = err.message;
    this.#d.events.failReaders(m.digest, err);
    this.#d.logger.warn(
      { image: `${m.name}:${m.tag}`, err: err.message, retryInMs: ms },
      isOutOfSpace(err)
        ? 'pull paused: no space left on the device holding the data directory'
        : 'pull paused: the chunk store failed; it is being reopened',
    );
  }

  /** Throws InsufficientSpaceError when the rest of the image would not fit (see the reserve). */
  async #checkSpace(s: Served): Promise<void> {
    let need = PULL_FREE_SPACE_RESERVE_BYTES;
    for (let i = 0; i < s.index.size; i++) if (!s.bits.has(i)) need += s.index.sizes[i];
    const free = await this.#d.chunks().freeBytes();
    if (free !== undefined && free < need) throw new InsufficientSpaceError(need, free);
  }

  /**
   * Members known to hold the whole image: they said so, or they are providers in the DHT (which
   * an agent becomes when its copy is complete). Once one in our own site is live, every source
   * across the WAN is spared (`isSpared`): a joiner took most of the image across the WAN from the
   * other site's holders, asked as much as its site-mate. Asked again for connected sources once
   * a refresh (puller.ts), so one connected before the site-mate was known is spared from then.
   */
  *#wholeHolders(m: Manifest): Iterable<string> {
    for (const [peer, p] of this.#d.progress.of(m.digest)) if (p.done) yield peer;
    yield* this.#d.providers.of(m.digest);
  }

  /** Candidate sources for an image, best first (`rankSources`): same site, then by RTT. */
  #sources(m: Manifest): string[] {
    const cands: string[] = [m.creator, ...this.#d.providers.of(m.digest)];
    for (const [peer, p] of this.#d.progress.of(m.digest)) if (p.have > 0) cands.push(peer);
    const ranked = rankSources(this.#d.membership, cands);
    // No holder known in our own site: ask the DHT (at most once per PROVIDER_LOOKUP_CACHE_MS).
    // Holders say what they hold every IMAGE_HOLDER_ANNOUNCE_MS, so an agent that joined a site
    // took the whole image across the WAN from the origin meanwhile, past site-mates holding it.
    if (!inOwnSite(this.#d.membership, ranked)) void this.#d.providers.lookup(m.digest);
    return ranked;
  }
}
