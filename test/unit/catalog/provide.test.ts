// DHT provider announcements without the walk: the k alive members closest to a name's key by XOR,
// chosen from the membership list; the walk when that cannot be done or a member did not take it.
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { describe, expect, it } from 'vitest';
import { closestByXor, kadId } from '../../../membership/catalog/provide.js';
import {
  CatalogReplication,
  serviceKey,
  type ReplicationComponents,
} from '../../../membership/catalog/replication.js';
import type { CatalogState } from '../../../membership/catalog/state.js';
import { waitFor } from '../../helpers/wait.js';
import { createRng } from '../../sim/rng.js';

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

/** A replication over a fake kad-dht with the internals the direct path uses. */
async function fakeDht(opts: { failFirst?: boolean; alone?: boolean } = {}) {
  const [self, ...others] = await peers(9);
  const sent: Array<{ to: string; type: string; key: Uint8Array }> = [];
  const stored: string[] = [];
  let walks = 0;
  const states = ['alive', 'alive', 'alive', 'alive', 'alive', 'alive', 'suspect', 'dead'];
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
  const components = {
    node: { peerId: self, services: { dht }, getMultiaddrs: () => [] },
    membership: { selfId: self.toString(), members: () => members },
    logger: { debug: () => {} },
  } as unknown as ReplicationComponents; // announce() uses only the node, membership and logger
  const rep = new CatalogReplication(
    components,
    {},
    {
      state: {} as CatalogState,
      accept: async () => false,
      signed: () => undefined,
      localNames: () => [],
    },
  );
  return { rep, self, others, members, sent, stored, walks: () => walks };
}

describe('catalog DHT announcements, direct', () => {
  it('go to the k alive members closest to the key, not to suspect, dead or self, with no walk', async () => {
    const f = await fakeDht();
    f.rep.announce('web');
    await waitFor(() => f.rep.announced.direct === 1, { timeout: 2000 });
    const key = await serviceKey('web');
    const alive = f.members
      .filter((m) => m.state === 'alive' && m.id !== f.self.toString())
      .map((m) => ({
        id: m.id,
        d: distance(
          kadId(f.others.find((p) => p.toString() === m.id)!.toMultihash().bytes),
          kadId(key.multihash.bytes),
        ),
      }))
      .sort((x, y) => (x.d < y.d ? -1 : 1));
    expect(f.sent.map((s) => s.to).sort()).toEqual(
      alive
        .slice(0, 4)
        .map((m) => m.id)
        .sort(),
    );
    expect(f.sent.every((s) => s.type === 'ADD_PROVIDER')).toBe(true);
    expect(f.sent[0].key).toEqual(key.multihash.bytes);
    expect(f.stored).toEqual([f.self.toString()]); // our own record too, so we answer for it
    expect(f.walks()).toBe(0);
    expect(f.rep.announced).toEqual({ direct: 1, walk: 0 });
  });

  it('walk the DHT when a chosen member did not take the record', async () => {
    const f = await fakeDht({ failFirst: true });
    f.rep.announce('db');
    await waitFor(() => f.rep.announced.walk === 1, { timeout: 2000 });
    expect(f.sent).toHaveLength(4);
    expect(f.walks()).toBe(1);
    expect(f.rep.announced).toEqual({ direct: 0, walk: 1 });
  });

  it('walk the DHT when no other member is alive', async () => {
    const f = await fakeDht({ alone: true });
    f.rep.announce('db');
    await waitFor(() => f.rep.announced.walk === 1, { timeout: 2000 });
    expect(f.sent).toEqual([]);
  });
});
