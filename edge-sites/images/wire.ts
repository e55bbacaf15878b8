// Wire formats of image replication. Everything from a peer is decoded with a size limit and
// validated; anything else is a WireError, counted and dropped by the caller.
//
// /edgeswarm/chunks/1.0.0 — one stream per (puller, source, image), the puller writes:
//   {t:'open', d}            d = image digest          source answers {t:'bits', b} or {t:'unknown'}
//   {t:'req', i:[...]}       chunk indexes wanted      source answers {t:'chunk', i, data} or {t:'miss', i} each
//   and the source also sends {t:'have', i:[...]} as it gets new chunks of that image itself.
//   Every message is a CBOR map except the three that make up the traffic of a transfer, which are
//   binary (CBOR plus schema checks cost more than the transfer), each starting with a byte that
//   never starts a CBOR map: {t:'chunk'} is 0x01, the index as a big-endian u32, then the chunk
//   bytes; {t:'have'} is 0x02 and {t:'req'} 0x03, then the indexes as big-endian u32s (at most
//   MAX_INDEXES). The CBOR forms of 'have' and 'req' (what agents before 2026-12-03 sent) are
//   still read; those agents cannot read the binary ones.
// Chunk indexes count the image's distinct chunks in order of first appearance.
//
// /edgeswarm/images/1.0.0 — manifest anti-entropy and fetch:
//   {t:'hash', h} → {t:'same'} | {t:'heads', heads:[[name, tag, version, removed]...]}
//   {t:'get', refs:[[name, tag, version]...]} → {t:'records', list:[manifest or tombstone bytes]}
//
// Gossip topic edgeswarm/images/1:
//   {t:'head', n, g, v, r}   the sender holds NAME:TAG at version v (r: it is a removal)
//   {t:'progress', d, have, total, bytes, done}   the sender's copy of image d
import { decode, encode } from 'cborg';
import { z } from 'zod';

export const CHUNKS_PROTOCOL = '/edgeswarm/chunks/1.0.0';
export const IMAGES_PROTOCOL = '/edgeswarm/images/1.0.0';
export const IMAGES_TOPIC = 'edgeswarm/images/1';
/** Largest frame on the chunks protocol: a chunk (at most 128 KiB by default, 1 MiB by the store) plus a little. */
export const MAX_CHUNK_FRAME = 1024 * 1024 + 1024;
/** Largest frame on the images protocol: a list of manifests (a 40 GiB image has a 90 MiB manifest). */
export const MAX_IMAGES_FRAME = 128 * 1024 * 1024;
/** Most chunk indexes in one request or have message. */
export const MAX_INDEXES = 4096;

export class WireError extends Error {
  readonly code = 'image_wire';
  constructor(message: string) {
    super(message);
    this.name = 'WireError';
  }
}

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const idx = z
  .number()
  .int()
  .min(0)
  .max(1 << 22);
const digest = z.string().regex(/^sha256:[0-9a-f]{64}$/);
const name = z.string().min(1).max(256);
const tag = z.string().min(1).max(128);
const version = z.number().int().min(0);

const chunkMsg = z.discriminatedUnion('t', [
  z.object({ t: z.literal('open'), d: digest }).strict(),
  z.object({ t: z.literal('bits'), b: bytes }).strict(),
  z.object({ t: z.literal('unknown') }).strict(),
  z.object({ t: z.literal('req'), i: z.array(idx).max(MAX_INDEXES) }).strict(),
  z.object({ t: z.literal('chunk'), i: idx, data: bytes }).strict(),
  z.object({ t: z.literal('miss'), i: idx }).strict(),
  z.object({ t: z.literal('have'), i: z.array(idx).max(MAX_INDEXES) }).strict(),
]);
export type ChunkMsg = z.output<typeof chunkMsg>;

const imagesMsg = z.discriminatedUnion('t', [
  z.object({ t: z.literal('hash'), h: z.string().max(64) }).strict(),
  z.object({ t: z.literal('same') }).strict(),
  z
    .object({
      t: z.literal('heads'),
      heads: z.array(z.tuple([name, tag, version, z.boolean()])).max(100_000),
    })
    .strict(),
  z
    .object({ t: z.literal('get'), refs: z.array(z.tuple([name, tag, version])).max(1000) })
    .strict(),
  z.object({ t: z.literal('records'), list: z.array(bytes).max(1000) }).strict(),
]);
export type ImagesMsg = z.output<typeof imagesMsg>;

