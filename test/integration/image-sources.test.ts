// A pull from two sources, one of which serves wrong bytes: every chunk is verified before it is
// stored, the lying source is dropped and reported, and the pull completes from the honest one.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { EdgeNode } from '../../agent/node.js';
import { Bitfield } from '../../edge-sites/images/bitfield.js';
import { ImageIndex } from '../../edge-sites/images/image-index.js';
import { Pull } from '../../edge-sites/images/puller.js';
import { serveChunks } from '../../edge-sites/images/server.js';
import { TokenBucket } from '../../edge-sites/images/token-bucket.js';
import { CHUNKS_PROTOCOL, decodeChunkMsg, encodeChunkMsg } from '../../edge-sites/images/wire.js';
import { FramedStream } from '../../membership/index.js';
import { ChunkStore } from '../../storage/chunks/index.js';
import { importImage, type Manifest } from '../../storage/images/index.js';
import { startNodes, stopNodes } from '../helpers/nodes.js';
import { tempDir } from '../../bench/harness/test-cluster.js';

let nodes: EdgeNode[] = [];
const cleanups: Array<() => void | Promise<void>> = [];
afterEach(async () => {
  await stopNodes(nodes);
  nodes = [];
  for (const c of cleanups.splice(0)) await c();
});

describe('pulling from a source that lies', () => {
  it('drops the source that serves wrong bytes and completes from the honest one', async () => {
    nodes = await startNodes(3);
    const [liar, honest, puller] = nodes;
    const d1 = tempDir('es-src-');
    const d2 = tempDir('es-dst-');
    cleanups.push(d1.cleanup, d2.cleanup);
    const srcStore = await ChunkStore.open(d1.dir);
    const dstStore = await ChunkStore.open(d2.dir);
    cleanups.push(
      () => srcStore.close(),
      () => dstStore.close(),
    );
    const data = randomBytes(2 * 1024 * 1024);
    const r = await importImage([data], srcStore);
    const m = { digest: r.digest, chunks: r.chunks } as Pick<Manifest, 'digest' | 'chunks'>;
    const index = new ImageIndex(m);
    const full = new Bitfield(index.size);
    for (let i = 0; i < index.size; i++) full.set(i);

    // the liar claims every chunk and answers every request with random bytes
    await liar.handle(CHUNKS_PROTOCOL, async (stream) => {
      const fs = new FramedStream(stream, 1 << 20);
      try {
        await fs.readOne();
        await fs.write(encodeChunkMsg({ t: 'bits', b: full.bytes }));
        for (;;) {
          const f = await fs.read();
          if (!f) break;
          const msg = decodeChunkMsg(f);
          if (msg.t === 'req')
            for (const i of msg.i)
              await fs.write(encodeChunkMsg({ t: 'chunk', i, data: randomBytes(index.sizes[i]) }));
        }
      } catch {
        // dropped by the puller
      }
    });
    const stop = new AbortController();
    await honest.handle(
      CHUNKS_PROTOCOL,
      (stream, conn) =>
        void serveChunks(
          stream,
          conn.remotePeer.toString(),
          {
            chunks: srcStore,
            image: async (digest) => (digest === m.digest ? { index, bits: full } : undefined),
            buckets: () => [new TokenBucket(0)],
            lost: () => {},
            subscribe: () => () => {},
            sent: () => {},
            badInput: () => {},
          },
          stop.signal,
        ),
    );
    cleanups.push(() => stop.abort());

    const bad: string[] = [];
    const ids = [liar.peerId.toString(), honest.peerId.toString()];
    const pull = new Pull(index, new Bitfield(index.size), {
      chunks: dstStore,
      sources: () => ids,
      open: (peer, signal) =>
        puller.dialProtocol(
          nodes.find((n) => n.peerId.toString() === peer)!.peerId,
          CHUNKS_PROTOCOL,
          { signal },
        ),
      gotChunk: () => {},
      received: () => {},
      badSource: (peer) => bad.push(peer),
      log: { debug: () => {}, info: () => {} },
    });
    await pull.run(AbortSignal.timeout(30_000));
    expect(pull.complete).toBe(true);
    expect(bad).toContain(liar.peerId.toString());
    for (const h of index.hashes) expect(await dstStore.has(h)).toBe(true);
  });
});
