// Image holders in the DHT: an agent holding a whole image announces its digest as a provider
// record; a puller that knows no holder in its own site asks for them.
import type { KadDHT } from '@libp2p/kad-dht';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { PROVIDER_LOOKUP_CACHE_MS } from './options.js';

/** Time a lookup of providers may take (ms). */
const FIND_TIMEOUT_MS = 5_000;
/** Time an announcement of a provider record may take (ms). */
const PROVIDE_TIMEOUT_MS = 30_000;

export async function digestKey(digest: string): Promise<CID> {
  return CID.createV1(
    0x55,
    await sha256.digest(new TextEncoder().encode(`/edgeswarm/image/${digest}`)),
  );
}

export class ImageProviders {
  readonly #dht: Pick<KadDHT, 'findProviders' | 'provide'>;
  readonly #signal: AbortSignal;
  /** digest → providers found by the last lookup, kept PROVIDER_LOOKUP_CACHE_MS. */
  readonly #found = new Map<string, Set<string>>();

  constructor(dht: Pick<KadDHT, 'findProviders' | 'provide'>, signal: AbortSignal) {
    this.#dht = dht;
    this.#signal = signal;
  }

  /** Providers of `digest` the last lookup found (none before one ran). */
  of(digest: string): Iterable<string> {
    return this.#found.get(digest) ?? [];
  }

  /** Asks the DHT for providers of `digest`, unless a lookup ran in the last PROVIDER_LOOKUP_CACHE_MS. */
  async lookup(digest: string): Promise<void> {
    if (this.#found.has(digest)) return;
    const set = new Set<string>();
    this.#found.set(digest, set);
    try {
      const signal = AbortSignal.any([this.#signal, AbortSignal.timeout(FIND_TIMEOUT_MS)]);
      for await (const ev of this.#dht.findProviders(await digestKey(digest), { signal }))
        if (ev.name === 'PROVIDER') for (const p of ev.providers) set.add(p.id.toString());
    } catch {
      // no DHT answer: gossip will tell us
    }
    setTimeout(() => this.#found.delete(digest), PROVIDER_LOOKUP_CACHE_MS).unref();
  }

  /** Announces this agent as a provider of `digest` (best effort). */
  async provide(digest: string): Promise<void> {
    try {
      const signal = AbortSignal.any([this.#signal, AbortSignal.timeout(PROVIDE_TIMEOUT_MS)]);
      for await (const _ of this.#dht.provide(await digestKey(digest), { signal })) void _;
    } catch {
      // best effort
    }
  }
}
