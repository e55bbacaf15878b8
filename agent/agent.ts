// The agent: composition and lifecycle. It opens the data directory, creates the libp2p node and
// the capabilities (services shaped like libp2p services: start/stop, narrow components), serves
// the HTTP API and DNS, joins the cluster, and stops everything in order.
import { chmodSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { join as joinPath, resolve, sep } from 'node:path';
import type { Connection } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { ImageService, KvService } from '../edge-sites/index.js';
import type { CatalogService } from '../membership/catalog/service.js';
import type { Membership } from '../membership/runtime/membership.js';
import { LevelStore, StoreLockedError, type KvStore } from '../storage/index.js';
import { createCapabilities, type Capability } from './capabilities.js';
import type { AgentConfig } from './config/schema.js';
import { formatHostPort } from './host-port.js';
import { DnsServer } from './dns/server.js';
import {
  ConfigError,
  DataCorruptedError,
  DataDirLockedError,
  ListenError,
  fileErrorReason,
  levelCorruption,
} from './errors.js';
import { agentRoutes } from './http/routes/agent.js';
import { Router } from './http/router.js';
import { HttpApiServer } from './http/server.js';
import { loadOrCreateAdminToken, loadOrCreateClusterKey, loadOrCreatePeerKey } from './identity.js';
import { Joiner, type JoinResult } from './join.js';
import { createLogger, type Logger } from './logger.js';
import { AgentMetrics } from './metrics.js';
import { createNode, type EdgeNode } from './node.js';
import { toMultiaddr } from './peer-addr.js';
import { VERSION } from './version.js';

/** The longest a graceful stop may take before the agent gives up waiting (ms). */
export const STOP_TIMEOUT_MS = 4_000;
/**
 * Longest a DNS query for a service name the catalog does not know waits for a DHT lookup before
 * it is answered (ms): well inside a stub resolver's usual 5 s timeout and dig's 2-5 s.
 */
export const DNS_DHT_LOOKUP_MS = 1_000;

export interface AgentOptions {
  config: AgentConfig;
  /** Defaults to a pino logger at config.logLevel writing JSON lines to stdout. */
  logger?: Logger;
  /** Called when the agent stops by itself (POST /v1/leave). */
  onExit?: () => void;
}

export interface AgentInfo {
  id: string;
  name: string;
  site: string;
  tags: Record<string, string>;
  addrs: string[];
  version: string;
  uptimeSeconds: number;
}

export class Agent {
  readonly config: AgentConfig;
  readonly dataDir: string;
  readonly logger: Logger;
  readonly metrics = new AgentMetrics();
  readonly version = VERSION;
  #node: EdgeNode | undefined;
  #store: LevelStore | undefined;
  #http: HttpApiServer | undefined;
  #joiner: Joiner | undefined;
  #dns: DnsServer | undefined;
  #membership: Membership | undefined;
  #catalog: CatalogService | undefined;
  #kv: KvService | undefined;
  #images: ImageService | undefined;
  #token = '';
  #startedAt = 0;
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  #stopPromise: Promise<void> | undefined;
  readonly #capabilities: Capability[] = [];
  readonly #onExit?: () => void;

  constructor(opts: AgentOptions) {
    this.config = opts.config;
    this.dataDir = resolve(opts.config.data);
    this.logger = opts.logger ?? createLogger(opts.config.logLevel, { name: opts.config.name });
    this.#onExit = opts.onExit;
  }

  get node(): EdgeNode {
    if (!this.#node) throw new Error('agent not started');
    return this.#node;
  }

  get store(): KvStore {
    if (!this.#store) throw new Error('agent not started');
    return this.#store;
  }

  get membership(): Membership {
    if (!this.#membership) throw new Error('agent not started');
    return this.#membership;
  }

  get catalog(): CatalogService {
    if (!this.#catalog) throw new Error('agent not started');
    return this.#catalog;
  }

  get kv(): KvService {
    if (!this.#kv) throw new Error('agent not started');
    return this.#kv;
  }

  get images(): ImageService {
    if (!this.#images) throw new Error('agent not started');
    return this.#images;
  }

  /** The DNS interface's bound address, or undefined when it is off. */
  get dnsAddress(): { host: string; port: number } | undefined {
    return this.#dns?.address;
  }

  get peerId(): string {
    return this.node.peerId.toString();
  }

  get token(): string {
    return this.#token;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** The HTTP API's bound address, or undefined when it is off. */
  get apiAddress(): { host: string; port: number } | undefined {
    return this.#http?.address;
  }

  addrs(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  info(): AgentInfo {
    return {
      id: this.peerId,
      name: this.config.name,
      site: this.config.site,
      tags: this.config.tags,
      addrs: this.addrs(),
      version: this.version,
      uptimeSeconds: Math.floor((Date.now() - this.#startedAt) / 1000),
    };
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start an agent that is ${this.#state}`);
    this.#state = 'starting';
    try {
      await this.#start();
    } catch (err) {
      await this.#shutdown(false).catch(() => {});
      this.#state = 'stopped';
      // LevelDB's own text names no file and no way out (it was all an operator saw)
      const corruption = levelCorruption(err);
      if (corruption !== undefined)
        throw new DataCorruptedError(this.dataDir, corruption, { cause: err });
      throw err;
    }
    this.#state = 'running';
  }

  async #start(): Promise<void> {
    const cfg = this.config;
    try {
      makeDirs(this.dataDir, 0o700);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(
        'data',
        `cannot use ${this.dataDir} as the data directory: ${code === 'EEXIST' || code === 'ENOTDIR' ? 'it (or a parent) is a file' : (code ?? (err as Error).message)}`,
      );
    }
    keepPrivate(this.dataDir, this.logger);
    const { key: psk, created: newKey } = loadOrCreateClusterKey(this.dataDir, cfg.clusterKey);
    if (newKey && cfg.join.length > 0)
      this.logger.warn(
        { clusterKey: newKey },
        'created a new cluster key: this agent cannot join agents that have another key (copy their key file here instead)',
      );
    else if (newKey)
      this.logger.info(
        { clusterKey: newKey },
        'created a new cluster key: copy this file to every agent of the cluster',
      );
    // after the cluster key: a bad key file is refused before this agent's identity is made
    const privateKey = await loadOrCreatePeerKey(this.dataDir);
    this.#token = loadOrCreateAdminToken(this.dataDir);
    try {
      this.#store = await LevelStore.open(joinPath(this.dataDir, 'db'), {
        logger: this.logger.child({ mod: 'store' }),
      });
    } catch (err) {
      if (err instanceof StoreLockedError) throw new DataDirLockedError(this.dataDir);
      throw err;
    }
    const peerId = peerIdFromPrivateKey(privateKey).toString();
    this.#node = await createNode({ privateKey, psk, listen: cfg.listen });
    const node = this.#node;
    node.addEventListener('connection:open', () => this.metrics.connectedPeers.inc());
    node.addEventListener('connection:close', () => this.metrics.connectedPeers.dec());

    this.#joiner = new Joiner((addr, signal) => this.#joinOne(addr, signal), this.logger);
    try {
      await node.start();
    } catch (err) {
      if ((err as Error).name === 'UnsupportedListenAddressesError')
        throw ListenError.fromLibp2p(err as Error);
      throw err;
    }
    const caps = createCapabilities({
      config: cfg,
      dataDir: this.dataDir,
      logger: this.logger,
      metrics: this.metrics,
      node,
      store: this.#store,
      privateKey,
      addrs: () => this.addrs(),
    });
    this.#membership = caps.membership;
    this.#catalog = caps.catalog;
    this.#kv = caps.kv;
    this.#images = caps.images;
    this.#capabilities.push(...caps.capabilities);
    for (const c of this.#capabilities) await c.start();

    const router = new Router();
    router.add(...agentRoutes(this));
    for (const c of this.#capabilities) if (c.routes) router.add(...c.routes());
    if (cfg.api) {
      this.#http = new HttpApiServer({
        ...cfg.api,
        router,
        token: this.#token,
        logger: this.logger,
        metrics: this.metrics,
      });
      const { host, port } = cfg.api;
      await this.#http.start().catch((err: Error) => {
        throw ListenError.forKey('api', host, port, err);
      });
    }
    if (cfg.dns) {
      const catalog = this.catalog;
      this.#dns = new DnsServer({
        ...cfg.dns,
        logger: this.logger,
        registry: this.metrics.registry,
        resolver: {
          // an unknown service, or a site no member is in (a typo), is NXDOMAIN, not an empty
          // answer that looks like a known site with nothing running
          lookup: (name, site) =>
            catalog.knows(name) && (site === undefined || this.#siteKnown(site))
              ? catalog.discoverLocal({ name, strategy: 'nearest', site })
              : undefined,
          find: (name) => catalog.find(name, AbortSignal.timeout(DNS_DHT_LOOKUP_MS)),
        },
      });
      const { host, port } = cfg.dns;
      await this.#dns.start().catch((err: Error) => {
        throw ListenError.forKey('dns', host, port, err);
      });
    }
    this.#startedAt = Date.now();
    if (cfg.join.length > 0) this.#joiner.joinInBackground(cfg.join);
    const api = this.#http?.address;
    this.logger.info(
      {
        peerId,
        site: cfg.site,
        addrs: this.addrs(),
        api: api ? `http://${formatHostPort(api)}` : 'off',
        dns: this.#dns?.address ? formatHostPort(this.#dns.address) : 'off',
        data: this.dataDir,
        version: this.version,
      },
      'agent started',
    );
  }

  /** Whether any member this agent knows (itself included) is in `site`. */
  #siteKnown(site: string): boolean {
    return site === this.config.site || this.membership.members().some((m) => m.site === site);
  }

  /** Dials one join address and runs the membership join with the peer behind it. */
  async #joinOne(addr: string, signal: AbortSignal): Promise<string> {
    const conn: Connection = await this.node.dial(toMultiaddr(addr), { signal });
    const peer = conn.remotePeer.toString();
    await this.membership.join(peer, signal);
    return peer;
  }

  /** Joins through the given addresses now; failed ones are not retried. */
  async join(addrs: string[], signal?: AbortSignal): Promise<JoinResult[]> {
    if (!this.#joiner) throw new Error('agent not started');
    return this.#joiner.joinNow(addrs, signal);
  }

  /**
   * Stops the agent: tells the cluster it is leaving (when `leave`), stops the capabilities in
   * reverse order, the HTTP API and the node, and closes the store. Safe to call repeatedly.
   */
  stop(opts: { leave?: boolean } = {}): Promise<void> {
    if (this.#stopPromise) return this.#stopPromise;
    if (this.#state === 'new') {
      this.#state = 'stopped';
      return Promise.resolve();
    }
    this.#state = 'stopping';
    this.#stopPromise = this.#shutdown(opts.leave ?? true).finally(() => {
      this.#state = 'stopped';
    });
    return this.#stopPromise;
  }

  /** Leaves the cluster and stops; then calls onExit (the CLI exits the process). */
  async leaveAndExit(): Promise<void> {
    await this.stop({ leave: true });
    this.#onExit?.();
  }

  async #shutdown(leave: boolean): Promise<void> {
    const log = this.logger;
    this.#joiner?.stop();
    const steps: Array<[string, () => Promise<void> | void]> = [];
    if (leave && this.#membership) steps.push(['leave', () => this.#membership?.leave()]);
    steps.push(['dns', () => this.#dns?.stop()]);
    for (const c of [...this.#capabilities].reverse()) steps.push([c.name, () => c.stop()]);
    steps.push(['http', () => this.#http?.stop()]);
    steps.push(['node', () => this.#node?.stop()]);
    steps.push(['store', () => this.#store?.close()]);
    const deadline = Date.now() + STOP_TIMEOUT_MS;
    for (const [name, step] of steps) {
      const left = deadline - Date.now();
      try {
        await withTimeout(Promise.resolve().then(step), Math.max(100, left));
      } catch (err) {
        log.warn({ err: (err as Error).message, step: name }, 'stop step failed or timed out');
      }
    }
    // an agent that failed to start says why on stderr; "stopped" is for one that had started
    if (this.#startedAt > 0) log.info('agent stopped');
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * The state directories under DATA (the level database: KV values, catalogs, manifests; the chunk
 * packs), made or chmod-ed 0700 at every start. DATA is made 0700, but one the operator made
 * beforehand keeps its mode, and level makes its directory 0755 and its files 0644: every local
 * user could read the KV store. Files in DATA itself (keys, token) are written 0600.
 */
export const PRIVATE_DIRS = ['db', 'chunks'] as const;

/** Keeps PRIVATE_DIRS 0700, and warns when DATA itself is open to the group or others. */
function keepPrivate(dataDir: string, logger: Logger): void {
  const mode = statSync(dataDir).mode & 0o777;
  if ((mode & 0o077) !== 0)
    logger.warn(
      { data: dataDir, mode: `0${mode.toString(8)}` },
      'the data directory is open to other local users; its state directories are kept 0700, but chmod 700 it',
    );
  for (const name of PRIVATE_DIRS) {
    const dir = joinPath(dataDir, name);
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new ConfigError('data', `cannot create ${dir}: ${fileErrorReason(err)}`);
    }
    // a symlink (to a disk mounted elsewhere) is the operator's: its target's mode is left alone
    if (lstatSync(dir).isSymbolicLink()) continue;
    try {
      chmodSync(dir, 0o700);
    } catch (err) {
      throw new ConfigError(
        'data',
        `cannot make ${dir} private (chmod 700): ${fileErrorReason(err)}`,
      );
    }
  }
}

/**
 * mkdir -p, one level at a time. Node's recursive mkdir loops forever, at full CPU and deaf to
 * SIGTERM, on a path under /proc (mkdir gives ENOENT there, and it retries the parent, which
 * exists); this stops at the first level that cannot be made.
 */
function makeDirs(path: string, mode: number): void {
  const full = resolve(path);
  const parts = full.split(sep).filter(Boolean);
  let at = full.startsWith(sep) ? sep : '';
  for (const part of parts) {
    at = joinPath(at, part);
    try {
      mkdirSync(at, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (!statSync(at).isDirectory())
        throw Object.assign(new Error(`${at} is not a directory`), { code: 'ENOTDIR' });
    }
  }
}
