// DHT provider announcements of service names: one at a time, a name queued twice announced
// once, and nothing after stop(); sent straight to the k alive members closest to the name's key
// by XOR, chosen from the membership list, and by a DHT walk when that cannot be done or a send
// failed.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { closestByXor, kadId } from '../../../membership/catalog/provide.js';
import {
  CATALOG_ANNOUNCE_DELAY_MS,
  CatalogReplication,
  serviceKey,
  type ReplicationComponents,
} from '../../../membership/catalog/replication.js';
import type { CatalogState } from '../../../membership/catalog/state.js';
import { waitFor } from '../../helpers/wait.js';
import { createRng } from '../../sim/rng.js';

/**
 * A replication whose announce() runs over `components`: a partial fake, cast, since announce()
 * uses only the node's DHT, peer id and addresses, the membership and the logger.
 */
function replicationOver(components: object): CatalogReplication {
  return new CatalogReplication(
    components as ReplicationComponents,
    {},
    {
      state: {} as CatalogState,
      accept: async () => false,
      signed: () => undefined,
      localNames: () => [],
    },
  );
}

function fakeReplication(provideMs: number) {
  const calls: Array<{ key: string; start: number; end: number }> = [];
  let running = 0;
  let maxRunning = 0;
  const t0 = performance.now();
  const dht = {
    async *provide(key: { toString(): string }) {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const start = performance.now() - t0;
      await new Promise((r) => setTimeout(r, provideMs));
      running--;
      calls.push({ key: key.toString(), start, end: performance.now() - t0 });
      yield* [];
    },
  };
  const logs: string[] = [];
  const rep = replicationOver({
    node: { services: { dht } },
    logger: { debug: (_o: object, m?: string) => void logs.push(m ?? '') },
  });
  return { rep, calls, maxRunning: () => maxRunning };
}

describe('catalog DHT announcements', () => {
  it('are made one at a time, once per queued name', async () => {
    const { rep, calls, maxRunning } = fakeReplication(100);
    rep.announce('web');
    rep.announce('db');
    rep.announce('web'); // still queued: not announced twice
    // both done (however slow the machine), then a pause long enough for a third to have begun
    await waitFor(() => calls.length === 2, { timeout: 5000 });
    await new Promise((r) => setTimeout(r, CATALOG_ANNOUNCE_DELAY_MS + 200));
    expect(calls.map((c) => c.key)).toEqual([
      (await serviceKey('web')).toString(),
      (await serviceKey('db')).toString(),
    ]);
    expect(maxRunning()).toBe(1);
    expect(calls[0].start).toBeGreaterThanOrEqual(CATALOG_ANNOUNCE_DELAY_MS - 20);
    expect(calls[1].start).toBeGreaterThanOrEqual(calls[0].end + CATALOG_ANNOUNCE_DELAY_MS - 20);
  });

  it('stops announcing when stopped', async () => {
    const { rep, calls } = fakeReplication(10);
    rep.announce('web');
    await rep.stop(); // never started: stop() still ends what is queued
    await new Promise((r) => setTimeout(r, CATALOG_ANNOUNCE_DELAY_MS + 300));
    expect(calls).toEqual([]);
  });
});

/** XOR distance of two kad ids as a number, for the brute-force check. */
function distance(a: Uint8Array, b: Uint8Array): bigint {
  let d = 0n;
  for (let i = 0; i < a.length; i++) d = (d << 8n) | BigInt(a[i] ^ b[i]);
  return d;
}

describe('closestByXor', () => {
  it('picks the k candidates nearest to the target, nearest first (seeded random ids)', () => {
    const rng = createRng(0x5eed);
    const bytes = () => Uint8Array.from({ length: 16 }, () => rng.int(256));
    for (let round = 0; round < 200; round++) {
      const target = kadId(bytes());
      const candidates = Array.from({ length: 1 + rng.int(40) }, (_, i) => ({
        i,
        kad: kadId(bytes()),
      }));
      const k = 1 + rng.int(6);
      const expected = [...candidates]
        .sort((x, y) => {
          const dx = distance(x.kad, target);
          const dy = distance(y.kad, target);
          return dx < dy ? -1 : dx > dy ? 1 : 0;
        })
        .slice(0, k)
        .map((c) => c.i);
      expect(
        closestByXor(target, candidates, k).map((c) => c.i),
        `seed 0x5eed round ${round}`,
      ).toEqual(expected);
    }
  });
});

