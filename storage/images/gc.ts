// Garbage collection of chunks: deletes chunk files that no kept manifest references.
//
// The danger is a chunk that is about to be referenced: an import that has written half an
// image, or a pull whose manifest is not stored yet, or a pull that found a chunk already here
// (has() said yes, so it will not fetch it) just as GC decides the chunk is garbage. Two guards:
//
// 1. Pins (the contract for every writer). Whoever is about to make a manifest reference chunks
//    holds them in a PinSet from *before* it checks or writes them until *after* the manifest is
//    stored:  const hold = pins.hold(manifest.chunks.map(c => c.hash));
//             ...hasMany / fetch / put chunks / manifestStore.put(manifest)...
//             hold.release();
//    importImage() adds every chunk it writes to a hold passed as `pin`. GC checks the pin of a
//    chunk under the chunk store's per-chunk lock (the lock put()/stat() take) and removes the
//    chunk in the same step (has() reads that state), so a pull that pinned a chunk and then saw
//    it present can never have it deleted underneath. A hold
//    released while a GC runs stays in force until that GC ends, because the GC's snapshot of
//    referenced chunks may predate the manifest the hold protected.
//
// 2. A grace period (the safety net for writers that forget): chunks whose file was written, or
//    re-put, less than `graceMs` ago are kept. put() of a chunk already present refreshes its
//    mtime, and GC re-checks the mtime under the same per-chunk lock before deleting.
//
// Deleting a chunk only drops its index entry; the bytes stay in their pack until compaction
// rewrites the pack's live chunks elsewhere and deletes it. collectGarbage() ends with a
// compaction (ChunkStore.compact(), bounded per call) unless `compact` is false or it is a dry run.
import type { ChunkStore, CompactResult } from '../chunks/index.js';

/**
 * Default grace period. Unit: ms. Default 1 hour: far longer than pushing or pulling one chunk
 * takes, so that a writer that does not pin is still safe unless it stalls for an hour between
 * writing a chunk and storing its manifest.
 */
export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;

/** Something that knows which chunks its manifests reference (a ManifestStore). */
export interface ChunkReferences {
  referencedChunks(): Promise<Set<string>>;
}

/** A set of pins taken through holds; released together. */
export interface PinHold {
  /** Pins more hashes under this hold. */
  add(hash: string): void;
  addAll(hashes: Iterable<string>): void;
  /** Releases every pin of this hold (deferred until a running GC ends). Safe to call twice. */
  release(): void;
}

/** Reference-counted pins on chunk hashes: what GC must not delete right now. */
export class PinSet {
  readonly #counts = new Map<string, number>();
  #gcRuns = 0;
  #deferred: Array<() => void> = [];

  /** A new hold, optionally pinning `hashes` right away. */
  hold(hashes: Iterable<string> = []): PinHold {
    const mine = new Set<string>();
    let released = false;
    const pin = (h: string): void => {
      if (released) throw new Error('PinHold used after release()');
      if (mine.has(h)) return;
      mine.add(h);
      this.#counts.set(h, (this.#counts.get(h) ?? 0) + 1);
    };
    const unpin = (): void => {
      for (const h of mine) {
        const n = (this.#counts.get(h) ?? 1) - 1;
        if (n <= 0) this.#counts.delete(h);
        else this.#counts.set(h, n);
      }
      mine.clear();
    };
    const hold: PinHold = {
      add: pin,
      addAll: (hs) => {
        for (const h of hs) pin(h);
      },
      release: () => {
        if (released) return;
        released = true;
        if (this.#gcRuns > 0) this.#deferred.push(unpin);
        else unpin();
      },
    };
    hold.addAll(hashes);
    return hold;
  }

  has(hash: string): boolean {
    return this.#counts.has(hash);
  }

  /** Distinct hashes pinned. */
  get size(): number {
    return this.#counts.size;
  }

  /** Used by collectGarbage: releases made until gcEnd() are deferred. */
  gcBegin(): void {
    this.#gcRuns++;
  }

  gcEnd(): void {
    this.#gcRuns--;
    if (this.#gcRuns > 0) return;
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const unpin of deferred) unpin();
  }
}

export interface GcOptions {
  /** Keep chunks written or re-put less than this long ago. Unit: ms. Default 1 hour. */
  graceMs?: number;
  /** Pins to respect (see the header). */
  pins?: PinSet;
  /** The current time, ms since the epoch. Default Date.now(). */
  now?: number;
  /** Count what would be deleted, delete nothing. */
  dryRun?: boolean;
  /** Compact the chunk store's packs afterwards (see the header). Default true. */
  compact?: boolean;
  signal?: AbortSignal;
}

export interface GcResult {
  /** Chunks looked at. */
  scanned: number;
  /** Kept because a manifest references them. */
  referenced: number;
  /** Kept because they are pinned. */
  pinned: number;
  /** Kept because they are younger than the grace period. */
  young: number;
  /** Deleted (or, with dryRun, would be). */
  removed: number;
  removedBytes: number;
  /** What the compaction afterwards did (undefined if it did not run). */
  compaction?: CompactResult;
}

/**
 * Deletes every chunk that no manifest in `refs` references, unless it is pinned or younger than
 * the grace period. Runs in one pass over the store; memory: the set of referenced hashes.
 */
export async function collectGarbage(
  chunks: ChunkStore,
  refs: ChunkReferences,
  opts: GcOptions = {},
): Promise<GcResult> {
  const pins = opts.pins ?? new PinSet();
  const cutoff = (opts.now ?? Date.now()) - (opts.graceMs ?? DEFAULT_GC_GRACE_MS);
  const result: GcResult = {
    scanned: 0,
    referenced: 0,
    pinned: 0,
    young: 0,
    removed: 0,
    removedBytes: 0,
  };
  pins.gcBegin();
  try {
    const referenced = await refs.referencedChunks();
    for await (const info of chunks.entries()) {
      opts.signal?.throwIfAborted();
      result.scanned++;
      if (referenced.has(info.hash)) result.referenced++;
      else if (pins.has(info.hash)) result.pinned++;
      else if (info.mtimeMs >= cutoff) result.young++;
      else if (opts.dryRun) {
        result.removed++;
        result.removedBytes += info.size;
      } else if (
        await chunks.delete(info.hash, { ifOlderThanMs: cutoff, unless: (h) => pins.has(h) })
      ) {
        result.removed++;
        result.removedBytes += info.size;
      } else {
        result.pinned++; // pinned or re-put while we looked: kept
      }
    }
  } finally {
    pins.gcEnd();
  }
  if (!opts.dryRun && opts.compact !== false)
    result.compaction = await chunks.compact({ signal: opts.signal });
  return result;
}
