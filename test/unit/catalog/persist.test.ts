// Remote catalogs are answered and watched as soon as they arrive; their disk copy follows (the
// changes of one save delay in one batch, stop() writing at once), and the store always ends with
// the newest version memory holds, even when versions arrive while a slow write is under way. A
// service started again from that store answers at once. A local registration is broadcast while
// it is written, and register() returns once it is durable.
// A catalog gossiped by its own node is taken on gossipsub's signature alone; relayed, it is checked.
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { afterEach, describe, expect, it } from 'vitest';
import { decode, encode } from 'cborg';
import { decodeNodeCatalog, encodeNodeCatalog } from '../../../membership/catalog/codec.js';
import { CATALOG_TOPIC } from '../../../membership/catalog/replication.js';
import {
  CatalogService,
  type CatalogChange,
  type CatalogComponents,
} from '../../../membership/catalog/service.js';
import type { NodeCatalog } from '../../../membership/catalog/types.js';
import { MemoryStore, type BatchOp, type KvStore } from '../../../storage/index.js';
import { standInNode, standInPubsub } from '../../helpers/stand-in.js';
import { waitFor } from '../../helpers/wait.js';

/** A MemoryStore whose writes wait until released, recording what each one wrote. */
class SlowStore extends MemoryStore {
  readonly batches: BatchOp[][] = [];
  gate: Promise<void> = Promise.resolve();
  /** Writes of a registration (keys `local/...`) wait for this one when it is set. */
  localGate: Promise<void> | undefined;

  #gateFor(key: string): Promise<void> {
    return key.startsWith('local/') && this.localGate ? this.localGate : this.gate;
  }

  override async put(key: string, value: Uint8Array): Promise<void> {
    await this.#gateFor(key);
    this.batches.push([{ type: 'put', key, value }]);
    return super.put(key, value);
  }

  override async del(key: string): Promise<void> {
    await this.#gateFor(key);
    this.batches.push([{ type: 'del', key }]);
    return super.del(key);
  }

  override async batch(ops: readonly BatchOp[]): Promise<void> {
    await this.gate;
    this.batches.push([...ops]);
    return super.batch(ops);
  }
}

const stopped: CatalogService[] = [];
afterEach(async () => {
  for (const s of stopped.splice(0)) await s.stop();
});

/**
 * A catalog service over `store`; received catalogs are written `saveDelayMs` after they came.
 * `bad` lists every message it dropped as invalid (protocol and reason).
 */
async function service(
  store: KvStore,
  saveDelayMs = 0,
  known: string[] = [],
  unknownNodeHoldMs?: number,
) {
  const bad: string[] = [];
  const logged: string[] = [];
  const self = await generateKeyPair('Ed25519');
  const published: Uint8Array[] = [];
  const pubsub = standInPubsub(published);
  const members = new Set<string>(known);
  const components = {
    privateKey: self,
    store,
    advertiseAddress: '127.0.0.1',
    onBadInput: (protocol: string, reason: string) => bad.push(`${protocol} ${reason}`),
    logger: {
      debug() {},
      info: (_o: object, m: string) => logged.push(`info ${m}`),
      warn: (_o: object, m: string) => logged.push(`warn ${m}`),
    },
    node: standInNode(self, pubsub),
    membership: {
      selfId: peerIdFromPrivateKey(self).toString(),
      selfSite: 'a',
      state: (id: string) => (members.has(id) ? 'alive' : undefined),
      members: () => [...members].map((id) => ({ id, state: 'alive' })),
      name: (id: string) => id.slice(-6),
      site: (id: string) => (members.has(id) ? 'b' : undefined),
      stateChangedAt: () => 0,
      rtt: () => 1,
      load: () => 0,
      siteReachable: () => true,
      randomPeer: () => undefined,
    },
  } as unknown as CatalogComponents; // only what the catalog uses; pubsub is an EventTarget stand-in
  const svc = new CatalogService(components, {
    dhtAnnounce: false,
    syncIntervalMs: 3_600_000,
    saveDelayMs,
    unknownNodeHoldMs,
  });
  await svc.start();
  stopped.push(svc);
  /** A gossip message; `from` makes it a signed one gossipsub has verified as that member's. */
  const gossip = (data: Uint8Array, from?: PeerId) =>
    pubsub.dispatchEvent(
      new CustomEvent('message', {
        detail: { topic: CATALOG_TOPIC, data, ...(from ? { type: 'signed', from } : {}) },
      }),
    );
  return { svc, members, gossip, published, bad, logged };
}