async function peers(n: number) {
  return Promise.all(
    Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))),
  );
}

/**
 * A replication over a fake kad-dht with the internals the direct path uses, announcing `name`.
 * Of 9 fresh peers, ranked by distance to the name's key, the nearest is us, the next suspect and
 * the next dead, so letting any of them through changes the members chosen; the 6 after are alive.
 */
async function fakeDht(name: string, opts: { failFirst?: boolean; alone?: boolean } = {}) {
  const target = kadId((await serviceKey(name)).multihash.bytes);
  const ranked = (await peers(9))
    .map((p) => ({ p, d: distance(kadId(p.toMultihash().bytes), target) }))
    .sort((x, y) => (x.d < y.d ? -1 : x.d > y.d ? 1 : 0))
    .map((x) => x.p);
  const [self, ...others] = ranked;
  const sent: Array<{ to: string; type: string; key: Uint8Array }> = [];
  const stored: string[] = [];
  let walks = 0;
  const states = ['suspect', 'dead', 'alive', 'alive', 'alive', 'alive', 'alive', 'alive'];
  const dht = {
    k: 4,
    providers: {
      async addProvider(_key: unknown, p: { toString(): string }) {
        stored.push(p.toString());
      },
    },
    network: {
      async *sendMessage(to: { toString(): string }, msg: { type: string; key: Uint8Array }) {
        const n = sent.push({ to: to.toString(), type: msg.type, key: msg.key });
        yield { name: 'SEND_QUERY' };
        if (opts.failFirst && n === 1) yield { name: 'QUERY_ERROR' };
        else yield { name: 'PEER_RESPONSE' };
      },
    },
    async *provide() {
      walks++;
      yield* [];
    },
  };
  const members = opts.alone ? [] : others.map((p, i) => ({ id: p.toString(), state: states[i] }));
  members.push({ id: self.toString(), state: 'alive' });
  const rep = replicationOver({
    node: { peerId: self, services: { dht }, getMultiaddrs: () => [] },
    membership: { selfId: self.toString(), members: () => members },
    logger: { debug: () => {} },
  });
  /** The members the record should go to: the 4 nearest alive ones other than us. */
  const expected = others.slice(2, 6).map((p) => p.toString());
  return { rep, self, expected, sent, stored, walks: () => walks };
}

describe('catalog DHT announcements, direct', () => {
  it('go to the k alive members closest to the key, not to suspect, dead or self, with no walk', async () => {
    const f = await fakeDht('web');
    f.rep.announce('web');
    await waitFor(() => f.rep.announced.direct === 1, { timeout: 2000 });
    const key = await serviceKey('web');
    expect(f.sent.map((s) => s.to).sort()).toEqual([...f.expected].sort());
    expect(f.sent.every((s) => s.type === 'ADD_PROVIDER')).toBe(true);
    expect(f.sent[0].key).toEqual(key.multihash.bytes);
    expect(f.stored).toEqual([f.self.toString()]); // our own record too, so we answer for it
    expect(f.walks()).toBe(0);
    expect(f.rep.announced).toEqual({ direct: 1, walk: 0 });
  });

  it('walk the DHT when the record could not be sent to a chosen member', async () => {
    const f = await fakeDht('db', { failFirst: true });
    f.rep.announce('db');
    await waitFor(() => f.rep.announced.walk === 1, { timeout: 2000 });
    expect(f.sent).toHaveLength(4);
    expect(f.walks()).toBe(1);
    expect(f.rep.announced).toEqual({ direct: 0, walk: 1 });
  });

  it('walk the DHT when no other member is alive', async () => {
    const f = await fakeDht('db', { alone: true });
    f.rep.announce('db');
    await waitFor(() => f.rep.announced.walk === 1, { timeout: 2000 });
    expect(f.sent).toEqual([]);
  });
});
