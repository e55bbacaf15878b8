// How catalogs travel between agents: every change is published on a gossipsub topic at once;
// every `syncInterval` an anti-entropy round with a random member (sometimes in another site)
// repairs whatever a lost message missed; service names are announced as DHT provider records so a
// large cluster can find a name it has not seen. A round starts with the hash of our digest sent
// over a long-lived stream (DigestExchange); the member opens an exchange back only when its own
// differs.
import { setTimeout as delay } from 'node:timers/promises';
import type { Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Multiaddr } from '@multiformats/multiaddr';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';
import { Broadcast } from '../net/broadcast.js';
import { DigestExchange } from '../net/digest.js';
import { FramedStream } from '../net/framed-stream.js';
import { closestByXor, directProvider, kadId, type DirectProvider } from './provide.js';
import type { ServiceLogger, ServiceNode } from '../net/components.js';
import type { CatalogMembership } from './service.js';
import type { CatalogState } from './state.js';
import {
  CATALOG_PROTOCOL,
  decodeSync,
  encodeSync,
  fitCatalogs,
  MAX_SYNC_FRAME,
  type SyncMessage,
} from './sync.js';

/** The catalog broadcast channel (and its direct twin: membership/net/broadcast.ts). */
export const CATALOG_TOPIC = 'edgeswarm/catalog/1';
/** The first step of a round: the hash of our digest (DigestExchange). */
export const CATALOG_DIGEST_PROTOCOL = '/edgeswarm/catalog-digest/1.0.0';
/** Default time between anti-entropy rounds (ms). */
export const CATALOG_SYNC_INTERVAL_MS = 5_000;
/** One round in this many is with a member of another site, when there is one. */
export const CATALOG_SYNC_OTHER_SITE_EVERY = 3;
/** Time allowed for one anti-entropy exchange (ms). */
export const CATALOG_SYNC_TIMEOUT_MS = 5_000;
/**
 * Most exchanges one anti-entropy round runs back to back with the same member while catalogs are
 * left over (each exchange carries at most MAX_SYNC_CATALOG_BYTES, 2 MiB, each way: sync.ts): 8,
 * so a round moves up to 16 MiB each way (a returning agent takes a cluster's worth of large
 * catalogs in one round, not one frame per 5 s round) and what is left waits for the next round.
 * The limit bounds what one member's round costs the other.
 */
export const CATALOG_SYNC_MAX_EXCHANGES = 8;

/** Time allowed for a DHT lookup of an unknown service name (ms). */
export const CATALOG_DHT_LOOKUP_TIMEOUT_MS = 2_000;
/**
 * Delay before each DHT provider announcement (ms). 0: at once. A 1 s delay, meant to let the
 * registration's gossip go first, measured worse on 25 agents sharing 2 cores (registration
 * visible everywhere p50/p99 1,052/3,685 ms against 912/2,528 ms at 0): the announcement then
 * competes with the next registrations instead.
 */
export const CATALOG_ANNOUNCE_DELAY_MS = 0;
/** Time allowed for one DHT provider announcement (ms). */
export const CATALOG_ANNOUNCE_TIMEOUT_MS = 30_000;
/** Most members whose kad id is kept; the cache is cleared when it is full. */
const MAX_KAD_IDS = 4096;

export interface ReplicationComponents {
  node: ServiceNode & { getMultiaddrs(): Multiaddr[] };
  membership: CatalogMembership;
  logger: ServiceLogger;
  /** A message dropped as invalid: `protocol` is `catalog`, `reason` a snake_case word. */
  onBadInput?(protocol: string, reason: string): void;
}

export interface ReplicationOptions {
  syncIntervalMs?: number;
  /**
   * Announce local service names as DHT provider records. Default true. Each announcement is
   * ADD_PROVIDER messages to the k = 4 alive members closest to the name's key (`DHT_K` in
   * agent/node.ts), chosen from the membership list (provide.ts; a DHT walk finds them when that
   * cannot be done); they are made one at a time (see `announce`). Without them, a name not yet
   * in the local catalog is found only by gossip and anti-entropy.
   */
  dhtAnnounce?: boolean;
}