/** A new node key, known to membership as alive. */
async function newMember(members: Set<string>) {
  const peer = await generateKeyPair('Ed25519');
  const peerId = peerIdFromPrivateKey(peer).toString();
  members.add(peerId);
  return { peer, peerId };
}

async function catalogOf(key: PrivateKey, version: number, port: number): Promise<Uint8Array> {
  const node = peerIdFromPrivateKey(key).toString();
  const c: NodeCatalog = {
    node,
    version,
    services: [
      {
        id: 'web',
        name: 'web',
        address: '10.0.0.1',
        port,
        tags: [],
        meta: {},
        health: 'passing',
      },
    ],
  };
  return encodeNodeCatalog(c, key);
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(cond()).toBe(true);
};

describe('catalog persistence', () => {
  it('answers and emits before the write lands; the store ends with the newest version', async () => {
    const store = new SlowStore();
    const { svc, members, gossip } = await service(store);
    const { peer, peerId } = await newMember(members);
    const changes: CatalogChange[] = [];
    svc.addEventListener('change', (e) => changes.push((e as CustomEvent<CatalogChange>).detail));

    let release!: () => void;
    store.gate = new Promise<void>((r) => (release = r));
    store.batches.length = 0;
    for (const v of [1, 2, 3]) {
      gossip(await catalogOf(peer, v, 8000 + v));
      await until(() => changes.length === v);
    }
    // all three versions were visible while no write had finished
    expect(store.batches).toEqual([]);
    expect(changes.map((c) => c.version)).toEqual([1, 2, 3]);
    expect(changes.map((c) => c.via)).toEqual(['gossip', 'gossip', 'gossip']);
    const answer = svc.discoverLocal({ name: 'web', strategy: 'nearest' });
    expect(answer.map((i) => i.port)).toEqual([8003]);

    release();
    await until(() => store.batches.length === 2);
    await new Promise((r) => setTimeout(r, 20));
    // the write under way when the gate closed (version 1), then one batch with the latest bytes
    const written = await Promise.all(
      store.batches.map(async (b) => {
        expect(b).toHaveLength(1);
        expect(b[0]).toMatchObject({ type: 'put', key: `node/${peerId}` });
        return (await decodeNodeCatalog((b[0] as { value: Uint8Array }).value)).version;
      }),
    );
    expect(written).toEqual([1, 3]);
    expect((await decodeNodeCatalog((await store.get(`node/${peerId}`))!)).version).toBe(3);

    // started again from the store, the service answers with version 3 before hearing anyone
    await svc.stop();
    // (membership knows the node from its own snapshot, loaded before the catalog starts)
    const again = await service(store, 0, [peerId]);
    expect(again.svc.state.get(peerId)?.version).toBe(3);
    expect(again.svc.discoverLocal({ name: 'web', strategy: 'nearest' })[0].port).toBe(8003);
  });

  it('a local (de)registration goes out before its writes land, and is durable when the call returns', async () => {
    const store = new SlowStore();
    const { svc, published } = await service(store);
    const changes: CatalogChange[] = [];
    svc.addEventListener('change', (e) => changes.push((e as CustomEvent<CatalogChange>).detail));
    published.length = 0;
    let release!: () => void;
    store.gate = new Promise<void>((r) => (release = r));
    let releaseLocal!: () => void;
    store.localGate = new Promise<void>((r) => (releaseLocal = r));
    store.batches.length = 0;
    let returned = false;
    const registering = svc.register('api', { name: 'api', port: 7000 }).then((r) => {
      returned = true;
      return r;
    });
    await until(() => published.length === 1);
    // broadcast and shown here while neither the registration nor the catalog is on disk
    expect(store.batches).toEqual([]);
    expect(changes.map((c) => c.names)).toEqual([['api']]);
    expect(changes.map((c) => c.via)).toEqual(['local']);
    const sent = await decodeNodeCatalog(published[0]);
    expect(sent.services.map((x) => x.name)).toEqual(['api']);
    await new Promise((r) => setTimeout(r, 20));
    expect(returned).toBe(false);
    release();
    await until(() => store.batches.length === 1); // the catalog's write
    await new Promise((r) => setTimeout(r, 20));
    expect(returned).toBe(false);
    releaseLocal();
    await registering;
    expect(await store.get('local/api')).toBeDefined();
    expect((await decodeNodeCatalog((await store.get(`node/${svc.selfId}`))!)).version).toBe(
      sent.version,
    );

    // the same for a deregistration: out at once, answered once its writes landed (the delete
    // of the registration is held back longer than the catalog's write)
    published.length = 0;
    store.gate = new Promise<void>((r) => (release = r));
    store.localGate = new Promise<void>((r) => (releaseLocal = r));
    store.batches.length = 0;
    let removed = false;
    const deregistering = svc.deregister('api').then((r) => {
      removed = true;
      return r;
    });
    await until(() => published.length === 1);
    expect(store.batches).toEqual([]);
    expect((await decodeNodeCatalog(published[0])).services).toEqual([]);
    await new Promise((r) => setTimeout(r, 20));
    expect(removed).toBe(false);
    release();
    await until(() => store.batches.length === 1); // the catalog's write
    await new Promise((r) => setTimeout(r, 20));
    expect(removed).toBe(false);
    releaseLocal();
    expect(await deregistering).toBe(true);
    expect(await store.get('local/api')).toBeUndefined();
  });

  it('a forgotten node is deleted from the store', async () => {
    const store = new MemoryStore();
    const { svc, members, gossip } = await service(store);
    const { peer, peerId } = await newMember(members);
    const changes: CatalogChange[] = [];
    svc.addEventListener('change', (e) => changes.push((e as CustomEvent<CatalogChange>).detail));
    gossip(await catalogOf(peer, 1, 8001));
    await until(() => svc.state.get(peerId) !== undefined);
    await new Promise((r) => setTimeout(r, 20));
    expect(await store.get(`node/${peerId}`)).toBeDefined();
    await svc.forget(peerId);
    expect(await store.get(`node/${peerId}`)).toBeUndefined();
    expect(svc.state.get(peerId)).toBeUndefined();
    // watchers are told the node's instances went because membership forgot it
    expect(changes.map((c) => [c.via, c.names])).toEqual([
      ['gossip', ['web']],
      ['reaped', ['web']],
    ]);
  });

  it('a catalog whose write failed is written again after the delay', async () => {
    /** Every batch tried, and whether it was written; the first one fails. */
    const tries: Array<{ ok: boolean; at: number }> = [];
    let armed = false; // from after start: our own catalog's write is not a received one
    class FlakyStore extends MemoryStore {
      override async batch(ops: readonly BatchOp[]): Promise<void> {
        if (!armed) return super.batch(ops);
        const ok = tries.length > 0;
        tries.push({ ok, at: Date.now() });
        if (!ok) throw new Error('disk full');
        return super.batch(ops);
      }
    }
    const store = new FlakyStore();
    const { svc, members, gossip } = await service(store, 100);
    const x = await newMember(members);
    await new Promise((r) => setTimeout(r, 20));
    armed = true;
    gossip(await catalogOf(x.peer, 1, 8001));
    await until(() => svc.state.get(x.peerId) !== undefined);
    await until(() => tries.length === 2);
    expect(tries.map((t) => t.ok)).toEqual([false, true]);
    // tried again by itself, after the delay, not at once
    expect(tries[1].at - tries[0].at).toBeGreaterThanOrEqual(90);
    expect((await decodeNodeCatalog((await store.get(`node/${x.peerId}`))!)).version).toBe(1);
  });

  it('changes that come within the delay are written in one batch; stop() writes at once', async () => {
    const store = new SlowStore();
    const { svc, members, gossip } = await service(store, 300);
    const x = await newMember(members);
    const y = await newMember(members);
    await new Promise((r) => setTimeout(r, 20));
    store.batches.length = 0; // our own catalog's, at start
    const t0 = Date.now();
    for (const v of [1, 2, 3]) gossip(await catalogOf(x.peer, v, 8000 + v));
    gossip(await catalogOf(y.peer, 1, 9001));
    await until(
      () => svc.state.get(x.peerId)?.version === 3 && svc.state.get(y.peerId) !== undefined,
    );
    expect(store.batches).toEqual([]); // answered, not written yet
    await until(() => store.batches.length === 1);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const [batch] = store.batches;
    expect(batch.map((op) => op.key).sort()).toEqual(
      [`node/${x.peerId}`, `node/${y.peerId}`].sort(),
    );
    expect((await decodeNodeCatalog((await store.get(`node/${x.peerId}`))!)).version).toBe(3);
    // a change and then stop(), well within the delay: written by stop()
    gossip(await catalogOf(x.peer, 4, 8004));
    await until(() => svc.state.get(x.peerId)?.version === 4);
    const t1 = Date.now();
    await svc.stop();
    expect(Date.now() - t1).toBeLessThan(250);
    expect(store.batches).toHaveLength(2);
    expect((await decodeNodeCatalog((await store.get(`node/${x.peerId}`))!)).version).toBe(4);
  });

  it("takes a node's own gossiped catalog on gossipsub's signature, and checks a relayed one", async () => {
    const { svc, members, gossip, bad: dropped } = await service(new MemoryStore());
    const { peer, peerId } = await newMember(members);
    const relay = await newMember(members);
    // the inner signature no longer matches the body (port 8001 signed, 9999 sent)
    const env = decode(await catalogOf(peer, 1, 8001)) as { c: Uint8Array; s: Uint8Array };
    const body = decode(env.c) as NodeCatalog;
    body.services[0].port = 9999;
    const bad = encode({ c: encode(body), s: env.s });
    const ports = () => svc.discoverLocal({ name: 'web', strategy: 'nearest' }).map((i) => i.port);
    // relayed by another member: checked, dropped
    gossip(bad, peerIdFromPrivateKey(relay.peer));
    // unsigned (no verified publisher): checked, dropped
    gossip(bad);
    await until(() => dropped.length === 2);
    expect(dropped).toEqual(['catalog gossip_catalog_decode', 'catalog gossip_catalog_decode']);
    expect(ports()).toEqual([]);
    // published by the node itself (gossipsub checked its signature): taken as its own word
    gossip(bad, peerIdFromPrivateKey(peer));
    await until(() => ports().length === 1);
    expect(ports()).toEqual([9999]);
    expect(peerId).toBe(body.node);
  });

  it('a write of received catalogs that fails (a full disk) is retried less often, and said once', async () => {
    // once started, its first 4 writes fail as LevelDB does on a full disk; all are timed
    const tries: number[] = [];
    let full = false;
    class FullStore extends MemoryStore {
      override async batch(ops: readonly BatchOp[]): Promise<void> {
        if (!full) return super.batch(ops);
        tries.push(performance.now());
        if (tries.length <= 4)
          throw Object.assign(new Error('IO error: 000003.log: No space left on device'), {
            code: 'LEVEL_IO_ERROR',
          });
        return super.batch(ops);
      }
    }
    const store = new FullStore();
    const { members, gossip, logged } = await service(store, 20);
    full = true;
    const { peer, peerId } = await newMember(members);
    gossip(await catalogOf(peer, 1, 80));
    await waitFor(() => tries.length === 5, { timeout: 5000 });
    // waits of 40, 80, 160 ms after the 2nd, 3rd, 4th failure (the base 20 ms, doubled each time)
    const gaps = tries.slice(1).map((t, i) => t - tries[i]);
    expect(gaps[1]).toBeGreaterThanOrEqual(79);
    expect(gaps[3]).toBeGreaterThanOrEqual(319);
    expect(logged.filter((l) => l.startsWith('warn'))).toHaveLength(1);
    expect(logged).toContain('info received catalogs written again');
    expect(await store.get(`node/${peerId}`)).toBeDefined();
  });

  it('a catalog of a node membership never learns is not answered, stored or relayed, and is dropped after the hold', async () => {
    const store = new MemoryStore();
    const { svc, gossip, bad } = await service(store, 0, [], 200);
    const stranger = await generateKeyPair('Ed25519');
    const strangerId = peerIdFromPrivateKey(stranger).toString();
    const digest = svc.state.digestHash();
    gossip(await catalogOf(stranger, 1, 8001)); // relayed by a member: signature checked
    gossip(await catalogOf(stranger, 2, 8002), peerIdFromPrivateKey(stranger)); // its own gossip
    await new Promise((r) => setTimeout(r, 50));
    expect(svc.state.get(strangerId)).toBeUndefined();
    expect(svc.state.digestHash()).toBe(digest);
    expect(svc.discoverLocal({ name: 'web', strategy: 'nearest' })).toEqual([]);
    await waitFor(() => bad.length > 0, { timeout: 3000, message: 'the held catalog dropped' });
    expect(bad).toEqual(['catalog unknown_node']);
    expect(svc.state.get(strangerId)).toBeUndefined();
    await svc.stop();
    expect(await store.get(`node/${strangerId}`)).toBeUndefined();
  });

  it('a catalog that comes before its node joins is taken once membership knows the node', async () => {
    const { svc, members, gossip, bad } = await service(new MemoryStore());
    const peer = await generateKeyPair('Ed25519');
    const peerId = peerIdFromPrivateKey(peer).toString();
    const changes: CatalogChange[] = [];
    svc.addEventListener('change', (e) => changes.push((e as CustomEvent<CatalogChange>).detail));
    gossip(await catalogOf(peer, 1, 8001), peerIdFromPrivateKey(peer));
    await new Promise((r) => setTimeout(r, 50));
    expect(svc.state.get(peerId)).toBeUndefined();
    members.add(peerId);
    await waitFor(() => svc.state.get(peerId)?.version === 1, {
      timeout: 3000,
      message: 'the held catalog taken',
    });
    expect(changes.map((c) => [c.node, c.via])).toEqual([[peerId, 'gossip']]);
    expect(bad).toEqual([]);
  });

  it('a stored catalog of a node membership does not know is not answered at start, and deleted after the hold', async () => {
    const store = new MemoryStore();
    const stranger = await generateKeyPair('Ed25519');
    const strangerId = peerIdFromPrivateKey(stranger).toString();
    await store.put(`node/${strangerId}`, await catalogOf(stranger, 1, 8001));
    const { svc, bad } = await service(store, 0, [], 200);
    expect(svc.state.get(strangerId)).toBeUndefined();
    await waitFor(() => bad.length > 0, { timeout: 3000, message: 'the held catalog dropped' });
    expect(bad).toEqual(['catalog unknown_node']);
    await svc.stop();
    expect(await store.get(`node/${strangerId}`)).toBeUndefined();
  });
});
