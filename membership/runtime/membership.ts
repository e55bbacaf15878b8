// The membership runtime: binds the pure SWIM core to libp2p (the /edgeswarm/swim/1.0.0 datagram
// channel), real timers, the store (incarnation and a member snapshot survive restarts) and Vivaldi
// coordinates; re-emits membership events; answers "who is where" for the other capabilities.
import type { Connection, PeerId } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { decode, encode } from 'cborg';
import type { KvStore } from '../../storage/index.js';
import type { MemberLookup } from '../catalog/types.js';
import { CoordinateClient } from '../coordinates/index.js';
import type { ServiceLogger, StreamHandling } from '../net/components.js';
import { DatagramChannel } from '../net/datagram.js';
import {
  MAX_PUSH_PULL_BYTES,
  SwimCore,
  tryDecodeMessage,
  encodeMessage,
  type Effect,
  type Member,
  type MemberMeta,
  type MemberState,
  type MembershipEvent,
  type PushPullEntry,
  type SwimConfig,
  type SwimStats,
} from '../swim/index.js';

/** A member's unchanged addresses are merged into the peer store again after this long (ms). */
const LEARN_ADDRS_REFRESH_MS = 60_000;
/** Bound of the #learned cache (it is cleared when it grows past 4x this). */
const LEARN_ADDRS_MAX_ENTRIES = 10_000;
export const SWIM_PROTOCOL = '/edgeswarm/swim/1.0.0';
/** How often the member snapshot is saved when it changed (ms). */
export const SNAPSHOT_INTERVAL_MS = 30_000;
/**
 * A member that comes up is in the snapshot within this long (ms), not at the next interval: an
 * agent killed in its first 30 s came back knowing no one, and so took itself for the only member
 * of its site (pulling every image placed there) until someone found it.
 */
export const SNAPSHOT_UP_DELAY_MS = 1_000;
/** How long leave() waits for the `left` news to spread before returning (ms). */
export const LEAVE_FLUSH_MS = 600;
/** Time allowed to open the SWIM stream to a member (ms). */
export const SWIM_OPEN_TIMEOUT_MS = 1_500;

/** A member as the rest of the agent sees it (self included). */
export interface MemberInfo {
  id: string;
  name: string;
  site: string;
  state: MemberState;
  incarnation: number;
  addrs: string[];
  tags: Record<string, string>;
  load?: number;
  /** ms since epoch of the last state change. */
  stateChangedAt: number;
  self?: boolean;
}

export interface MembershipNode extends StreamHandling {
  peerId: PeerId;
  peerStore: { merge(peer: PeerId, data: { multiaddrs: Multiaddr[] }): Promise<unknown> };
  getConnections(peer?: PeerId): Connection[];
  addEventListener(type: 'connection:close', l: (e: CustomEvent<Connection>) => void): void;
  removeEventListener(type: 'connection:close', l: (e: CustomEvent<Connection>) => void): void;
}

export interface MembershipComponents {
  node: MembershipNode;
  /** A namespace of the agent's store for membership. */
  store: KvStore;
  logger: ServiceLogger;
  metrics?: {
    gossip(direction: 'in' | 'out'): void;
    failureDetected(): void;
    counts(c: Record<MemberState, number>): void;
    dropped(reason: string): void;
  };
}

export interface MembershipOptions {
  config: SwimConfig;
  name: string;
  site: string;
  tags: Record<string, string>;
  /** Our dialable addresses (called at start and when metadata is republished). */
  addrs(): string[];
  /** Injected for tests; default Math.random. */
  rng?: () => number;
}

/** A monotonic clock in ms since the epoch (does not jump with the wall clock). */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();

const te = new TextEncoder();
const td = new TextDecoder();

