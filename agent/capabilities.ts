// The agent's capabilities and how they are wired to each other, the node, the store and the
// metrics: membership, the service catalog, the replicated KV, images and the load monitor, each
// shaped like a libp2p service (start/stop, narrow components), in start order.
import { join } from 'node:path';
import type { PrivateKey } from '@libp2p/interface';
import { ImageService, KvService } from '../edge-sites/index.js';
import { CatalogService } from '../membership/catalog/service.js';
import { Membership } from '../membership/runtime/membership.js';
import { resolveSwimConfig } from '../membership/swim/index.js';
import type { KvStore } from '../storage/index.js';
import { advertiseAddress } from './advertise.js';
import type { AgentConfig } from './config/schema.js';
import { clusterRoutes } from './http/routes/cluster.js';
import { imageRoutes } from './http/routes/images.js';
import { kvRoutes } from './http/routes/kv.js';
import { serviceRoutes } from './http/routes/services.js';
import type { Route } from './http/router.js';
import { LoadMonitor } from './load.js';
import type { Logger } from './logger.js';
import type { AgentMetrics } from './metrics.js';
import type { EdgeNode } from './node.js';

/** A capability plugged into the agent: started after the node, stopped before it. */
export interface Capability {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
  routes?(): Route[];
}

export interface CapabilityContext {
  config: AgentConfig;
  dataDir: string;
  logger: Logger;
  metrics: AgentMetrics;
  node: EdgeNode;
  store: KvStore;
  privateKey: PrivateKey;
  /** The agent's addresses as peers should dial them. */
  addrs(): string[];
}

export interface Capabilities {
  membership: Membership;
  catalog: CatalogService;
  kv: KvService;
  images: ImageService;
  /** All of them, in start order. */
  capabilities: Capability[];
}

/** Creates the capabilities, in start order. */
export function createCapabilities(ctx: CapabilityContext): Capabilities {
  const { config: cfg, logger, metrics, node, store, privateKey } = ctx;
  // one counter child per direction, looked up once: every SWIM message counts
  const gossipCount = {
    in: metrics.gossipMessages.labels('in'),
    out: metrics.gossipMessages.labels('out'),
  };
  const membership = new Membership(
    {
      node,
      store: store.namespace('membership'),
      logger: logger.child({ mod: 'membership' }),
      metrics: {
        gossip: (direction) => gossipCount[direction].inc(),
        failureDetected: () => metrics.memberFailuresDetected.inc(),
        counts: (c) => {
          for (const [state, n] of Object.entries(c)) metrics.members.set({ state }, n);
        },
        dropped: (reason) => metrics.peerMessagesDropped.inc({ protocol: 'swim', reason }),
      },
    },
    {
      config: resolveSwimConfig(cfg.preset, cfg.membership),
      name: cfg.name,
      site: cfg.site,
      tags: cfg.tags,
      addrs: ctx.addrs,
    },
  );
  metrics.swim = () => membership.health();
  const catalog = new CatalogService(
    {
      node,
      privateKey,
      store: store.namespace('catalog'),
      membership,
      logger: logger.child({ mod: 'catalog' }),
      advertiseAddress: advertiseAddress(cfg.listen, cfg.advertise),
      onBadInput: (protocol, reason) => metrics.peerMessagesDropped.inc({ protocol, reason }),
    },
    {
      configured: cfg.services,
      syncIntervalMs: cfg.catalog.syncInterval,
      dhtAnnounce: cfg.catalog.dhtAnnounce,
    },
  );
  membership.addEventListener(
    'member:reap',
    (e) =>
      void catalog
        .forget((e as CustomEvent<{ member: { id: string } }>).detail.member.id)
        .catch(() => {}),
  );
  const kv = new KvService(
    {
      node,
      store: store.namespace('kv'),
      membership: {
        selfId: membership.selfId,
        selfSite: membership.selfSite,
        randomPeer: (o) => membership.randomPeer(o),
        site: (id) => membership.site(id),
        memberIds: () =>
          membership
            .members()
            .filter((m) => m.state !== 'left')
            .map((m) => m.id),
        members: () => membership.members(),
        addEventListener: (t, l) => membership.addEventListener(t, l),
        removeEventListener: (t, l) => membership.removeEventListener(t, l),
      },
      logger: logger.child({ mod: 'kv' }),
      metrics: {
        bytes: (direction, scope, n) => metrics.replicationBytes.inc({ direction, scope }, n),
        keys: (n) => metrics.kvKeys.set(n),
        dropped: (reason) => metrics.peerMessagesDropped.inc({ protocol: 'kv', reason }),
      },
    },
    { maxValueBytes: cfg.kv.maxValueSize, syncIntervalMs: cfg.kv.syncInterval },
  );
  const images = new ImageService(
    {
      node,
      privateKey,
      store,
      chunkDir: join(ctx.dataDir, 'chunks'),
      membership: {
        selfId: membership.selfId,
        selfSite: membership.selfSite,
        members: () =>
          membership
            .members()
            .map((m) => ({ id: m.id, name: m.name, site: m.site, state: m.state })),
        site: (id) => membership.site(id),
        state: (id) => membership.state(id),
        rtt: (id) => membership.rtt(id),
        randomPeer: (o) => membership.randomPeer(o),
        addEventListener: (t, l) => membership.addEventListener(t, l),
        removeEventListener: (t, l) => membership.removeEventListener(t, l),
      },
      logger: logger.child({ mod: 'images' }),
      metrics: {
        bytes: (direction, scope, n) => metrics.replicationBytes.inc({ direction, scope }, n),
        images: (c) => {
          for (const [state, n] of Object.entries(c)) metrics.images.set({ state }, n);
        },
        dropped: (reason) => metrics.peerMessagesDropped.inc({ protocol: 'images', reason }),
        badChunk: () => metrics.badChunks.inc(),
      },
    },
    {
      keepVersions: cfg.images.keepVersions,
      uploadRate: cfg.images.uploadRate,
      wanRate: cfg.images.wanRate,
      maxImageBytes: cfg.images.maxImageSize,
    },
  );
  const load = new LoadMonitor({
    servicePorts: () => catalog.localPorts(),
    publish: (score) => membership.updateMeta({ load: score }),
  });
  const capabilities: Capability[] = [
    {
      name: 'membership',
      start: () => membership.start(),
      stop: () => membership.stop(),
      routes: () => clusterRoutes(membership, () => images.sitesSummary()),
    },
    {
      name: 'catalog',
      start: () => catalog.start(),
      stop: () => catalog.stop(),
      routes: () => serviceRoutes(catalog),
    },
    { name: 'kv', start: () => kv.start(), stop: () => kv.stop(), routes: () => kvRoutes(kv) },
    {
      name: 'images',
      start: () => images.start(),
      stop: () => images.stop(),
      routes: () => imageRoutes(images),
    },
    { name: 'load', start: () => load.start(), stop: () => load.stop() },
  ];
  return { membership, catalog, kv, images, capabilities };
}
