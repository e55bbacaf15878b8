// DHT provider announcements without the DHT walk. A Kademlia provide first walks the DHT to find
// the k members closest to the key, then stores the record on them. Every agent already knows every
// member from the membership list, so the k closest can be worked out locally, with the same XOR
// metric over the same ids (sha256 of the peer id's multihash) that kad-dht uses, and the walk
// skipped: only the k ADD_PROVIDER messages go out. A lookup's walk, from any member, still ends
// at those k members. What it saves is measured in docs/benchmarks.md (Discovery, ninth session).
//
// Sending ADD_PROVIDER needs two members of kad-dht's KadDHT class that are public on the class
// but not on its exported interface (`providers`, `network`); `directProvider()` checks they are
// there and the caller falls back to `dht.provide()` (the walk) when they are not, or when a
// chosen member could not be sent the record.
import { createHash } from 'node:crypto';
import type { AbortOptions, PeerId } from '@libp2p/interface';
import type { Multiaddr } from '@multiformats/multiaddr';
import type { CID } from 'multiformats/cid';

/** A member's (or a key's) position in the DHT's XOR space: sha256 of its bytes, as kad-dht. */
export function kadId(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest();
}

/** Compares the XOR distances of `a` and `b` to `target` (all 32-byte kad ids). */
function closer(target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const d = (a[i] ^ target[i]) - (b[i] ^ target[i]);
    if (d !== 0) return d;
  }
  return 0;
}

/** The `k` candidates closest to `target` by XOR distance, closest first. */
export function closestByXor<T extends { kad: Uint8Array }>(
  target: Uint8Array,
  candidates: readonly T[],
  k: number,
): T[] {
  return [...candidates].sort((a, b) => closer(target, a.kad, b.kad)).slice(0, k);
}

/** The ADD_PROVIDER message of kad-dht's wire format, as its network layer takes it. */
interface AddProviderMessage {
  type: 'ADD_PROVIDER';
  key: Uint8Array;
  providers: Array<{ id: Uint8Array; multiaddrs: Uint8Array[] }>;
}

/** What this module uses of kad-dht's KadDHT class (16.x). */
interface KadDhtInternals {
  k: number;
  providers: { addProvider(key: CID, provider: PeerId, options?: AbortOptions): Promise<void> };
  network: {
    sendMessage(
      to: PeerId,
      msg: AddProviderMessage,
      options: AbortOptions,
    ): AsyncIterable<{ name: string }>;
  };
}

export interface DirectProvider {
  /** Most members a record is stored on (kad-dht's k). */
  readonly k: number;
  /**
   * Stores `self` as a provider of `key` locally and sends the record to each of `to`; returns to
   * how many it was sent (ADD_PROVIDER has no reply: a member whose stream could not be opened or
   * written is not counted).
   */
  provide(
    key: CID,
    self: PeerId,
    addrs: Multiaddr[],
    to: PeerId[],
    signal: AbortSignal,
  ): Promise<number>;
}

/** A direct provider over kad-dht's own network layer, or undefined if `dht` lacks it. */
export function directProvider(dht: unknown): DirectProvider | undefined {
  const d = dht as Partial<KadDhtInternals> | undefined;
  if (
    typeof d?.k !== 'number' ||
    typeof d.providers?.addProvider !== 'function' ||
    typeof d.network?.sendMessage !== 'function'
  )
    return undefined;
  const { providers, network } = d;
  return {
    k: d.k,
    async provide(key, self, addrs, to, signal) {
      await providers.addProvider(key, self, { signal });
      const msg: AddProviderMessage = {
        type: 'ADD_PROVIDER',
        key: key.multihash.bytes,
        providers: [{ id: self.toMultihash().bytes, multiaddrs: addrs.map((a) => a.bytes) }],
      };
      const stored = await Promise.all(
        to.map(async (peer) => {
          try {
            // kad-dht reports a failed send as an event, not by throwing; PEER_RESPONSE = written
            for await (const ev of network.sendMessage(peer, msg, { signal }))
              if (ev.name === 'PEER_RESPONSE') return true;
          } catch {
            // counted as not stored
          }
          return false;
        }),
      );
      return stored.filter(Boolean).length;
    },
  };
}