export class Membership extends EventTarget implements MemberLookup {
  readonly #c: MembershipComponents;
  readonly #o: MembershipOptions;
  readonly coords = new CoordinateClient();
  #core: SwimCore | undefined;
  #channel: DatagramChannel | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #snapshotTimer: NodeJS.Timeout | undefined;
  #snapshotSoon: NodeJS.Timeout | undefined;
  #dirty = false;
  #started = false;
  #meta: MemberMeta;
  readonly selfId: string;
  readonly selfSite: string;
  /** Join waiters by peer: resolved when that peer's push-pull reply arrives. */
  readonly #joinWaiters = new Map<string, Set<() => void>>();
  readonly #onConnClose = (evt: CustomEvent<Connection>) => {
    const peer = evt.detail.remotePeer.toString();
    if (
      this.#core?.stateOf(peer) === 'alive' &&
      this.#c.node.getConnections(evt.detail.remotePeer).length === 0
    ) {
      this.#core.probeSoon(peer);
      this.#arm();
    }
  };

  constructor(components: MembershipComponents, options: MembershipOptions) {
    super();
    this.#c = components;
    this.#o = options;
    this.selfId = components.node.peerId.toString();
    this.selfSite = options.site;
    this.#meta = { name: options.name, site: options.site, addrs: [], tags: options.tags };
  }

  get core(): SwimCore {
    if (!this.#core) throw new Error('membership not started');
    return this.#core;
  }

  get config(): SwimConfig {
    return this.#o.config;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const store = this.#c.store;
    const incBytes = await store.get('incarnation');
    const incarnation = incBytes ? Number(td.decode(incBytes)) + 1 : 0;
    // persist before we speak, so a crash now still makes the next start go higher
    await store.put('incarnation', te.encode(String(incarnation)), { sync: true });
    const snapshot = await this.#loadSnapshot();
    this.#meta = { ...this.#meta, addrs: this.#o.addrs() };
    this.#core = new SwimCore({
      self: { id: this.selfId, meta: this.#meta },
      config: this.#o.config,
      rng: this.#o.rng ?? Math.random,
      now: monotonicNow(),
      initialIncarnation: incarnation,
      initialMembers: snapshot,
    });
    for (const e of snapshot) await this.#learnAddrs(e.id, e.meta.addrs);
    this.#channel = new DatagramChannel(this.#c.node, {
      protocol: SWIM_PROTOCOL,
      maxMessageBytes: MAX_PUSH_PULL_BYTES,
      openTimeoutMs: SWIM_OPEN_TIMEOUT_MS,
      onMessage: (from, bytes) => this.#onMessage(from, bytes),
      onDrop: (reason) => this.#c.metrics?.dropped(reason),
      onBadInput: (_from, reason) => this.#c.metrics?.dropped(`bad_input_${reason}`),
    });
    await this.#channel.start();
    this.#c.node.addEventListener('connection:close', this.#onConnClose);
    this.#snapshotTimer = setInterval(
      () => void this.#saveSnapshot().catch(() => {}),
      SNAPSHOT_INTERVAL_MS,
    );
    this.#snapshotTimer.unref();
    this.#publishCounts();
    // rejoin through members we knew before a restart
    const known = snapshot.filter((e) => e.state === 'alive').map((e) => e.id);
    if (known.length > 0) this.#deliver(this.core.join(shuffle(known).slice(0, 3), monotonicNow()));
    this.#arm();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearTimeout(this.#timer);
    clearInterval(this.#snapshotTimer);
    clearTimeout(this.#snapshotSoon);
    this.#snapshotSoon = undefined;
    this.#c.node.removeEventListener('connection:close', this.#onConnClose);
    await this.#saveSnapshot().catch(() => {});
    await this.#channel?.stop();
    this.#joinWaiters.clear();
  }

  /**
   * Tells the cluster we are leaving: our `left` news is gossiped for up to LEAVE_FLUSH_MS (less
   * when every queued broadcast has gone out).
   */
  async leave(): Promise<void> {
    if (!this.#core || !this.#started) return;
    this.#deliver(this.#core.leave(monotonicNow()));
    const deadline = Date.now() + LEAVE_FLUSH_MS;
    while (Date.now() < deadline && this.#core.pendingBroadcasts > 0) await sleep(20);
    await this.#c.store.put('incarnation', te.encode(String(this.#core.incarnation)), {
      sync: true,
    });
  }

  /** Joins through a peer we are connected to: a push-pull with it; resolves once merged. */
  async join(peer: string, signal?: AbortSignal): Promise<void> {
    const core = this.core;
    await new Promise<void>((resolve, reject) => {
      let waiters = this.#joinWaiters.get(peer);
      if (!waiters) this.#joinWaiters.set(peer, (waiters = new Set()));
      const done = () => {
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(signal?.reason ?? new Error('aborted'));
      };
      const cleanup = () => {
        waiters.delete(done);
        if (waiters.size === 0) this.#joinWaiters.delete(peer);
        signal?.removeEventListener('abort', onAbort);
      };
      waiters.add(done);
      signal?.addEventListener('abort', onAbort);
      this.#deliver(core.join([peer], monotonicNow()));
    });
  }

  /** Republishes our metadata (tags, load, addresses) with a new incarnation. */
  updateMeta(patch: Partial<Pick<MemberMeta, 'tags' | 'load'>>): void {
    if (!this.#core || !this.#started) return;
    this.#meta = { ...this.#meta, ...patch, addrs: this.#o.addrs() };
    if (this.#meta.load === undefined) delete this.#meta.load;
    this.#deliver(this.#core.updateMeta(this.#meta, monotonicNow()));
  }

  // ---- plumbing ----

  #onMessage(from: string, bytes: Uint8Array): void {
    const core = this.#core;
    if (!core || !this.#started) return;
    this.#c.metrics?.gossip('in');
    const msg = tryDecodeMessage(bytes);
    if (!msg.ok) {
      this.#c.metrics?.dropped('decode');
      return;
    }
    const implausible = core.stats.implausibleUpdates;
    this.#deliver(core.handle(from, msg.msg, monotonicNow()));
    // updates the core refused as forgeries (MAX_INCARNATION_JUMP): counted as dropped input
    for (let n = core.stats.implausibleUpdates - implausible; n > 0; n--)
      this.#c.metrics?.dropped('incarnation_jump');
    if (msg.msg.type === 'push-pull-reply')
      for (const w of [...(this.#joinWaiters.get(from) ?? [])]) w();
  }

  #deliver(effects: Effect[]): void {
    for (const e of effects) {
      if (e.type === 'send') {
        this.#c.metrics?.gossip('out');
        const bytes = encodeMessage(e.msg);
        if (e.addrs && e.addrs.length > 0) {
          void this.#learnAddrs(e.to, e.addrs).then(() => this.#channel?.send(e.to, bytes));
        } else {
          this.#channel?.send(e.to, bytes);
        }
      } else if (e.type === 'event') {
        this.#onEvent(e.event);
      } else if (e.type === 'rtt') {
        this.coords.observe(e.id, e.rttMs, e.coordinate);
        this.#core?.setLocalCoordinate(this.coords.local);
      }
    }
    this.#arm();
  }

  #onEvent(ev: MembershipEvent): void {
    this.#dirty = true;
    if (ev.type === 'member:up' && this.#started && this.#snapshotSoon === undefined) {
      this.#snapshotSoon = setTimeout(() => {
        this.#snapshotSoon = undefined;
        void this.#saveSnapshot().catch(() => {});
      }, SNAPSHOT_UP_DELAY_MS);
      this.#snapshotSoon.unref();
    }
    if (ev.type === 'member:up' || ev.type === 'member:update' || ev.type === 'member:alive') {
      void this.#learnAddrs(ev.member.id, ev.member.meta.addrs);
    }
    if (
      (ev.type === 'member:up' || ev.type === 'member:update') &&
      ev.member.meta.name === this.#meta.name &&
      !this.#sameName.has(ev.member.id)
    ) {
      // names identify members in status, discovery answers and logs: say so once per member
      this.#sameName.add(ev.member.id);
      this.#c.logger.warn(
        { id: ev.member.id, site: ev.member.meta.site, name: this.#meta.name },
        "another member uses this agent's name; names must be unique in the cluster (start one of them with another --name)",
      );
    }
    if (ev.type === 'member:down') this.#c.metrics?.failureDetected();
    if (ev.type === 'member:reap') this.coords.forget(ev.member.id);
    this.#publishCounts();
    const level = ev.type === 'member:update' || ev.type === 'member:alive' ? 'debug' : 'info';
    this.#c.logger[level](
      {
        member: ev.member.meta.name,
        id: ev.member.id,
        site: ev.member.meta.site,
        from: ev.previous,
        incarnation: ev.member.incarnation,
      },
      ev.type,
    );
    this.dispatchEvent(new CustomEvent<MembershipEvent>(ev.type, { detail: ev }));
    this.dispatchEvent(new CustomEvent<MembershipEvent>('change', { detail: ev }));
  }

  #publishCounts(): void {
    if (!this.#core) return;
    const c = this.#core.counts();
    this.#c.metrics?.counts(c);
  }

  /** Members seen using our name (warned about once each). */
  readonly #sameName = new Set<string>();

  /** The addresses last put in the peer store, per member, and when (see #learnAddrs). */
  readonly #learned = new Map<string, { key: string; at: number }>();

  async #learnAddrs(id: string, addrs: string[]): Promise<void> {
    if (id === this.selfId || addrs.length === 0) return;
    // Sends to a member and events about it carry its addresses again and again; a peer store
    // merge (a datastore write) each time cost more CPU than the SWIM traffic itself.
    const key = addrs.join(' ');
    const now = Date.now();
    const last = this.#learned.get(id);
    if (last !== undefined && last.key === key && now - last.at < LEARN_ADDRS_REFRESH_MS) return;
    this.#learned.set(id, { key, at: now });
    if (this.#learned.size > 4 * LEARN_ADDRS_MAX_ENTRIES) this.#learned.clear();
    try {
      const mas: Multiaddr[] = [];
      for (const a of addrs) {
        try {
          mas.push(multiaddr(a));
        } catch {
          // a bad address from a peer is ignored
        }
      }
      if (mas.length > 0)
        await this.#c.node.peerStore.merge(peerIdFromString(id), { multiaddrs: mas });
    } catch {
      // an invalid peer id from the network: ignore
    }
  }

  /** Schedules tick() at the core's next deadline. */
  #arm(): void {
    if (!this.#core || !this.#started) return;
    const at = this.#core.nextDeadline();
    // re-armed when the deadline moved later too (an ack ended the probe whose timeout it was):
    // a timer left at the old one woke the agent for nothing after nearly every probe
    if (at === this.#timerAt && this.#timer) return;
    clearTimeout(this.#timer);
    if (!Number.isFinite(at)) {
      this.#timerAt = Infinity;
      this.#timer = undefined;
      return;
    }
    this.#timerAt = at;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Infinity;
        // let I/O that arrived during a stall (acks) be handled before timeouts fire
        setImmediate(() => {
          if (this.#core && this.#started) this.#deliver(this.#core.tick(monotonicNow()));
        });
      },
      Math.max(0, at - monotonicNow()),
    );
  }

  async #loadSnapshot(): Promise<PushPullEntry[]> {
    const bytes = await this.#c.store.get('snapshot');
    if (!bytes) return [];
    try {
      const list = decode(bytes) as PushPullEntry[];
      return Array.isArray(list)
        ? list.filter((e) => e && typeof e.id === 'string' && e.id !== this.selfId)
        : [];
    } catch {
      return [];
    }
  }

  async #saveSnapshot(): Promise<void> {
    if (!this.#core || !this.#dirty) return;
    this.#dirty = false;
    const entries: PushPullEntry[] = this.#core
      .members()
      .filter((m) => m.id !== this.selfId)
      .map((m) => ({ id: m.id, incarnation: m.incarnation, state: m.state, meta: { ...m.meta } }));
    try {
      await this.#c.store.put('snapshot', encode(entries));
    } catch (err) {
      this.#dirty = true; // the next interval tries again (a store refusing writes for a while)
      throw err;
    }
  }

  // ---- queries ----

  #info(m: Member): MemberInfo {
    return {
      id: m.id,
      name: m.meta.name,
      site: m.meta.site,
      state: m.state,
      incarnation: m.incarnation,
      addrs: [...m.meta.addrs],
      tags: { ...m.meta.tags },
      load: m.meta.load,
      stateChangedAt: Math.round(m.stateChangedAt),
      self: m.id === this.selfId ? true : undefined,
    };
  }

  /** Every member this agent knows, itself included. */
  members(): MemberInfo[] {
    if (!this.#core) return [];
    return this.#core.members().map((m) => this.#info(m));
  }

  member(id: string): MemberInfo | undefined {
    const m = this.#core?.member(id);
    return m ? this.#info(m) : undefined;
  }

  /** The failure detector's counters and Lifeguard health score, once started (for metrics). */
  health(): { stats: Readonly<SwimStats>; healthScore: number } | undefined {
    const core = this.#core;
    return core && { stats: core.stats, healthScore: core.healthScore };
  }

  counts(): Record<MemberState, number> {
    return this.#core?.counts() ?? { alive: 0, suspect: 0, dead: 0, left: 0 };
  }

  // MemberLookup (for the catalog)
  state(id: string): MemberState | undefined {
    return this.#core?.stateOf(id);
  }
  name(id: string): string | undefined {
    return this.#core?.member(id)?.meta.name;
  }
  site(id: string): string | undefined {
    return this.#core?.member(id)?.meta.site;
  }
  stateChangedAt(id: string): number | undefined {
    return this.#core?.member(id)?.stateChangedAt;
  }
  rtt(id: string): number | undefined {
    if (id === this.selfId) return 0;
    return this.coords.estimateRttTo(id);
  }
  load(id: string): number | undefined {
    return this.#core?.member(id)?.meta.load;
  }
  siteReachable(site: string): boolean {
    if (site === this.selfSite) return true;
    for (const m of this.#core?.members(['alive', 'suspect']) ?? [])
      if (m.meta.site === site) return true;
    return false;
  }

  /** A random alive member other than us, in another site when `otherSite` and there is one. */
  randomPeer(opts: { otherSite?: boolean; site?: string } = {}): string | undefined {
    const all = (this.#core?.members(['alive']) ?? []).filter((m) => m.id !== this.selfId);
    let pool = all;
    if (opts.site !== undefined) pool = all.filter((m) => m.meta.site === opts.site);
    else if (opts.otherSite) pool = all.filter((m) => m.meta.site !== this.selfSite);
    if (pool.length === 0) return undefined;
    return pool[Math.floor(Math.random() * pool.length)].id;
  }
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
