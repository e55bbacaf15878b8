// One pull of one image: connects to sources holding its chunks (same site first, then nearest),
// asks each for the rarest chunks it has, pipelined up to a window of bytes, verifies every chunk
// against its hash before storing it, drops a source that serves wrong bytes, and finishes when
// every chunk is here. Chunks already here are never fetched again, so a pull that was interrupted
// (even by SIGKILL) resumes where it stopped.
import type { Stream } from '@libp2p/interface';
import { ChunkHashMismatchError } from '../../storage/errors.js';
import type { ChunkStore } from '../../storage/chunks/index.js';
import { Backoff, FramedStream } from '../../membership/index.js';
import { Bitfield } from './bitfield.js';
import type { ImageIndex } from './image-index.js';
import { PieceScheduler } from './scheduler.js';
import { decodeChunkMsg, encodeChunkMsg, MAX_CHUNK_FRAME, MAX_INDEXES, WireError } from './wire.js';

export interface PullOptions {
  /** Most sources connected at once. */
  maxSources: number;
  /** Bytes requested and not yet received, per source. */
  window: number;
  /** A source with requests outstanding that sends nothing for this long is dropped (ms). */
  stallTimeoutMs: number;
  /** How often the source list is refreshed (ms). */
  refreshMs: number;
}

/**
 * Least window of a spared source (bytes); it gets the pull's window divided by one plus the
 * number of other (unspared) sources connected.
 */
export const SPARED_MIN_WINDOW = 64 * 1024;

/** How often a running pull makes what it stored durable and counts it (ms). */
export const DURABLE_REPORT_MS = 500;

/** Received chunks being verified and stored at once, per source. */
export const STORE_CONCURRENCY = 16;

export const DEFAULT_PULL_OPTIONS: PullOptions = {
  maxSources: 8,
  window: 1024 * 1024,
  stallTimeoutMs: 10_000,
  refreshMs: 1_000,
};

export interface PullDeps {
  chunks: ChunkStore;
  /** Candidate sources, best first (same site, then by RTT). */
  sources(): string[];
  open(peer: string, signal: AbortSignal): Promise<Stream>;
  /** We stored chunk i (announce it to our own pullers). */
  gotChunk(index: number): void;
  received(peer: string, bytes: number): void;
  /**
   * Sources to ask only for chunks no other connected source holds (the origin across the WAN:
   * see PieceScheduler). Default: none.
   */
  spared?(peer: string): boolean;
  /** A source sent bytes that do not match their hash. */
  badSource(peer: string): void;
  log: { debug(o: object, m?: string): void; info(o: object, m?: string): void };
}

interface Source {
  peer: string;
  fs: FramedStream;
  lastData: number;
  closed: boolean;
}

export class Pull {
  readonly index: ImageIndex;
  readonly have: Bitfield;
  readonly #deps: PullDeps;
  readonly #o: PullOptions;
  #scheduler: PieceScheduler | undefined;
  /** When the sources' spared flags were last asked again (ms). */
  #sparedAt = 0;
  readonly #sources = new Map<string, Source>();
  /** Sources that failed or served bad bytes, until this time. */
  readonly #avoid = new Map<string, number>();
  /** Sources that ended (or broke) their streams with no chunk since: redialled after a pause. */
  readonly #sourceFailures = new Map<string, Backoff>();
  #wake: (() => void) | undefined;
  /**
   * A store write failed for a reason of our own (a full disk, a failed store), not the source's:
   * the pull ends with it. Fetching on would pull the same chunks again and again, as fast as the
   * sources send them, and store none.
   */
  #localFailure: Error | undefined;
  #flushedAt = 0;
  #durable = 0;
  bytesReceived = 0;

  constructor(index: ImageIndex, have: Bitfield, deps: PullDeps, opts: Partial<PullOptions> = {}) {
    this.index = index;
    this.have = have;
    this.#deps = deps;
    this.#o = { ...DEFAULT_PULL_OPTIONS, ...opts };
  }

  get scheduler(): PieceScheduler | undefined {
    return this.#scheduler;
  }

  get complete(): boolean {
    return this.have.complete;
  }