const gossipMsg = z.discriminatedUnion('t', [
  z.object({ t: z.literal('head'), n: name, g: tag, v: version, r: z.boolean() }).strict(),
  z
    .object({
      t: z.literal('progress'),
      d: digest,
      have: z.number().int().min(0),
      total: z.number().int().min(0),
      bytes: z.number().int().min(0),
      done: z.boolean(),
    })
    .strict(),
]);
export type ImagesGossip = z.output<typeof gossipMsg>;

function dec<S extends z.ZodType>(schema: S, b: Uint8Array, what: string): z.output<S> {
  try {
    return schema.parse(decode(b));
  } catch (err) {
    throw new WireError(`malformed ${what} message: ${(err as Error).message.slice(0, 160)}`);
  }
}

const CHUNK_TAG = 0x01;
const HAVE_TAG = 0x02;
const REQ_TAG = 0x03;
const MAX_INDEX = 1 << 22;

const indexList = (tag: number, indexes: readonly number[]): Uint8Array => {
  if (indexes.length > MAX_INDEXES)
    throw new RangeError(`${indexes.length} chunk indexes in one message (at most ${MAX_INDEXES})`);
  const out = new Uint8Array(1 + 4 * indexes.length);
  out[0] = tag;
  const view = new DataView(out.buffer);
  for (let k = 0; k < indexes.length; k++) view.setUint32(1 + 4 * k, indexes[k]);
  return out;
};

/**
 * A chunks-protocol message as the parts of one frame, for FramedStream.write: a chunk is its
 * 5-byte header and its bytes, not copied into a new buffer (one copy of every byte sent the
 * less; no change of a transfer's CPU showed through the noise of the loopback pull, see
 * docs/benchmarks.md).
 */
export const encodeChunkMsgParts = (m: ChunkMsg): readonly Uint8Array[] => {
  if (m.t === 'have') return [indexList(HAVE_TAG, m.i)];
  if (m.t === 'req') return [indexList(REQ_TAG, m.i)];
  if (m.t !== 'chunk') return [encode(m)];
  const head = new Uint8Array(5);
  head[0] = CHUNK_TAG;
  new DataView(head.buffer).setUint32(1, m.i);
  return [head, m.data];
};

/** A chunks-protocol message as one buffer. */
export const encodeChunkMsg = (m: ChunkMsg): Uint8Array => {
  const parts = encodeChunkMsgParts(m);
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts[0].length + parts[1].length);
  out.set(parts[0], 0);
  out.set(parts[1], parts[0].length);
  return out;
};

const decodeIndexList = (b: Uint8Array, view: DataView): number[] => {
  const n = (b.length - 1) / 4;
  if (!Number.isInteger(n))
    throw new WireError('malformed chunks message: index list not a whole number of u32s');
  if (n > MAX_INDEXES)
    throw new WireError(`malformed chunks message: ${n} indexes (at most ${MAX_INDEXES})`);
  const out = new Array<number>(n);
  for (let k = 0; k < n; k++) {
    const i = view.getUint32(1 + 4 * k);
    if (i > MAX_INDEX) throw new WireError(`malformed chunks message: chunk index ${i} too large`);
    out[k] = i;
  }
  return out;
};

export const decodeChunkMsg = (b: Uint8Array): ChunkMsg => {
  const tag = b.length === 0 ? -1 : b[0];
  if (tag !== CHUNK_TAG && tag !== HAVE_TAG && tag !== REQ_TAG) return dec(chunkMsg, b, 'chunks');
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (tag === HAVE_TAG) return { t: 'have', i: decodeIndexList(b, view) };
  if (tag === REQ_TAG) return { t: 'req', i: decodeIndexList(b, view) };
  if (b.length < 5) throw new WireError('malformed chunks message: truncated chunk header');
  const i = view.getUint32(1);
  if (i > MAX_INDEX) throw new WireError(`malformed chunks message: chunk index ${i} too large`);
  return { t: 'chunk', i, data: b.subarray(5) };
};
export const encodeImagesMsg = (m: ImagesMsg): Uint8Array => encode(m);
export const decodeImagesMsg = (b: Uint8Array): ImagesMsg => dec(imagesMsg, b, 'images');
export const encodeGossip = (m: ImagesGossip): Uint8Array => encode(m);
export const decodeGossip = (b: Uint8Array): ImagesGossip => dec(gossipMsg, b, 'images gossip');
