// The source side of /edgeswarm/chunks/1.0.0: answers a puller with the chunks of an image this
// agent holds (a chunk read from disk is verified as it is read: a corrupt file is quarantined and
// answered as missing, and so is a chunk whose read fails (EIO, say), which is reported but kept
// in our bitfield; a chunk stored moments ago is sent from memory, hashed when it arrived),
// under the agent's upload and WAN caps, and tells it about chunks it gets later.
import type { Stream } from '@libp2p/interface';
import { ChunkCorruptError } from '../../storage/errors.js';
import type { ChunkStore } from '../../storage/chunks/index.js';
import { FramedStream } from '../../membership/index.js';
import type { Bitfield } from './bitfield.js';
import type { ImageIndex } from './image-index.js';
import type { TokenBucket } from './token-bucket.js';
import { decodeChunkMsg, encodeChunkMsgParts, MAX_INDEXES, WireError } from './wire.js';

/** A puller idle this long is disconnected (ms). */
export const SOURCE_IDLE_TIMEOUT_MS = 120_000;
/** Chunks read from the store ahead of the one being sent, per puller. */
export const READ_AHEAD = 8;

export interface ServedImage {
  index: ImageIndex;
  bits: Bitfield;
}

export interface ChunkServerDeps {
  chunks: ChunkStore;
  /** The image with this digest and our bitfield of it, if we hold any of it. */
  image(digest: string): Promise<ServedImage | undefined>;
  /** Buckets to take from before sending `bytes` to `peer` (upload cap, WAN cap). */
  buckets(peer: string): TokenBucket[];
  /** A chunk file was found corrupt: drop it from our bitfield. */
  lost(digest: string, index: number): void;
  /** Register for "we now have chunk i" of an image; returns the unsubscribe. */
  subscribe(digest: string, onHave: (indexes: number[]) => void): () => void;
  sent(peer: string, bytes: number): void;
  badInput(reason: string): void;
  /**
   * Reading a chunk failed with something other than corruption (EIO, a failed store): the chunk
   * is answered as missing and the stream goes on, so the puller asks another source for it.
   */
  readFailed(err: Error): void;
}

export async function serveChunks(
  stream: Stream,
  peer: string,
  deps: ChunkServerDeps,
  stopSignal: AbortSignal,
): Promise<void> {
  const fs = new FramedStream(stream, 64 * 1024);
  let unsubscribe: (() => void) | undefined;
  // a wait for the puller's next frame ends after SOURCE_IDLE_TIMEOUT_MS (one signal per stream
  // and a plain timer per wait: an AbortSignal.timeout and AbortSignal.any per request were ~1% of
  // a relay's CPU)
  const idle = new AbortController();
  const readSignal = AbortSignal.any([stopSignal, idle.signal]);
  const readFrame = async (): Promise<Uint8Array | undefined> => {
    const timer = setTimeout(
      () => idle.abort(new Error(`no request from the puller in ${SOURCE_IDLE_TIMEOUT_MS} ms`)),
      SOURCE_IDLE_TIMEOUT_MS,
    );
    try {
      return await fs.read(readSignal);
    } finally {
      clearTimeout(timer);
    }
  };
  // writes are serialised: have-messages and chunks share the stream
  let writing: Promise<void> = Promise.resolve();
  const send = (parts: readonly Uint8Array[]): Promise<void> => {
    const next = writing.then(() => fs.write(parts, stopSignal));
    // the chain must never hold an unhandled rejection (callers see theirs through `next`)
    writing = next.catch(() => {});
    return next;
  };
  try {
    const first = await readFrame();
    if (!first) return;
    const open = decodeChunkMsg(first);
    if (open.t !== 'open') throw new WireError(`expected open, got ${open.t}`);
    const img = await deps.image(open.d);
    if (!img) {
      await send(encodeChunkMsgParts({ t: 'unknown' }));
      await writing;
      await fs.closeWrite();
      return;
    }
    await send(encodeChunkMsgParts({ t: 'bits', b: img.bits.bytes.slice() }));
    unsubscribe = deps.subscribe(open.d, (indexes) => {
      for (let k = 0; k < indexes.length; k += MAX_INDEXES)
        void send(encodeChunkMsgParts({ t: 'have', i: indexes.slice(k, k + MAX_INDEXES) })).catch(
          () => {},
        );
    });
    for (;;) {
      const frame = await readFrame();
      if (!frame) break;
      const msg = decodeChunkMsg(frame);
      if (msg.t !== 'req') throw new WireError(`expected req, got ${msg.t}`);
      for (const i of msg.i)
        if (i >= img.index.size) throw new WireError(`chunk index ${i} out of range`);
      // chunks are read (and verified) up to READ_AHEAD ahead of the one being sent
      const load = async (i: number): Promise<Uint8Array | undefined> => {
        if (!img.bits.has(i)) return undefined;
        let data: Uint8Array | undefined;
        try {
          // a chunk stored moments ago comes from memory (hashed when it arrived)
          data = await deps.chunks.get(img.index.hashes[i], { recent: true });
        } catch (err) {
          if (err instanceof ChunkCorruptError) {
            deps.lost(open.d, i);
            return undefined;
          }
          // not known to be gone (the disk may come back): kept in our bitfield, missed this time
          deps.readFailed(err as Error);
          return undefined;
        }
        if (!data) deps.lost(open.d, i);
        return data;
      };
      const ahead: Array<Promise<Uint8Array | undefined>> = [];
      let next = 0;
      const fill = () => {
        while (next < msg.i.length && ahead.length < READ_AHEAD) {
          const p = load(msg.i[next++]);
          p.catch(() => {}); // seen when its turn comes
          ahead.push(p);
        }
      };
      for (const i of msg.i) {
        fill();
        const data = await ahead.shift()!;
        fill();
        if (!data) {
          await send(encodeChunkMsgParts({ t: 'miss', i }));
          continue;
        }
        for (const b of deps.buckets(peer)) await b.take(data.length, stopSignal);
        await send(encodeChunkMsgParts({ t: 'chunk', i, data }));
        deps.sent(peer, data.length);
      }
    }
    await writing;
    await fs.closeWrite();
  } catch (err) {
    if (err instanceof WireError) deps.badInput('chunks_wire');
    stream.abort(err as Error);
  } finally {
    unsubscribe?.();
  }
}
