// Image import and export: a byte stream in, chunks out to the chunk store (and back).
//
// importImage() reads any stream in constant memory (the buffers in flight plus at most
// `concurrency` + 1 chunks of at most maxSize each), computing the whole-content sha256 and the
// content-defined chunks as it goes, and writes every chunk (durably) before it resolves. It does
// not write a manifest: sign one from the result and put it in the ManifestStore (see index.ts).
// exportImage() streams an image back, verifying every chunk and, at the end, the whole digest.
import { createHash } from 'node:crypto';
import { FastCdc, type ChunkerOptions } from '../chunks/fastcdc.js';
import type { ChunkStore } from '../chunks/store.js';
import { ChunkNotFoundError, ImageDigestMismatchError, ImageTooLargeError } from '../errors.js';
import type { PinHold } from './gc.js';
import type { ChunkRef, Manifest } from './manifest.js';

/**
 * Chunk writes in flight during an import. Default 4: each write waits on two fsyncs, so a few
 * in parallel keep the disk busy while the chunker and sha256 keep one core busy.
 */
export const DEFAULT_IMPORT_CONCURRENCY = 16;
/** Chunks read ahead by exportImage(). Default 4: overlaps file reads with the consumer. */
export const DEFAULT_EXPORT_READ_AHEAD = 4;

