// Catalog anti-entropy between real libp2p nodes (loopback, no agents): catalog services whose
// membership is a stand-in that knows the nodes it is told about.
// - Catalogs to send far over the sync frame limit (30 of ~400 KB, 8 MiB frames) still all go
//   through, in frames under the limit, both when pushed and when asked for.
// - A catalog signed by a node membership never learns is held, never relayed nor stored, and
//   dropped (counted) once the hold runs out.
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, describe, expect, it } from 'vitest';
import type { EdgeNode } from '../../agent/node.js';
import { encodeNodeCatalog } from '../../membership/catalog/codec.js';
import { CatalogService, type CatalogComponents } from '../../membership/catalog/service.js';
import type { NodeCatalog } from '../../membership/catalog/types.js';
import { MemoryStore } from '../../storage/index.js';
import { generateClusterKey, parseClusterKey } from '../../agent/identity.js';
import { createNode } from '../../agent/node.js';
import { stopNodes } from '../helpers/nodes.js';
import { waitFor } from '../helpers/wait.js';

const running: { nodes: EdgeNode[]; services: CatalogService[] } = { nodes: [], services: [] };
afterEach(async () => {
  for (const s of running.services.splice(0)) await s.stop();
  await stopNodes(running.nodes.splice(0));
});

/** A catalog service on `node`; its membership knows exactly the ids in `members`. */
async function catalogOn(
  node: EdgeNode,
  key: PrivateKey,
  members: Set<string>,
  store = new MemoryStore(),
  unknownNodeHoldMs?: number,
) {
  const bad: string[] = [];
  const components = {
    node,
    privateKey: key,
    store,
    advertiseAddress: '127.0.0.1',
    onBadInput: (protocol: string, reason: string) => bad.push(`${protocol} ${reason}`),
    logger: { debug() {}, info() {}, warn() {} },
    membership: {
      selfId: node.peerId.toString(),
      selfSite: 'a',
      state: (id: string) => (members.has(id) ? 'alive' : undefined),
      members: () => [...members].map((id) => ({ id, state: 'alive' })),
      name: (id: string) => id.slice(-6),
      site: (id: string) => (members.has(id) ? 'a' : undefined),
      stateChangedAt: () => 0,
      rtt: () => 1,
      load: () => 0,
      siteReachable: () => true,
      randomPeer: () => undefined,
    },
  } as unknown as CatalogComponents;
  const svc = new CatalogService(components, {
    dhtAnnounce: false,
    syncIntervalMs: 3_600_000,
    saveDelayMs: 0,
    unknownNodeHoldMs,
  });
  await svc.start();
  running.services.push(svc);
  return { svc, store, bad };
}

/** A signed catalog of a new node, of ~`services` × 450 bytes. */
async function bigCatalog(services: number): Promise<{ id: string; bytes: Uint8Array }> {
  const key = await generateKeyPair('Ed25519');
  const node = peerIdFromPrivateKey(key).toString();
  const c: NodeCatalog = {
    node,
    version: 1,
    services: Array.from({ length: services }, (_, i) => ({
      id: `s${i}`,
      name: `svc-${i}`,
      address: '10.0.0.1',
      port: 8000 + (i % 1000),
      tags: ['edge'],
      meta: { note: 'x'.repeat(380) },
      health: 'passing' as const,
    })),
  };
  return { id: node, bytes: await encodeNodeCatalog(c, key) };
}

/** `n` libp2p nodes on loopback that know each other's addresses, with their keys. */
async function startNodes(n: number) {
  const psk = parseClusterKey(generateClusterKey(), 'test');
  const out: Array<{ node: EdgeNode; key: PrivateKey; id: string }> = [];
  for (let i = 0; i < n; i++) {
    const key = await generateKeyPair('Ed25519');
    const node = await createNode({ privateKey: key, psk, listen: ['/ip4/127.0.0.1/tcp/0'] });
    await node.start();
    running.nodes.push(node);
    out.push({ node, key, id: node.peerId.toString() });
  }
  for (const a of out)
    for (const b of out)
      if (a !== b)
        await a.node.peerStore.merge(b.node.peerId, { multiaddrs: b.node.getMultiaddrs() });
  return out;
}