/** How a catalog from a peer arrived (CatalogChange's `via`). */
export type RemoteSource = 'gossip' | 'sync' | 'lookup';

interface Hooks {
  state: CatalogState;
  /**
   * A signed catalog from a peer; `publisher` is the member whose gossipsub-verified message
   * carried it (its own catalog then skips a second signature check: see decodeNodeCatalog).
   */
  accept(bytes: Uint8Array, via: RemoteSource, publisher?: string): Promise<boolean>;
  /** The signed bytes of a node's catalog (ours included), for relaying. */
  signed(node: string): Uint8Array | undefined;
  localNames(): string[];
}

/** The DHT key of a service name. */
export async function serviceKey(name: string): Promise<CID> {
  return CID.createV1(
    0x55,
    await sha256.digest(new TextEncoder().encode(`/edgeswarm/service/${name}`)),
  );
}

/** What one anti-entropy round has pushed and been sent so far (node ids). */
interface RoundProgress {
  pushed: Set<string>;
  asked: Set<string>;
}

export class CatalogReplication {
  readonly #c: ReplicationComponents;
  readonly #o: Required<ReplicationOptions>;
  readonly #h: Hooks;
  #timer: NodeJS.Timeout | undefined;
  #round = 0;
  #started = false;
  readonly #controller = new AbortController();
  /** Names waiting for their DHT announcement, announced one at a time. */
  readonly #toAnnounce = new Set<string>();
  #announcing = false;
  readonly #announced = { direct: 0, walk: 0 };
  readonly #direct: DirectProvider | undefined;
  readonly #digests: DigestExchange;
  readonly #gossip: Broadcast;
  /** Members with an exchange a digest started, running now. */
  readonly #exchanging = new Set<string>();
  /** Kad ids of members, by peer id (see #kadIdOf). */
  readonly #kadIds = new Map<string, Uint8Array>();
  constructor(components: ReplicationComponents, options: ReplicationOptions, hooks: Hooks) {
    this.#c = components;
    this.#o = {
      syncIntervalMs: options.syncIntervalMs ?? CATALOG_SYNC_INTERVAL_MS,
      dhtAnnounce: options.dhtAnnounce ?? true,
    };
    this.#h = hooks;
    this.#gossip = new Broadcast(
      { pubsub: components.node.services.pubsub, membership: components.membership },
      CATALOG_TOPIC,
      (m) =>
        void this.#h
          .accept(m.data, 'gossip', m.from)
          .catch((err: Error) => this.#bad('gossip', err.name)),
    );
    this.#direct = directProvider(components.node.services.dht);
    // one exchange at a time per member: a member sending digest after digest gets one
    const exchange = (peer: string) => {
      if (this.#exchanging.has(peer)) return;
      this.#exchanging.add(peer);
      void this.syncOnce(peer).finally(() => this.#exchanging.delete(peer));
    };
    this.#digests = new DigestExchange(components.node, {
      protocol: CATALOG_DIGEST_PROTOCOL,
      digest: () => Buffer.from(this.#h.state.digestHash(), 'hex'),
      onDiffer: exchange,
      onUnsent: exchange,
      onBadInput: (_peer, reason) => this.#bad('digest', reason),
    });
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#gossip.start();
    await this.#c.node.handle(CATALOG_PROTOCOL, (stream) => void this.#serve(stream), {
      maxInboundStreams: 16,
      maxOutboundStreams: 16,
    });
    await this.#digests.start();
    const tick = () => {
      this.#timer = setTimeout(
        () => {
          this.#offer();
          if (this.#started) tick();
        },
        this.#o.syncIntervalMs * (0.5 + Math.random()),
      );
      this.#timer.unref?.();
    };
    tick();
    for (const name of this.#h.localNames()) this.announce(name);
  }

  async stop(): Promise<void> {
    // queued DHT announcements end too, even if start() never ran
    this.#controller.abort();
    if (!this.#started) return;
    this.#started = false;
    clearTimeout(this.#timer);
    this.#gossip.stop();
    await this.#c.node.unhandle(CATALOG_PROTOCOL).catch(() => {});
    await this.#digests.stop();
  }

  async broadcast(signed: Uint8Array): Promise<void> {
    try {
      await this.#gossip.publish(signed);
    } catch (err) {
      // no peers yet: anti-entropy will carry it
      this.#c.logger.debug({ err: (err as Error).message }, 'catalog publish');
    }
  }

  /**
   * Announces that we provide `name` (DHT provider record), unless dhtAnnounce is off. Names are
   * announced one at a time (after CATALOG_ANNOUNCE_DELAY_MS each), so a burst of registrations,
   * or a restart with many services, does not start a burst of DHT queries; failures are only
   * logged.
   */
  announce(name: string): void {
    if (!this.#o.dhtAnnounce) return;
    this.#toAnnounce.add(name);
    if (!this.#announcing) void this.#announceQueued();
  }

  async #announceQueued(): Promise<void> {
    this.#announcing = true;
    const stop = this.#controller.signal;
    try {
      while (this.#toAnnounce.size > 0 && !stop.aborted) {
        await delay(CATALOG_ANNOUNCE_DELAY_MS, undefined, { signal: stop }).catch(() => {});
        const name = this.#toAnnounce.values().next().value;
        if (name === undefined || stop.aborted) break;
        this.#toAnnounce.delete(name);
        try {
          const key = await serviceKey(name);
          const signal = AbortSignal.any([stop, AbortSignal.timeout(CATALOG_ANNOUNCE_TIMEOUT_MS)]);
          const direct = await this.#provideDirect(key, signal);
          if (!direct) {
            this.#announced.walk++;
            for await (const _ of this.#c.node.services.dht.provide(key, { signal })) void _;
          } else this.#announced.direct++;
          this.#c.logger.debug({ name, direct }, 'dht provide done');
        } catch (err) {
          this.#c.logger.debug({ name, err: (err as Error).message }, 'dht provide failed');
        }
      }
    } finally {
      this.#announcing = false;
    }
  }

  /** How many announcements went straight to the closest members, and how many walked the DHT. */
  get announced(): Readonly<{ direct: number; walk: number }> {
    return { ...this.#announced };
  }

  /**
   * Stores the provider record on the DHT's k alive members closest to `key` by the membership
   * list, with no DHT walk (provide.ts). False when that cannot be done (kad-dht without the
   * internals used, no other member known) or the record could not be sent to every chosen
   * member: the caller then walks the DHT as kad-dht's own provide does.
   */
  async #provideDirect(key: CID, signal: AbortSignal): Promise<boolean> {
    const provider = this.#direct;
    if (!provider) return false;
    const self = this.#c.membership.selfId;
    const alive = this.#c.membership
      .members()
      .filter((m) => m.state === 'alive' && m.id !== self)
      .map((m) => ({ id: m.id, kad: this.#kadIdOf(m.id) }));
    if (alive.length === 0) return false;
    const to = closestByXor(kadId(key.multihash.bytes), alive, provider.k);
    const node = this.#c.node;
    const stored = await provider.provide(
      key,
      node.peerId,
      node.getMultiaddrs(),
      to.map((m) => peerIdFromString(m.id)),
      signal,
    );
    return stored === to.length;
  }

  #kadIdOf(id: string): Uint8Array {
    let k = this.#kadIds.get(id);
    if (!k) {
      // members come and go: forget them all now and then rather than track each one
      if (this.#kadIds.size >= MAX_KAD_IDS) this.#kadIds.clear();
      k = kadId(peerIdFromString(id).toMultihash().bytes);
      this.#kadIds.set(id, k);
    }
    return k;
  }

  /** Finds providers of `name` in the DHT and fetches their catalogs. */
  async lookup(name: string, signal?: AbortSignal): Promise<void> {
    const timeout = AbortSignal.timeout(CATALOG_DHT_LOOKUP_TIMEOUT_MS);
    const sig = signal
      ? AbortSignal.any([signal, timeout, this.#controller.signal])
      : AbortSignal.any([timeout, this.#controller.signal]);
    const self = this.#c.node.peerId.toString();
    const providers = new Set<string>();
    try {
      const key = await serviceKey(name);
      for await (const ev of this.#c.node.services.dht.findProviders(key, { signal: sig })) {
        if (ev.name !== 'PROVIDER') continue;
        for (const p of ev.providers) if (p.id.toString() !== self) providers.add(p.id.toString());
        if (providers.size >= 8) break;
      }
    } catch {
      // timed out or no DHT peers: answer with what we have
    }
    await Promise.allSettled([...providers].map((p) => this.#get(p, [p], sig)));
  }

  async #open(peer: string, signal: AbortSignal): Promise<FramedStream> {
    const stream = await this.#c.node.dialProtocol(peerIdFromString(peer), CATALOG_PROTOCOL, {
      signal,
    });
    return new FramedStream(stream, MAX_SYNC_FRAME);
  }

  async #get(peer: string, nodes: string[], signal: AbortSignal): Promise<void> {
    const fs = await this.#open(peer, signal);
    try {
      await fs.write(encodeSync({ t: 'get', nodes }), signal);
      const reply = decodeSync(await fs.readOne(signal));
      if (reply.t === 'catalogs')
        for (const c of reply.list) await this.#h.accept(c, 'lookup').catch(() => {});
    } finally {
      await fs.closeWrite();
    }
  }

  /** The member of the next round: random, in another site every CATALOG_SYNC_OTHER_SITE_EVERY. */
  #nextTarget(): string | undefined {
    const otherSite = ++this.#round % CATALOG_SYNC_OTHER_SITE_EVERY === 0;
    return this.#c.membership.randomPeer({ otherSite }) ?? this.#c.membership.randomPeer();
  }

  /** A round: our digest's hash to a random member, which opens an exchange back if it differs. */
  #offer(): void {
    const target = this.#nextTarget();
    if (target && this.#started) this.#digests.offer(target);
  }

  /**
   * One anti-entropy round with `peer` (default: a random member): an exchange, and more at once
   * while catalogs were left out of a frame for size, up to CATALOG_SYNC_MAX_EXCHANGES.
   */
  async syncOnce(peer?: string): Promise<boolean> {
    const target = peer ?? this.#nextTarget();
    if (!target || !this.#started) return false;
    // catalogs pushed and asked for in this round: not again in its later exchanges (the member
    // may hold a catalog of a node it does not know yet instead of storing it, so its digest
    // still lacks it: pushing the same first 2 MiB every time, the rest never got through)
    const round: RoundProgress = { pushed: new Set(), asked: new Set() };
    for (let i = 0; i < CATALOG_SYNC_MAX_EXCHANGES; i++) {
      const r = await this.#exchange(target, round);
      if (r !== 'more') return r === 'done';
    }
    return true;
  }

  /**
   * One exchange: `done` when it went through, `more` when either side left catalogs out for size
   * (and sent some), `failed` otherwise.
   */
  async #exchange(target: string, round: RoundProgress): Promise<'done' | 'more' | 'failed'> {
    if (!this.#started) return 'failed';
    const signal = AbortSignal.any([
      this.#controller.signal,
      AbortSignal.timeout(CATALOG_SYNC_TIMEOUT_MS),
    ]);
    let fs: FramedStream | undefined;
    try {
      fs = await this.#open(target, signal);
      const state = this.#h.state;
      await fs.write(encodeSync({ t: 'hash', h: state.digestHash() }), signal);
      const first = decodeSync(await fs.readOne(signal));
      if (first.t === 'same') return 'done';
      if (first.t !== 'digest') throw new Error(`unexpected ${first.t}`);
      const toPush = state
        .newerThan(first.d)
        .filter((c) => !round.pushed.has(c.node))
        .flatMap((c) => {
          const bytes = this.#signed(c.node);
          return bytes === undefined ? [] : [{ node: c.node, bytes }];
        });
      const sent = fitCatalogs(toPush.map((c) => c.bytes));
      for (const c of toPush.slice(0, sent.take.length)) round.pushed.add(c.node);
      const want = state.wanted(first.d).filter((n) => !round.asked.has(n));
      await fs.write(encodeSync({ t: 'exchange', push: sent.take, want }), signal);
      const reply = decodeSync(await fs.readOne(signal));
      if (reply.t === 'catalogs')
        for (const c of reply.list)
          await this.#h.accept(c, 'sync').catch(() => this.#bad('sync', 'bad_catalog'));
      const got = reply.t === 'catalogs' ? reply.list.length : 0;
      // the member answers in the order asked, as many as fit (one it lacks shifts this by one:
      // that node waits for the next round)
      for (const n of want.slice(0, got)) round.asked.add(n);
      const more = (sent.more && sent.take.length > 0) || (got < want.length && got > 0);
      if (!more) return 'done';
      // the member closes once it has taken what we pushed: the next exchange's digest has it
      await fs.closeWrite();
      await fs.read(signal).catch(() => {});
      return 'more';
    } catch (err) {
      this.#c.logger.debug({ peer: target, err: (err as Error).message }, 'catalog sync failed');
      return 'failed';
    } finally {
      await fs?.closeWrite();
    }
  }

  #signed(node: string): Uint8Array | undefined {
    return this.#h.signed(node);
  }

  async #serve(stream: Stream): Promise<void> {
    const fs = new FramedStream(stream, MAX_SYNC_FRAME);
    const signal = AbortSignal.any([
      this.#controller.signal,
      AbortSignal.timeout(CATALOG_SYNC_TIMEOUT_MS),
    ]);
    try {
      let msg: SyncMessage;
      const first = await fs.read(signal);
      if (!first) return;
      msg = decodeSync(first);
      const state = this.#h.state;
      if (msg.t === 'get') {
        const list = msg.nodes
          .map((n) => this.#signed(n))
          .filter((b): b is Uint8Array => b !== undefined);
        await fs.write(encodeSync({ t: 'catalogs', list: fitCatalogs(list).take }), signal);
        return;
      }
      if (msg.t !== 'hash') throw new Error(`unexpected ${msg.t}`);
      if (msg.h === state.digestHash()) {
        await fs.write(encodeSync({ t: 'same' }), signal);
        return;
      }
      await fs.write(encodeSync({ t: 'digest', d: state.digest() }), signal);
      const next = await fs.read(signal);
      if (!next) return;
      msg = decodeSync(next);
      if (msg.t !== 'exchange') throw new Error(`unexpected ${msg.t}`);
      // what does not fit in the frame, the member asks for again in its next exchange
      const wanted = fitCatalogs(
        msg.want.map((n) => this.#signed(n)).filter((b): b is Uint8Array => b !== undefined),
      ).take;
      await fs.write(encodeSync({ t: 'catalogs', list: wanted }), signal);
      for (const c of msg.push)
        await this.#h.accept(c, 'sync').catch(() => this.#bad('sync', 'bad_catalog'));
    } catch (err) {
      this.#bad('sync', (err as Error).name);
      stream.abort(err as Error);
      return;
    }
    await fs.closeWrite();
  }

  /**
   * A message dropped as invalid, counted as protocol `catalog` with a snake_case reason named
   * after the channel it came on: `gossip_catalog_decode`, `digest_…`, `sync_bad_catalog`.
   */
  #bad(channel: 'gossip' | 'digest' | 'sync', reason: string): void {
    const snake = (reason.replace(/Error$/, '') || 'unexpected')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toLowerCase();
    this.#c.onBadInput?.('catalog', `${channel}_${snake}`);
  }
}
