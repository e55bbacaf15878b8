// Fetching announced manifests (ImageService, with a stand-in node: gossip is dispatched by hand and
// every dial on the images protocol is answered from an in-memory stream pair). Every agent that
// stores a new version announces it, so several announcements of one version arrive together: the
// version is fetched from the first announcer only. If that fetch fails, the version is fetched
// again: by the next announcement of it, and by anti-entropy.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PeerId, PrivateKey, Stream } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { streamPair } from '@libp2p/utils';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { serveImages } from '../../../edge-sites/images/manifest-sync.js';
import type { ImageComponents } from '../../../edge-sites/images/options.js';
import { ImageService } from '../../../edge-sites/images/service.js';
import { encodeGossip, IMAGES_PROTOCOL, IMAGES_TOPIC } from '../../../edge-sites/images/wire.js';
import { encodeManifest, signManifest, type Manifest } from '../../../storage/images/index.js';
import { MemoryStore } from '../../../storage/index.js';
import { sleep, waitFor } from '../../helpers/wait.js';
import { standInNode, standInPubsub } from '../../helpers/stand-in.js';

const NAME = 'edge/app';
const TAG = 'v1';

let creator: PrivateKey;
let manifest: Manifest;
beforeAll(async () => {
  creator = await generateKeyPair('Ed25519');
  manifest = await signManifest(
    {
      name: NAME,
      tag: TAG,
      digest: `sha256:${'cd'.repeat(32)}`,
      size: 10,
      chunks: [{ hash: 'ef'.repeat(32), size: 10 }],
      createdAt: 1000,
      version: 1,
      // placed in another site: this agent only stores the manifest, it pulls nothing
      placement: { sites: ['elsewhere'], copies: 1 },
    },
    creator,
  );
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** What one dial on the images protocol was for, as the peer saw it. */
interface Dial {
  peer: string;
  /** The requests it served ('hash' for an anti-entropy round, 'get' for a fetch). */
  served: string[];
  failed: boolean;
}

/**
 * An image service whose dials on the images protocol go to `answer`: it may hold the dial (a
 * promise), refuse it (throw), or let it through to a peer serving `manifest`.
 */
async function service(opts: {
  peers: string[];
  answer?: (dial: Dial, index: number) => Promise<void> | void;
  syncIntervalMs?: number;
  randomPeer?: () => string | undefined;
}) {
  const self = await generateKeyPair('Ed25519');
  const selfId = peerIdFromPrivateKey(self).toString();
  const dir = await mkdtemp(join(tmpdir(), 'es-manifest-fetch-'));
  const pubsub = standInPubsub();
  const dials: Dial[] = [];
  const dialProtocol = async (peer: PeerId, protocol: string): Promise<Stream> => {
    if (protocol !== IMAGES_PROTOCOL) throw new Error(`no ${protocol} in this test`);
    const dial: Dial = { peer: peer.toString(), served: [], failed: false };
    dials.push(dial);
    try {
      await opts.answer?.(dial, dials.length - 1);
    } catch (err) {
      dial.failed = true;
      throw err;
    }
    const [local, remote] = await streamPair();
    // the peer holds the manifest
    void serveImages(
      remote,
      {
        heads: async () => {
          dial.served.push('hash');
          return [{ name: NAME, tag: TAG, version: manifest.version, removed: false }];
        },
        record: async (name, tag, version) => {
          dial.served.push('get');
          return name === NAME && tag === TAG && version === manifest.version
            ? encodeManifest(manifest)
            : undefined;
        },
        accept: async () => {},
      },
      AbortSignal.timeout(10_000),
    ).catch(() => {});
    return local;
  };
  const members = [selfId, ...opts.peers].map((id) => ({
    id,
    name: id.slice(-6),
    site: 'here',
    state: 'alive' as const,
  }));
  const components = {
    privateKey: self,
    store: new MemoryStore(),
    chunkDir: dir,
    logger: { debug() {}, info() {}, warn() {} },
    node: standInNode(self, pubsub, dialProtocol),
    membership: {
      selfId,
      selfSite: 'here',
      members: () => members,
      site: () => 'here',
      state: () => 'alive',
      rtt: () => 1,
      randomPeer: opts.randomPeer ?? (() => undefined),
      addEventListener() {},
      removeEventListener() {},
    },
  } as unknown as ImageComponents; // only what the manifest path uses; pubsub and dht are stand-ins
  const svc = new ImageService(components, { syncIntervalMs: opts.syncIntervalMs ?? 3_600_000 });
  await svc.start();
  cleanups.push(async () => {
    await svc.stop();
    await rm(dir, { recursive: true, force: true });
  });
  /** `from` announces that it stores version 1 of NAME:TAG (a signed gossip message). */
  const announce = (from: PeerId) =>
    pubsub.dispatchEvent(
      new CustomEvent('message', {
        detail: {
          topic: IMAGES_TOPIC,
          data: encodeGossip({ t: 'head', n: NAME, g: TAG, v: manifest.version, r: false }),
          type: 'signed',
          from,
        },
      }),
    );
  const stored = () =>
    waitFor(() => svc.manifests.get(NAME, TAG), {
      timeout: 5000,
      message: 'the manifest to be stored',
    });
  return { svc, dials, announce, stored };
}

async function peers(n: number): Promise<PeerId[]> {
  const out: PeerId[] = [];
  for (let k = 0; k < n; k++) out.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')));
  return out;
}

describe('announced manifests', () => {
  // Proves the dedupe: three announcements of one version while the first fetch is under way
  // make one fetch, from the first announcer; once stored, a later announcement fetches nothing.
  it('fetches a version announced by several peers once, from the first announcer', async () => {
    const [a, b, c, d] = await peers(4);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const { dials, announce, stored } = await service({
      peers: [a, b, c, d].map(String),
      answer: () => held, // the first fetch waits until the others have been announced
    });
    announce(a);
    announce(b);
    announce(c);
    await waitFor(() => dials.length > 0);
    await sleep(100); // time for the other two announcements to be handled
    release();
    expect((await stored()).version).toBe(1);
    announce(d);
    await sleep(100);
    expect(dials.map((x) => x.peer)).toEqual([a.toString()]);
    expect(dials[0].served).toEqual(['get']);
  });

  // Proves a failed fetch is not the end: the version is not marked as being fetched any more,
  // so the next announcement of it (here from another peer) fetches it.
  it('fetches an announced version again when the first fetch failed', async () => {
    const [a, b] = await peers(2);
    const { dials, announce, stored } = await service({
      peers: [a, b].map(String),
      answer: (_dial, k) => {
        if (k === 0) throw new Error('connection refused');
      },
    });
    announce(a);
    await waitFor(() => dials[0]?.failed);
    // b announces until it is dialled: an announcement while the failed fetch is still winding
    // down is one of a version being fetched, and is dropped like any other
    await waitFor(
      () => {
        if (dials.length < 2) announce(b);
        return dials.length >= 2;
      },
      { timeout: 5000, interval: 20, message: 'b to be dialled' },
    );
    expect((await stored()).version).toBe(1);
    expect(dials.map((x) => [x.peer, x.failed, x.served])).toEqual([
      [a.toString(), true, []],
      [b.toString(), false, ['get']],
    ]);
  });

  // Proves anti-entropy repairs a failed fetch with no further announcement: the next round with
  // a peer that holds the version (here the announcer itself, reachable again) brings it.
  it('gets the version by anti-entropy when the fetch from the announcer failed', async () => {
    const [a] = await peers(1);
    const { dials, announce, stored } = await service({
      peers: [a.toString()],
      answer: (_dial, k) => {
        if (k === 0) throw new Error('connection reset');
      },
      syncIntervalMs: 200,
      randomPeer: () => a.toString(),
    });
    announce(a);
    expect((await stored()).version).toBe(1);
    expect(dials[0]).toEqual({ peer: a.toString(), served: [], failed: true });
    // the manifest came in an anti-entropy round: heads compared, then the version fetched (each
    // a dial of its own)
    expect(
      dials
        .slice(1)
        .flatMap((x) => x.served)
        .slice(0, 2),
    ).toEqual(['hash', 'get']);
  });
});
