// The catalog service of an agent: the services registered on it (persisted, health-checked,
// published as one signed NodeCatalog whenever anything changes), and the catalog of every other
// node (persisted, so a restarted agent answers at once), replicated by the gossip mesh and
// repaired by anti-entropy (replication.ts). Discovery queries are answered locally (query.ts).
import type { PrivateKey } from '@libp2p/interface';
import type { KvStore } from '../../storage/index.js';
import type { ServiceLogger } from '../net/components.js';
import { HealthCheck } from './checks.js';
import { NameLookups } from './lookups.js';
import { CatalogFullError } from '../errors.js';
import {
  decodeNodeCatalog,
  encodeNodeCatalog,
  MAX_NODE_CATALOG_BYTES,
  MAX_NODE_SERVICES,
  worstCaseCatalogBytes,
} from './codec.js';
import { CATALOG_HOLD_CHECK_MS, UnknownNodeHold, type HeldCatalog } from './hold.js';
import { discover, RoundRobinCounters } from './query.js';
import {
  checkBody,
  toRegistration,
  type CheckBody,
  type RegistrationBody,
  type ServiceRegistration,
} from './registration.js';
import {
  CatalogReplication,
  type ReplicationComponents,
  type ReplicationOptions,
  type RemoteSource,
} from './replication.js';
import { CatalogSaver } from './saver.js';
import { CatalogState } from './state.js';
import type {
  DiscoveredInstance,
  DiscoverQuery,
  Health,
  MemberLookup,
  NodeCatalog,
  ServiceRecord,
} from './types.js';

export interface CatalogMembership extends MemberLookup {
  /** A random alive member other than us (in another site when `otherSite`), for anti-entropy. */
  randomPeer(opts?: { otherSite?: boolean }): string | undefined;
  /** Every member known, with its state (for the DHT announcements' choice of members). */
  members(): ReadonlyArray<{ id: string; state: string }>;
  /** Membership events: on `member:up` the catalogs held for unknown nodes are checked at once. */
  addEventListener?(type: 'member:up', listener: () => void): void;
  removeEventListener?(type: 'member:up', listener: () => void): void;
}

export interface CatalogComponents extends ReplicationComponents {
  privateKey: PrivateKey;
  /** A namespace of the agent's store for the catalog. */
  store: KvStore;
  membership: CatalogMembership;
  logger: ServiceLogger;
  /** The address published for services registered without one. */
  advertiseAddress: string;
}

export interface CatalogOptions extends ReplicationOptions {
  /** Registrations from the config file, registered at every start (id defaults to the name). */
  configured?: Array<RegistrationBody & { id?: string }>;
  /** How long a received catalog waits to be written (ms). Default CATALOG_SAVE_DELAY_MS (saver.ts). */
  saveDelayMs?: number;
  /**
   * How long a catalog of a node membership does not know is held before it is dropped (ms).
   * Default CATALOG_UNKNOWN_HOLD_MS (hold.ts, 30 s).
   */
  unknownNodeHoldMs?: number;
}

/** A local registration with its current health, its check in the shape the API takes. */
export interface LocalService extends Omit<ServiceRegistration, 'check'> {
  check?: CheckBody;
  health: Health;
  output?: string;
}

/** A change of the catalog, for watches. */
export interface CatalogChange {
  /** The node whose catalog changed. */
  node: string;
  version: number;
  /** Service names whose instances on that node were added, changed or removed. */
  names: string[];
  /** When this agent applied the change (ms since the epoch): it answers queries with it from then. */
  at: number;
  /** How the change reached this agent (see ChangeSource). */
  via: ChangeSource;
}

/**
 * How a catalog change reached an agent: `local` (a registration, deregistration or check here),
 * `gossip` (the publisher's broadcast), `sync` (an anti-entropy round repaired a missed one),
 * `lookup` (fetched for a name this agent had not seen), `reaped` (membership forgot the node).
 */
export type ChangeSource = 'local' | RemoteSource | 'reaped';

const te = new TextEncoder();
const td = new TextDecoder();

