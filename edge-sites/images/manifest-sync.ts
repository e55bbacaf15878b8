// Manifest anti-entropy over /edgeswarm/images/1.0.0: compare heads (name:tag → newest version,
// removed or not) by hash, then by list, and fetch what the other side has newer. Manifests and
// tombstones travel signed by their creators and are verified before they are stored.
import { createHash } from 'node:crypto';
import type { Stream } from '@libp2p/interface';
import { FramedStream } from '../../membership/index.js';
import type { ImageHead } from '../../storage/images/index.js';
import { decodeImagesMsg, encodeImagesMsg, MAX_IMAGES_FRAME, WireError } from './wire.js';

export type HeadKey = string;
export const headKey = (name: string, tag: string): HeadKey => `${name}:${tag}`;

export function headsHash(heads: readonly ImageHead[]): string {
  const h = createHash('sha256');
  for (const x of [...heads].sort((a, b) =>
    headKey(a.name, a.tag) < headKey(b.name, b.tag) ? -1 : 1,
  )) {
    h.update(`${x.name}:${x.tag}:${x.version}:${x.removed ? 1 : 0}\n`);
  }
  return h.digest('hex').slice(0, 32);
}

export interface SyncDeps {
  heads(): Promise<ImageHead[]>;
  /** Encoded manifest (or tombstone when removed) of name:tag at version. */
  record(name: string, tag: string, version: number): Promise<Uint8Array | undefined>;
  /** A record from a peer: verify and store. */
  accept(bytes: Uint8Array): Promise<void>;
}

/** Serves one request on the images protocol. */
export async function serveImages(
  stream: Stream,
  deps: SyncDeps,
  signal: AbortSignal,
): Promise<void> {
  const fs = new FramedStream(stream, 1024 * 1024);
  const first = await fs.read(signal);
  if (!first) return;
  const msg = decodeImagesMsg(first);
  if (msg.t === 'hash') {
    const heads = await deps.heads();
    if (msg.h === headsHash(heads)) await fs.write(encodeImagesMsg({ t: 'same' }), signal);
    else
      await fs.write(
        encodeImagesMsg({
          t: 'heads',
          heads: heads.map((h) => [h.name, h.tag, h.version, h.removed]),
        }),
        signal,
      );
  } else if (msg.t === 'get') {
    const list: Uint8Array[] = [];
    for (const [name, tag, version] of msg.refs) {
      const r = await deps.record(name, tag, version);
      if (r) list.push(r);
    }
    await fs.write(encodeImagesMsg({ t: 'records', list }), signal);
  } else {
    throw new WireError(`unexpected ${msg.t}`);
  }
  await fs.closeWrite();
}

async function ask(
  open: () => Promise<Stream>,
  msg: Parameters<typeof encodeImagesMsg>[0],
  signal: AbortSignal,
) {
  const fs = new FramedStream(await open(), MAX_IMAGES_FRAME);
  try {
    await fs.write(encodeImagesMsg(msg), signal);
    return decodeImagesMsg(await fs.readOne(signal));
  } finally {
    await fs.closeWrite();
  }
}

/** Fetches given records from a peer and hands them to accept(). */
export async function fetchRecords(
  open: () => Promise<Stream>,
  refs: Array<[string, string, number]>,
  deps: SyncDeps,
  signal: AbortSignal,
): Promise<number> {
  if (refs.length === 0) return 0;
  const reply = await ask(open, { t: 'get', refs }, signal);
  if (reply.t !== 'records') throw new WireError(`unexpected ${reply.t}`);
  for (const r of reply.list) await deps.accept(r);
  return reply.list.length;
}

/** One anti-entropy round with a peer: returns the number of records fetched. */
export async function syncImages(
  open: () => Promise<Stream>,
  deps: SyncDeps,
  signal: AbortSignal,
): Promise<number> {
  const mine = await deps.heads();
  const reply = await ask(open, { t: 'hash', h: headsHash(mine) }, signal);
  if (reply.t === 'same') return 0;
  if (reply.t !== 'heads') throw new WireError(`unexpected ${reply.t}`);
  // a tombstone at version V removes every version up to V, so it outranks the manifest of V
  const rank = (v: number, removed: boolean) => v * 2 + (removed ? 1 : 0);
  const have = new Map(mine.map((h) => [headKey(h.name, h.tag), rank(h.version, h.removed)]));
  const want: Array<[string, string, number]> = [];
  for (const [name, tag, version, removed] of reply.heads)
    if ((have.get(headKey(name, tag)) ?? -1) < rank(version, removed))
      want.push([name, tag, version]);
  let n = 0;
  for (let i = 0; i < want.length; i += 100)
    n += await fetchRecords(open, want.slice(i, i + 100), deps, signal);
  return n;
}