  /**
   * Chunks of the image held here that survive a crash: chunks are stored with `flush: false`
   * and become durable at the store's next group commit, so the count is taken at a flush made
   * every DURABLE_REPORT_MS while the pull runs (and at its end).
   */
  get durableChunks(): number {
    return Math.min(this.#durable, this.have.count);
  }

  /** Flushes the store if the last flush is DURABLE_REPORT_MS old, then updates durableChunks. */
  #reportDurable(): void {
    const now = Date.now();
    if (now - this.#flushedAt < DURABLE_REPORT_MS) return;
    this.#flushedAt = now;
    const n = this.have.count;
    this.#deps.chunks.flush().then(
      () => (this.#durable = Math.max(this.#durable, n)),
      () => {}, // a failed store fails the pull's own puts too
    );
  }

  /** Moves these chunks to the front (a reader is waiting). */
  urgent(indexes: number[]): void {
    this.#scheduler?.urgent(indexes);
    this.#kick();
  }

  /** A chunk we had was found corrupt and deleted: fetch it again. */
  lost(i: number): void {
    if (this.#scheduler) this.#scheduler.lost(i);
    else this.have.clear(i);
    this.#kick();
  }

  #kick(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    const sched = new PieceScheduler(this.index.sizes, this.have);
    this.#scheduler = sched;
    try {
      while (!sched.complete) {
        signal.throwIfAborted();
        if (this.#localFailure) throw this.#localFailure;
        this.#connectMore(signal);
        this.#respare();
        this.#dropStalled();
        this.#reportDurable();
        for (const s of this.#sources.values()) void this.#request(s);
        await new Promise<void>((resolve) => {
          // one abort listener per wait, removed when the wait ends (they piled up on the signal)
          const done = () => {
            clearTimeout(t);
            signal.removeEventListener('abort', done);
            resolve();
          };
          const t = setTimeout(done, Math.min(this.#o.refreshMs, DURABLE_REPORT_MS));
          this.#wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
      }
      const n = this.have.count;
      await this.#deps.chunks.flush();
      this.#durable = Math.max(this.#durable, n);
    } finally {
      for (const s of this.#sources.values()) this.#close(s, new Error('pull finished'));
    }
  }

  /**
   * Asks again, once a refresh, which connected sources are spared: a source across the WAN that
   * connected before a site-mate's whole copy was known becomes spared when it is.
   */
  #respare(): void {
    const sched = this.#scheduler;
    const spared = this.#deps.spared;
    const now = Date.now();
    if (!sched || !spared || now - this.#sparedAt < this.#o.refreshMs) return;
    this.#sparedAt = now;
    for (const peer of sched.peers()) sched.setSpared(peer, spared(peer));
  }

  #connectMore(signal: AbortSignal): void {
    const now = Date.now();
    for (const peer of this.#deps.sources()) {
      if (this.#sources.size >= this.#o.maxSources) break;
      if (this.#sources.has(peer) || (this.#avoid.get(peer) ?? 0) > now) continue;
      const placeholder: Source = {
        peer,
        fs: undefined as unknown as FramedStream,
        lastData: now,
        closed: false,
      };
      this.#sources.set(peer, placeholder);
      void this.#connect(placeholder, signal);
    }
  }

  async #connect(src: Source, signal: AbortSignal): Promise<void> {
    try {
      const stream = await this.#deps.open(
        src.peer,
        AbortSignal.any([signal, AbortSignal.timeout(5000)]),
      );
      src.fs = new FramedStream(stream, MAX_CHUNK_FRAME);
      await src.fs.write(encodeChunkMsg({ t: 'open', d: this.index.digest }), signal);
      const first = decodeChunkMsg(
        await src.fs.readOne(AbortSignal.any([signal, AbortSignal.timeout(10_000)])),
      );
      if (first.t !== 'bits')
        throw new Error(
          first.t === 'unknown' ? 'source does not hold the image' : `unexpected ${first.t}`,
        );
      // a source with nothing yet is kept: it tells us when it gets something
      const bits = new Bitfield(this.index.size, first.b);
      src.lastData = Date.now();
      this.#scheduler!.addPeer(src.peer, bits, { spared: this.#deps.spared?.(src.peer) ?? false });
      void this.#readLoop(src, signal);
      this.#kick();
    } catch (err) {
      this.#avoid.set(src.peer, Date.now() + 5_000);
      this.#close(src, err as Error);
      this.#deps.log.debug(
        { peer: src.peer, err: (err as Error).message },
        'pull: source unavailable',
      );
    }
  }

  async #request(src: Source): Promise<void> {
    const sched = this.#scheduler;
    if (!sched || src.closed || !src.fs || !sched.peer(src.peer)) return;
    // A spared origin gets a share of the window, split with the other pullers connected: every
    // chunk asked of it and not arrived yet is one the other pullers cannot see coming, and may
    // ask it for too. With 7 pullers and a full window each the origin sent 1.31x a 64 MiB image
    // at 25 Mbit/s, and its uplink is what bounds the spread; alone, a puller keeps the whole
    // window for the WAN's latency.
    const window = sched.peer(src.peer)?.spared
      ? Math.max(SPARED_MIN_WINDOW, Math.floor(this.#o.window / (1 + sched.unspared())))
      : this.#o.window;
    const want = sched.next(src.peer, window);
    if (want.length === 0) return;
    try {
      for (let i = 0; i < want.length; i += MAX_INDEXES)
        await src.fs.write(encodeChunkMsg({ t: 'req', i: want.slice(i, i + MAX_INDEXES) }));
    } catch (err) {
      this.#close(src, err as Error);
    }
  }

  async #readLoop(src: Source, signal: AbortSignal): Promise<void> {
    const sched = this.#scheduler!;
    // Chunks are verified and stored concurrently (up to STORE_CONCURRENCY at once) while the
    // next frames are read: a store write waits on the disk's thread pool, and waiting for each
    // one before reading the next frame made the pull latency-bound (~25 MB/s on loopback).
    const storing = new Set<Promise<void>>();
    let failure: Error | undefined;
    const store = async (index: number, data: Uint8Array): Promise<void> => {
      const hash = this.index.hashes[index];
      try {
        await this.#deps.chunks.put(hash, data, { flush: false });
      } catch (err) {
        if (err instanceof ChunkHashMismatchError) {
          sched.failed(src.peer, index);
          this.#deps.badSource(src.peer);
          this.#avoid.set(src.peer, Date.now() + 60_000);
        } else {
          this.#localFailure ??= err as Error;
          this.#kick();
        }
        throw err;
      }
      this.bytesReceived += data.length;
      this.#sourceFailures.delete(src.peer);
      this.#deps.received(src.peer, data.length);
      const fresh = !this.have.has(index);
      sched.received(src.peer, index);
      if (fresh) this.#deps.gotChunk(index);
      if (sched.complete) this.#kick();
      else void this.#request(src);
    };
    // one abort listener for the whole loop (a read with a signal costs a promise race per
    // chunk): closing the source aborts its stream, which ends the pending read with an error
    const onAbort = () => this.#close(src, new Error('pull stopped'));
    signal.addEventListener('abort', onAbort, { once: true });
    if (signal.aborted) onAbort();
    try {
      for (;;) {
        if (failure) throw failure;
        const frame = await src.fs.read();
        if (!frame) break;
        const msg = decodeChunkMsg(frame);
        // only answers count as progress: a source that announces chunks but answers no request
        // is stalled (and while it is connected, a spared origin is not asked for what it holds)
        if (msg.t !== 'have') src.lastData = Date.now();
        if (msg.t === 'have') {
          sched.peerHas(src.peer, msg.i);
          void this.#request(src);
        } else if (msg.t === 'miss') {
          // it lost the chunk (found corrupt): not its holder any more until it says `have` again
          sched.missing(src.peer, msg.i);
          this.#kick();
        } else if (msg.t === 'chunk') {
          if (msg.i >= this.index.size) throw new WireError('chunk index out of range');
          const task: Promise<void> = store(msg.i, msg.data).then(
            () => void storing.delete(task),
            (err: unknown) => {
              storing.delete(task);
              failure ??= err as Error;
              // wake the read loop: the source is dropped
              src.fs.abort(failure);
            },
          );
          storing.add(task);
          if (storing.size >= STORE_CONCURRENCY) await Promise.race(storing);
        } else {
          throw new WireError(`unexpected ${msg.t}`);
        }
      }
      await Promise.all(storing);
      if (failure) throw failure;
      this.#sourceEnded(src);
      this.#close(src, new Error('source closed the stream'));
    } catch (err) {
      await Promise.all(storing);
      this.#sourceEnded(src);
      this.#close(src, failure ?? (err as Error));
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    this.#kick();
  }

  /**
   * The source ended its stream, or it broke, while we still wanted chunks (not closed by us):
   * it is not reconnected for 1 s, doubling up to 60 s while it sends nothing. A source whose
   * chunk reads keep failing (a bad disk) broke every stream at once, and was reconnected ~500
   * times a second.
   */
  #sourceEnded(src: Source): void {
    if (src.closed) return;
    let backoff = this.#sourceFailures.get(src.peer);
    if (!backoff) this.#sourceFailures.set(src.peer, (backoff = new Backoff(1000, 60_000)));
    backoff.fail(Date.now());
    this.#avoid.set(src.peer, Math.max(this.#avoid.get(src.peer) ?? 0, backoff.until));
  }

  #dropStalled(): void {
    const now = Date.now();
    for (const s of this.#sources.values()) {
      const p = this.#scheduler?.peer(s.peer);
      if (p && p.inflight.size > 0 && now - s.lastData > this.#o.stallTimeoutMs) {
        this.#avoid.set(s.peer, now + 10_000);
        this.#close(s, new Error('stalled'));
      }
    }
  }

  #close(src: Source, err: Error): void {
    if (src.closed) return;
    src.closed = true;
    if (this.#sources.get(src.peer) === src) this.#sources.delete(src.peer);
    this.#scheduler?.removePeer(src.peer);
    try {
      src.fs?.abort(err);
    } catch {
      // already closed
    }
  }
}