export interface ImportOptions {
  /** Chunker parameters. Default: the chunker's defaults (use the same on every agent). */
  chunker?: ChunkerOptions;
  /** Refuse streams longer than this (ImageTooLargeError). Unit: bytes. Default: no limit. */
  maxBytes?: number;
  /** Chunk writes in flight. Default DEFAULT_IMPORT_CONCURRENCY. */
  concurrency?: number;
  /** Every chunk written is pinned in this hold (see gc.ts); the caller releases it. */
  pin?: PinHold;
  /** Called after each buffer read with the bytes read so far. */
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

export interface ImportResult {
  /** "sha256:<hex>" of the whole content. */
  digest: string;
  /** Bytes. */
  size: number;
  /** The chunks in order. */
  chunks: ChunkRef[];
  /** How many chunks were not in the store before, and their bytes. */
  newChunks: number;
  newBytes: number;
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Chunks a byte stream into the chunk store. The source's buffers are copied before anything
 * keeps them, so a source may reuse its buffer after each yield.
 */
export async function importImage(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  store: ChunkStore,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const cdc = new FastCdc(opts.chunker);
  const whole = createHash('sha256');
  const limit = opts.maxBytes ?? Number.POSITIVE_INFINITY;
  const concurrency = Math.max(1, opts.concurrency ?? DEFAULT_IMPORT_CONCURRENCY);
  const chunks: ChunkRef[] = [];
  const inflight = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  let newChunks = 0;
  let newBytes = 0;
  let pending: Uint8Array[] = [];
  let pendingLen = 0;
  let total = 0;

  const emit = async (bytes: Uint8Array): Promise<void> => {
    const index = chunks.length;
    chunks.push({ hash: '', size: bytes.length });
    // `write` never rejects: a failure is recorded and thrown by the next emit() or at the end
    const write = store
      .add(bytes, { flush: false })
      .then(({ hash, added }) => {
        chunks[index].hash = hash;
        if (failure === undefined) opts.pin?.add(hash); // throws if the hold was released early
        if (added) {
          newChunks++;
          newBytes += bytes.length;
        }
      })
      .catch((err: unknown) => {
        failure ??= { err };
      });
    const tracked = write.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    if (inflight.size >= concurrency) await Promise.race(inflight);
    if (failure) throw failure.err;
  };

  const readAll = async (): Promise<void> => {
    for await (const buf of source) {
      opts.signal?.throwIfAborted();
      if (!(buf instanceof Uint8Array))
        throw new TypeError('an image source must yield Uint8Array');
      if (buf.length === 0) continue;
      const origin = total;
      total += buf.length;
      if (total > limit) throw new ImageTooLargeError(limit);
      whole.update(buf);
      let start = 0;
      for (const end of cdc.push(buf)) {
        const rel = end - origin;
        pending.push(new Uint8Array(buf.subarray(start, rel))); // a copy, even of a Buffer
        pendingLen += rel - start;
        const chunk = concat(pending, pendingLen);
        pending = [];
        pendingLen = 0;
        await emit(chunk);
        start = rel;
      }
      if (start < buf.length) {
        pending.push(new Uint8Array(buf.subarray(start)));
        pendingLen += buf.length - start;
      }
      opts.onProgress?.(total);
    }
    if (cdc.finish() !== undefined) await emit(concat(pending, pendingLen));
    await Promise.all(inflight);
    if (failure) throw failure.err;
    await store.flush(); // one directory fsync per shard touched, not one per chunk
  };

  try {
    await readAll();
  } catch (err) {
    failure ??= { err };
    await Promise.allSettled(inflight); // nothing is left running when we return
    throw err;
  }
  return { digest: `sha256:${whole.digest('hex')}`, size: total, chunks, newChunks, newBytes };
}

/** The chunks of `manifest` that are not in the store (each distinct hash once, in order). */
export async function missingChunks(manifest: Manifest, store: ChunkStore): Promise<ChunkRef[]> {
  const seen = new Set<string>();
  const unique = manifest.chunks.filter((c) => !seen.has(c.hash) && seen.add(c.hash));
  const present = await store.hasMany(unique.map((c) => c.hash));
  return unique.filter((_, i) => !present[i]);
}

export interface LocalCopy {
  /** Chunk entries in the manifest, and how many of them are here. */
  chunks: number;
  presentChunks: number;
  /** Image bytes, and how many of them are here (a chunk listed twice counts twice). */
  bytes: number;
  presentBytes: number;
  /** Every chunk is here (not re-verified: get() does that when serving). */
  complete: boolean;
}

/** How much of an image this store holds (for `image status` and replication progress). */
export async function localCopy(manifest: Manifest, store: ChunkStore): Promise<LocalCopy> {
  const unique = [...new Set(manifest.chunks.map((c) => c.hash))];
  const present = await store.hasMany(unique);
  const here = new Set(unique.filter((_, i) => present[i]));
  let presentChunks = 0;
  let presentBytes = 0;
  for (const c of manifest.chunks) {
    if (!here.has(c.hash)) continue;
    presentChunks++;
    presentBytes += c.size;
  }
  return {
    chunks: manifest.chunks.length,
    presentChunks,
    bytes: manifest.size,
    presentBytes,
    complete: presentChunks === manifest.chunks.length,
  };
}

export interface ExportOptions {
  /** Chunks read ahead. Default DEFAULT_EXPORT_READ_AHEAD. */
  readAhead?: number;
  signal?: AbortSignal;
}

/**
 * Streams an image's bytes from the chunk store, chunk by chunk. Every chunk is verified as it is
 * read (ChunkCorruptError, and the bad file is quarantined); a missing chunk throws
 * ChunkNotFoundError; at the end the size and whole digest are checked against the manifest
 * (ImageDigestMismatchError). A consumer must treat the bytes as unconfirmed until the iteration
 * ends without an error.
 */
export async function* exportImage(
  manifest: Manifest,
  store: ChunkStore,
  opts: ExportOptions = {},
): AsyncGenerator<Uint8Array, void, undefined> {
  const ahead = Math.max(1, opts.readAhead ?? DEFAULT_EXPORT_READ_AHEAD);
  const whole = createHash('sha256');
  const queue: Array<Promise<Uint8Array | undefined>> = [];
  let next = 0;
  let total = 0;
  const fill = (): void => {
    while (queue.length < ahead && next < manifest.chunks.length) {
      const p = store.get(manifest.chunks[next++].hash, { verify: true });
      p.catch(() => {}); // awaited below; avoid an unhandled rejection if the consumer stops early
      queue.push(p);
    }
  };
  for (let i = 0; i < manifest.chunks.length; i++) {
    opts.signal?.throwIfAborted();
    fill();
    const ref = manifest.chunks[i];
    const bytes = await queue.shift()!;
    if (bytes === undefined) throw new ChunkNotFoundError(ref.hash);
    if (bytes.length !== ref.size)
      throw new ImageDigestMismatchError(
        `chunk ${i} (${ref.hash}) is ${bytes.length} bytes, the manifest says ${ref.size}`,
      );
    whole.update(bytes);
    total += bytes.length;
    yield bytes;
  }
  const digest = `sha256:${whole.digest('hex')}`;
  if (total !== manifest.size || digest !== manifest.digest)
    throw new ImageDigestMismatchError(
      `content of ${manifest.name}:${manifest.tag} is ${total} bytes with ${digest}, ` +
        `the manifest says ${manifest.size} bytes with ${manifest.digest}`,
    );
}