describe('catalog anti-entropy', () => {
  it('moves catalogs totalling well over the 8 MiB frame limit, asked for and pushed', async () => {
    const [pa, pb, pc] = await startNodes(3);
    const cats = await Promise.all(Array.from({ length: 30 }, () => bigCatalog(900)));
    const total = cats.reduce((n, c) => n + c.bytes.length, 0);
    expect(total).toBeGreaterThan(11 * 1024 * 1024);
    const members = new Set([pa!.id, pb!.id, pc!.id, ...cats.map((c) => c.id)]);
    // a holds them all (from its store, as after a restart)
    const storeA = new MemoryStore();
    for (const c of cats) await storeA.put(`node/${c.id}`, c.bytes);
    const a = await catalogOn(pa!.node, pa!.key, members, storeA);
    const b = await catalogOn(pb!.node, pb!.key, members);
    const c = await catalogOn(pc!.node, pc!.key, members);
    expect(a.svc.state.size).toBe(31);

    // b asks a for them (a's replies would be the big frames)
    for (let i = 0; i < 3 && !b.svc.state.get(cats[29]!.id); i++) await b.svc.syncNow(pa!.id);
    // a pushes them to c (a's exchanges would be the big frames)
    for (let i = 0; i < 3 && !c.svc.state.get(cats[29]!.id); i++) await a.svc.syncNow(pc!.id);
    for (const cat of cats) {
      expect(b.svc.state.get(cat.id)?.version).toBe(1);
      expect(c.svc.state.get(cat.id)?.version).toBe(1);
    }
    // and the agents' own catalogs, then all three hold the same
    await b.svc.syncNow(pc!.id);
    await a.svc.syncNow(pb!.id);
    await a.svc.syncNow(pc!.id);
    const hashes = [a, b, c].map((s) => s.svc.state.digestHash());
    expect(new Set(hashes).size).toBe(1);
    expect(a.svc.state.size).toBe(33);
    expect([...a.bad, ...b.bad, ...c.bad]).toEqual([]);
  }, 60_000);

  it('catalogs the other side only holds (nodes it does not know yet) do not stall a round', async () => {
    // the same first 2 MiB went out in every exchange of the round while the member held them
    // instead of storing them, so the catalogs behind them never got through
    const [pa, pc] = await startNodes(2);
    const known = await Promise.all(Array.from({ length: 8 }, () => bigCatalog(900)));
    const strangers = await Promise.all(Array.from({ length: 8 }, () => bigCatalog(900)));
    const storeA = new MemoryStore();
    for (const x of [...known, ...strangers]) await storeA.put(`node/${x.id}`, x.bytes);
    const ids = (xs: Array<{ id: string }>) => xs.map((x) => x.id);
    const a = await catalogOn(
      pa!.node,
      pa!.key,
      new Set([pa!.id, pc!.id, ...ids(known), ...ids(strangers)]),
      storeA,
    );
    const c = await catalogOn(pc!.node, pc!.key, new Set([pa!.id, pc!.id, ...ids(known)]));
    expect(await a.svc.syncNow(pc!.id)).toBe(true);
    for (const x of known) expect(c.svc.state.get(x.id)?.version).toBe(1);
    for (const x of strangers) expect(c.svc.state.get(x.id)).toBeUndefined();
  }, 60_000);

  it('a catalog signed by an identity that never joins is not stored by a member, nor relayed to a third', async () => {
    const [pa, pb, pc] = await startNodes(3);
    const stranger = await bigCatalog(10);
    const members = new Set([pa!.id, pb!.id, pc!.id]);
    // b takes the stranger for a member (an agent without this check, or one pushing on purpose)
    const storeB = new MemoryStore();
    await storeB.put(`node/${stranger.id}`, stranger.bytes);
    const b = await catalogOn(pb!.node, pb!.key, new Set([...members, stranger.id]), storeB);
    const storeA = new MemoryStore();
    const a = await catalogOn(pa!.node, pa!.key, members, storeA, 300);
    const c = await catalogOn(pc!.node, pc!.key, members);
    expect(b.svc.state.get(stranger.id)).toBeDefined();
    // b pushes it to a, then c takes everything a has
    await b.svc.syncNow(pa!.id);
    expect(a.svc.state.get(pb!.id)).toBeDefined();
    await c.svc.syncNow(pa!.id);
    expect(c.svc.state.get(pb!.id)).toBeDefined();
    expect(a.svc.state.get(stranger.id)).toBeUndefined();
    expect(c.svc.state.get(stranger.id)).toBeUndefined();
    // a drops it once the hold is over, and counts it; it never reached a's disk
    await waitFor(() => a.bad.length > 0, { timeout: 5000, message: 'the held catalog dropped' });
    expect(a.bad).toEqual(['catalog unknown_node']);
    await a.svc.stop();
    expect(await storeA.get(`node/${stranger.id}`)).toBeUndefined();
    expect(c.bad).toEqual([]);
  }, 30_000);
});
