// The source side of the chunks protocol (serveChunks), driven over an in-memory stream pair: a
// large set of new chunks is told to the puller in several 'have' messages, each within
// MAX_INDEXES, and chunks stored moments ago are served from the store's recent-chunks ring
// without a pack read, while a chunk whose bytes in the ring were overwritten comes from disk.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { streamPair } from '@libp2p/utils';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Bitfield } from '../../../edge-sites/images/bitfield.js';
import { ImageIndex } from '../../../edge-sites/images/image-index.js';
import { serveChunks, type ServedImage } from '../../../edge-sites/images/server.js';
import { TokenBucket } from '../../../edge-sites/images/token-bucket.js';
import {
  decodeChunkMsg,
  encodeChunkMsg,
  MAX_CHUNK_FRAME,
  MAX_INDEXES,
  type ChunkMsg,
} from '../../../edge-sites/images/wire.js';
import { FramedStream } from '../../../membership/index.js';
import { ChunkStore, sha256Hex } from '../../../storage/chunks/index.js';
import { PackSet } from '../../../storage/chunks/pack-set.js';

let dir: string;
let store: ChunkStore | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'es-chunk-server-'));
});
afterEach(async () => {
  vi.restoreAllMocks();
  await store?.close();
  store = undefined;
  await rm(dir, { recursive: true, force: true });
});

const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** An image of these chunks, every one of them held here. */
function servedImage(chunks: ReadonlyArray<{ hash: string; size: number }>): ServedImage {
  const index = new ImageIndex({ digest: DIGEST, chunks: [...chunks] });
  const bits = new Bitfield(index.size);
  for (let i = 0; i < index.size; i++) bits.set(i);
  return { index, bits };
}

/**
 * Runs serveChunks on one end of a stream pair and opens the image from the other, as a puller
 * does. Returns the puller's side, the registered have-callback and the server's run.
 */
async function connect(chunks: ChunkStore, img: ServedImage) {
  const [pullerEnd, sourceEnd] = await streamPair();
  let onHave: ((indexes: number[]) => void) | undefined;
  let subscribed!: () => void;
  const isSubscribed = new Promise<void>((resolve) => (subscribed = resolve));
  const stop = new AbortController();
  const served = serveChunks(
    sourceEnd,
    'puller',
    {
      chunks,
      image: async (d) => (d === DIGEST ? img : undefined),
      buckets: () => [new TokenBucket(0)],
      lost: () => {},
      subscribe: (_d, fn) => {
        onHave = fn;
        subscribed();
        return () => {};
      },
      sent: () => {},
      badInput: () => {},
      readFailed: () => {},
    },
    stop.signal,
  );
  const fs = new FramedStream(pullerEnd, MAX_CHUNK_FRAME);
  await fs.write(encodeChunkMsg({ t: 'open', d: DIGEST }));
  expect(decodeChunkMsg(await fs.readOne()).t).toBe('bits');
  await isSubscribed;
  /** Ends the session: the puller closes, the server finishes. */
  const close = async () => {
    await fs.closeWrite();
    await served;
    stop.abort();
  };
  return { fs, have: (indexes: number[]) => onHave!(indexes), close };
}

function chunk(n: number): { hash: string; bytes: Uint8Array } {
  const bytes = randomBytes(n);
  return { hash: sha256Hex(bytes), bytes };
}

/** Requests chunks by index and returns what came back, in order. */
async function request(fs: FramedStream, indexes: number[]): Promise<ChunkMsg[]> {
  await fs.write(encodeChunkMsg({ t: 'req', i: indexes }));
  const out: ChunkMsg[] = [];
  for (let k = 0; k < indexes.length; k++) out.push(decodeChunkMsg(await fs.readOne()));
  return out;
}

describe('serveChunks', () => {
  // Proves the have split: a have set of more than MAX_INDEXES indexes reaches the puller whole,
  // in order, in several messages none of which is over MAX_INDEXES (a single message that large
  // could not be encoded, and a puller would refuse it).
  it('tells a have set larger than MAX_INDEXES in several messages, each within the limit, none lost', async () => {
    const n = 2 * MAX_INDEXES + 7;
    store = await ChunkStore.open(dir, { sync: false });
    const img = servedImage(
      Array.from({ length: n }, (_, i) => ({ hash: sha256Hex(Buffer.from(`c${i}`)), size: 1 })),
    );
    const { fs, have, close } = await connect(store, img);
    // a batch of new chunks, in no particular order
    const got = Array.from({ length: n }, (_, k) => (k * 7919) % n);
    expect(new Set(got).size).toBe(n);
    have(got);
    const seen: number[] = [];
    let messages = 0;
    while (seen.length < n) {
      const frame = await fs.readOne(AbortSignal.timeout(5000)).catch((err: Error) => {
        throw new Error(`only ${seen.length} of ${n} indexes arrived (${err.message})`);
      });
      expect(frame.length).toBeLessThanOrEqual(1 + 4 * MAX_INDEXES);
      const msg = decodeChunkMsg(frame);
      if (msg.t !== 'have') throw new Error(`expected have, got ${msg.t}`);
      expect(msg.i.length).toBeGreaterThan(0);
      expect(msg.i.length).toBeLessThanOrEqual(MAX_INDEXES);
      seen.push(...msg.i);
      messages++;
    }
    expect(messages).toBeGreaterThanOrEqual(Math.ceil(n / MAX_INDEXES));
    expect(seen).toEqual(got);
    await close();
  });

  // Proves the server reads from the recent-chunks ring: chunks just stored are served with no
  // pack read at all, and a chunk whose ring bytes were overwritten by later chunks is read from
  // its pack and served with its own (correct) bytes.
  it('serves chunks just stored from memory without a pack read, and an overwritten one from disk', async () => {
    // a ring of 100,000 bytes holds three 30,000-byte chunks; the fourth wraps over the first
    store = await ChunkStore.open(dir, { sync: false, recentBytes: 100_000 });
    const cs = [chunk(30_000), chunk(30_000), chunk(30_000), chunk(30_000)];
    const img = servedImage(cs.map((c) => ({ hash: c.hash, size: c.bytes.length })));
    for (const c of cs.slice(0, 3)) await store.put(c.hash, c.bytes);
    const reads = vi.spyOn(PackSet.prototype, 'readRecord');
    const { fs, close } = await connect(store, img);
    const same = (m: ChunkMsg, i: number) =>
      m.t === 'chunk' && m.i === i && Buffer.from(m.data).equals(cs[i].bytes);

    const first = await request(fs, [0, 1, 2]);
    expect(first.map((m, k) => same(m, k))).toEqual([true, true, true]);
    expect(reads).not.toHaveBeenCalled();

    // chunk 3 goes into the ring where chunk 0's bytes were
    await store.put(cs[3].hash, cs[3].bytes);
    const [again0] = await request(fs, [0]);
    expect(same(again0, 0), 'chunk 0 served with its own bytes').toBe(true);
    expect(reads).toHaveBeenCalledTimes(1);
    expect(reads.mock.calls[0][0]).toBe(cs[0].hash);
    // the chunks still in the ring are still served from it
    const rest = await request(fs, [1, 2, 3]);
    expect(rest.map((m, k) => same(m, k + 1))).toEqual([true, true, true]);
    expect(reads).toHaveBeenCalledTimes(1);
    await close();
  });
});