export class CatalogService extends EventTarget {
  readonly #c: CatalogComponents;
  readonly #o: CatalogOptions;
  readonly state = new CatalogState();
  readonly #local = new Map<string, ServiceRegistration>();
  readonly #checks = new Map<string, HealthCheck>();
  readonly #rr = new RoundRobinCounters();
  readonly #replication: CatalogReplication;
  #version = 0;
  #started = false;
  #publishing: Promise<void> = Promise.resolve();
  readonly #saver: CatalogSaver;
  readonly #lookups: NameLookups;
  /** Catalogs of nodes membership does not know yet (hold.ts). */
  readonly #hold: UnknownNodeHold;
  #holdTimer: NodeJS.Timeout | undefined;
  readonly #onMemberUp = () => {
    if (this.#hold.size > 0) this.#releaseHeld();
  };

  constructor(components: CatalogComponents, options: CatalogOptions = {}) {
    super();
    this.#c = components;
    this.#o = options;
    this.#hold = new UnknownNodeHold({ holdMs: options.unknownNodeHoldMs });
    this.#saver = new CatalogSaver({
      store: components.store,
      signed: (node) => this.#signed.get(node),
      logger: components.logger,
      delayMs: options.saveDelayMs,
    });
    this.#replication = new CatalogReplication(components, options, {
      state: this.state,
      accept: (bytes, via, publisher) => this.#acceptRemote(bytes, via, publisher),
      signed: (node) => this.#signed.get(node),
      localNames: () => [...new Set([...this.#local.values()].map((r) => r.name))],
    });
    this.#lookups = new NameLookups({
      knows: (name) => this.knows(name),
      lookup: (name) => this.#replication.lookup(name),
      now: () => Date.now(),
    });
  }

  /** The signed bytes of every catalog we hold, ours included, for relaying. */
  readonly #signed = new Map<string, Uint8Array>();

  get selfId(): string {
    return this.#c.membership.selfId;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#saver.start();
    const store = this.#c.store;
    const v = await store.get('version');
    this.#version = v ? Number(td.decode(v)) : 0;
    for await (const [, bytes] of store.entries({ prefix: 'local/' })) {
      const reg = JSON.parse(td.decode(bytes)) as ServiceRegistration;
      this.#local.set(reg.id, reg);
    }
    this.#c.membership.addEventListener?.('member:up', this.#onMemberUp);
    const unknown: string[] = [];
    for await (const [key, bytes] of store.entries({ prefix: 'node/' })) {
      try {
        const cat = await decodeNodeCatalog(bytes);
        // a node membership does not know (yet: it may be rejoining) waits in the hold
        if (cat.node !== this.selfId && this.#c.membership.state(cat.node) === undefined) {
          if (this.#holdUnknown(cat, bytes, 'store') === 'full') unknown.push(key);
        } else if (this.state.apply(cat)) this.#signed.set(cat.node, bytes);
      } catch {
        await store.del(key);
      }
    }
    for (const key of unknown) await store.del(key);
    const configured = new Set<string>();
    for (const body of this.#o.configured ?? []) {
      const reg: ServiceRegistration = {
        ...toRegistration(body.id ?? body.name, body),
        source: 'config',
      };
      configured.add(reg.id);
      this.#local.set(reg.id, reg);
      await store.put(`local/${reg.id}`, te.encode(JSON.stringify(reg)), { sync: true });
    }
    // the config file decides what it registered: a service it no longer lists goes
    for (const reg of [...this.#local.values()]) {
      if (reg.source !== 'config' || configured.has(reg.id)) continue;
      this.#local.delete(reg.id);
      await store.del(`local/${reg.id}`, { sync: true });
      this.#c.logger.info(
        { id: reg.id, name: reg.name },
        'service deregistered: the config file no longer lists it',
      );
    }
    for (const reg of this.#local.values()) void this.#startCheck(reg);
    await this.#replication.start();
    await this.#publish();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#c.membership.removeEventListener?.('member:up', this.#onMemberUp);
    clearInterval(this.#holdTimer);
    this.#holdTimer = undefined;
    this.#saver.stop();
    for (const c of this.#checks.values()) c.stop();
    this.#checks.clear();
    await this.#replication.stop();
    await this.#publishing.catch(() => {});
    await this.#saver.flush().catch(() => {});
  }

  // ---- local registrations ----

  /** Registers (or replaces) a service on this agent; durable before it returns. */
  async register(id: string, body: RegistrationBody): Promise<LocalService> {
    const reg = toRegistration(id, body);
    this.#assertFits(id, reg);
    const old = this.#local.get(id);
    this.#checks.get(id)?.stop();
    this.#checks.delete(id);
    this.#local.set(id, reg);
    // The registration is durable before we answer, but the disk does not hold up its way to the
    // other agents: it is published (after the first check's result, which runs within its
    // timeout) while it is written. A crash before the write lands forgets it here, and the next
    // publication (at a version past any a peer holds, see #acceptRemote) takes it back out.
    await Promise.all([
      this.#c.store.put(`local/${id}`, te.encode(JSON.stringify(reg)), { sync: true }),
      this.#startCheck(reg).then(() => this.#publish()),
    ]);
    if (!old || old.name !== reg.name) this.#replication.announce(reg.name);
    return this.#describe(reg);
  }

  /**
   * Throws CatalogFullError if, with `reg` as service `id`, this agent's catalog could grow past
   * what peers accept (MAX_NODE_SERVICES, MAX_NODE_CATALOG_BYTES): they would refuse all of it,
   * and every anti-entropy round would send it again.
   */
  #assertFits(id: string, reg: ServiceRegistration): void {
    const next = new Map(this.#local).set(id, reg);
    if (next.size > MAX_NODE_SERVICES)
      throw new CatalogFullError(`this agent already has ${MAX_NODE_SERVICES} services`);
    const bytes = worstCaseCatalogBytes({
      node: this.selfId,
      version: this.#version + 1,
      services: [...next.values()].map((r) => this.#record(r)),
    });
    if (bytes > MAX_NODE_CATALOG_BYTES)
      throw new CatalogFullError(
        `this agent's catalog would reach ${bytes} bytes, over the ${MAX_NODE_CATALOG_BYTES} its peers accept; register fewer services or smaller meta on this agent`,
      );
  }

  /** Removes a service registered on this agent; false if there was none. */
  async deregister(id: string): Promise<boolean> {
    if (!this.#local.has(id)) return false;
    this.#local.delete(id);
    this.#checks.get(id)?.stop();
    this.#checks.delete(id);
    // written while it is published, as in register()
    await Promise.all([this.#c.store.del(`local/${id}`, { sync: true }), this.#publish()]);
    return true;
  }

  /**
   * Reports a ttl check, with `output` to show (the default says passed or failing); false if the
   * service does not exist, 'not_ttl' if it has no ttl check.
   */
  ttl(id: string, status: Health, output?: string): boolean | 'not_ttl' {
    const reg = this.#local.get(id);
    if (!reg) return false;
    const check = this.#checks.get(id);
    if (!check || check.def.kind !== 'ttl') return 'not_ttl';
    check.report(status, output);
    return true;
  }

  local(): LocalService[] {
    return [...this.#local.values()]
      .map((r) => this.#describe(r))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  localService(id: string): LocalService | undefined {
    const r = this.#local.get(id);
    return r ? this.#describe(r) : undefined;
  }

  /** Ports of the services registered here (for the load score's client count). */
  localPorts(): number[] {
    return [...new Set([...this.#local.values()].map((r) => r.port))];
  }

  #describe(r: ServiceRegistration): LocalService {
    const c = this.#checks.get(r.id);
    const { check, ...rest } = r;
    return {
      ...rest,
      ...(check ? { check: checkBody(check) } : {}),
      health: c ? c.health : 'passing',
      output: c?.output,
    };
  }

  #startCheck(reg: ServiceRegistration): Promise<void> {
    if (!reg.check) return Promise.resolve();
    const check = new HealthCheck(reg.check, (health, output) => {
      this.#c.logger.info({ service: reg.id, health, output }, 'service health changed');
      void this.#publish().catch((err: Error) =>
        this.#c.logger.debug({ err: err.message }, 'catalog publish failed'),
      );
    });
    this.#checks.set(reg.id, check);
    return check.start();
  }

  // ---- publication ----

  #record(r: ServiceRegistration): ServiceRecord {
    const c = this.#checks.get(r.id);
    const rec: ServiceRecord = {
      id: r.id,
      name: r.name,
      address: r.address ?? this.#c.advertiseAddress,
      port: r.port,
      tags: r.tags,
      meta: r.meta,
      health: c ? c.health : 'passing',
    };
    if (r.check) rec.check = r.check.kind;
    if (c && c.health !== 'passing') rec.output = c.output;
    return rec;
  }

  /** Bumps our version and publishes our whole catalog; calls are serialised. */
  #publish(): Promise<void> {
    const run = async () => {
      if (!this.#started) return;
      this.#version++;
      const catalog: NodeCatalog = {
        node: this.selfId,
        version: this.#version,
        services: [...this.#local.values()].map((r) => this.#record(r)),
      };
      const signed = await encodeNodeCatalog(catalog, this.#c.privateKey);
      this.#signed.set(this.selfId, signed);
      const before = this.state.get(this.selfId);
      if (this.state.apply(catalog)) this.#emit(before, catalog, 'local');
      // Broadcast while the version is written, not after: a synced write waits for the disk
      // thread and then for the event loop, which on a loaded host is a wait of its own (the
      // gain was not measurable through the N=50 bench's noise: see docs/benchmarks.md). If we
      // crash before it lands and come back at an older version, a peer's newer copy of our
      // catalog makes us jump past it (#acceptRemote).
      await Promise.all([
        this.#c.store.batch(
          [
            { type: 'put', key: 'version', value: te.encode(String(this.#version)) },
            { type: 'put', key: `node/${this.selfId}`, value: signed },
          ],
          { sync: true },
        ),
        this.#replication.broadcast(signed),
      ]);
    };
    this.#publishing = this.#publishing.then(run, run);
    return this.#publishing;
  }

  /**
   * A signed catalog from a peer: verify, apply if newer, and have it written within
   * CATALOG_SAVE_DELAY_MS (saver.ts). Returns whether it was new.
   */
  async #acceptRemote(bytes: Uint8Array, via: RemoteSource, publisher?: string): Promise<boolean> {
    const cat = await decodeNodeCatalog(bytes, publisher);
    if (cat.node === this.selfId) {
      // someone holds a newer catalog of ours than we do (we lost our version): jump past it
      if (cat.version >= this.#version) {
        this.#version = cat.version;
        void this.#publish().catch((err: Error) =>
          this.#c.logger.debug({ err: err.message }, 'catalog publish failed'),
        );
      }
      return false;
    }
    if (this.#c.membership.state(cat.node) === undefined) {
      this.#holdUnknown(cat, bytes, via);
      return false;
    }
    return this.#applyRemote(cat, bytes, via);
  }

  #applyRemote(cat: NodeCatalog, bytes: Uint8Array, via: RemoteSource): boolean {
    const before = this.state.get(cat.node);
    if (!this.state.apply(cat)) return false;
    this.#signed.set(cat.node, bytes);
    // Answered and watched at once; the disk copy follows (saver.ts). Waiting for the write first
    // put the store's queue on a registration's way to every watcher: traced on 25 agents sharing
    // 2 cores, the write took 30-230 ms; the discovery bench's p99 at N=25 went from 564-716 ms
    // to 512-559 ms without the wait. The disk copy is only for a restart, and a catalog lost
    // with the process comes back by anti-entropy.
    this.#emit(before, cat, via);
    this.#saver.save(cat.node);
    return true;
  }

  /**
   * Holds the catalog of a node membership does not know (hold.ts); one that finds no room is
   * dropped and counted (`unknown_node_hold_full`).
   */
  #holdUnknown(
    cat: NodeCatalog,
    bytes: Uint8Array,
    via: RemoteSource | 'store',
  ): 'held' | 'stale' | 'full' {
    const r = this.#hold.hold(cat, bytes, via, Date.now());
    if (r === 'full') this.#c.onBadInput?.('catalog', 'unknown_node_hold_full');
    if (r === 'held' && this.#holdTimer === undefined && this.#started) {
      const every = Math.min(CATALOG_HOLD_CHECK_MS, this.#o.unknownNodeHoldMs ?? Infinity);
      this.#holdTimer = setInterval(() => this.#releaseHeld(), every);
      this.#holdTimer.unref?.();
    }
    return r;
  }

  /**
   * Takes the held catalogs whose node membership knows now; drops (and counts, `unknown_node`)
   * those held too long, deleting a stored copy.
   */
  #releaseHeld(): void {
    const { known, expired } = this.#hold.release(
      (node) => this.#c.membership.state(node) !== undefined,
      Date.now(),
    );
    for (const h of known) this.#takeHeld(h);
    for (const h of expired) {
      this.#c.onBadInput?.('catalog', 'unknown_node');
      if (h.via === 'store' && !this.#signed.has(h.catalog.node)) this.#saver.save(h.catalog.node);
    }
    if (this.#hold.size === 0) {
      clearInterval(this.#holdTimer);
      this.#holdTimer = undefined;
    }
  }

  #takeHeld(h: HeldCatalog): void {
    if (h.via !== 'store') {
      this.#applyRemote(h.catalog, h.bytes, h.via as RemoteSource);
      return;
    }
    // as at start: its disk copy is there already
    if (this.state.apply(h.catalog)) this.#signed.set(h.catalog.node, h.bytes);
  }

  #emit(before: NodeCatalog | undefined, after: NodeCatalog, via: ChangeSource): void {
    const names = new Set<string>();
    const key = (s: ServiceRecord) => JSON.stringify(s);
    const old = new Map((before?.services ?? []).map((s) => [s.id, key(s)]));
    for (const s of after.services) if (old.get(s.id) !== key(s)) names.add(s.name);
    const now = new Set(after.services.map((s) => s.id));
    for (const s of before?.services ?? []) if (!now.has(s.id)) names.add(s.name);
    if (names.size === 0) return;
    const change: CatalogChange = {
      node: after.node,
      version: after.version,
      names: [...names].sort(),
      at: Date.now(),
      via,
    };
    this.dispatchEvent(new CustomEvent<CatalogChange>('change', { detail: change }));
  }

  /** Forgets a node that membership has reaped. */
  async forget(node: string): Promise<void> {
    const before = this.state.get(node);
    if (this.state.remove(node)) {
      this.#signed.delete(node);
      if (before) this.#emit(before, { node, version: before.version, services: [] }, 'reaped');
      this.#saver.save(node);
      await this.#saver.flush(); // rare: written before it returns
    }
  }

  // ---- queries ----

  /** Answers from the local catalog only (no network): what DNS uses. */
  discoverLocal(q: DiscoverQuery, now = Date.now()): DiscoveredInstance[] {
    return discover(this.state, this.#c.membership, q, now, this.#rr);
  }

  /** Whether any node publishes an instance of `name` (known to the local catalog). */
  knows(name: string): boolean {
    return this.state.instances(name).length > 0;
  }

  /**
   * For a name the local catalog has never seen, asks the DHT who provides it and fetches those
   * nodes' catalogs; resolves when that is done or `signal` aborts. Lookups are shared, capped
   * and a name not found is not looked up again for a while (see lookups.ts).
   */
  find(name: string, signal?: AbortSignal): Promise<void> {
    return this.#lookups.find(name, signal);
  }

  /** Answers from the local catalog, after find() for a name it has never seen. */
  async discover(q: DiscoverQuery, signal?: AbortSignal): Promise<DiscoveredInstance[]> {
    await this.find(q.name, signal);
    return this.discoverLocal(q);
  }

  /** DHT announcements made so far: straight to the closest members, or by a DHT walk. */
  get announced(): Readonly<{ direct: number; walk: number }> {
    return this.#replication.announced;
  }

  /** Runs one anti-entropy round now (tests, and after a join). */
  syncNow(peer?: string): Promise<boolean> {
    return this.#replication.syncOnce(peer);
  }
}
