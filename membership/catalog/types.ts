// The service catalog's data: each agent owns the services registered on it and publishes them as
// one NodeCatalog with a version that only grows; every agent keeps the newest NodeCatalog of every
// node.

export type Health = 'passing' | 'failing';
export type CheckKind = 'http' | 'tcp' | 'ttl';

/** A service instance as published by the agent it is registered on. */
export interface ServiceRecord {
  id: string;
  name: string;
  /** Where clients connect: the registration's address, or the agent's advertised address. */
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  health: Health;
  /** The kind of check behind `health`, if any. */
  check?: CheckKind;
  /** Why the last check failed, if it did. */
  output?: string;
}

/** All services of one node (agent), versioned by their owner. */
export interface NodeCatalog {
  /** The owner's member id (libp2p peer id). */
  node: string;
  /** Bumped by the owner on every change; higher wins everywhere. */
  version: number;
  services: ServiceRecord[];
}

/** How a member looks to the catalog: what the discovery strategies need. */
export interface MemberLookup {
  readonly selfId: string;
  readonly selfSite: string;
  /** State of a member, undefined when membership does not know it. */
  state(id: string): 'alive' | 'suspect' | 'dead' | 'left' | undefined;
  name(id: string): string | undefined;
  site(id: string): string | undefined;
  /** When the member's state last changed (ms since epoch). */
  stateChangedAt(id: string): number | undefined;
  /** Estimated round-trip time from this agent to the member (ms), from network coordinates. */
  rtt(id: string): number | undefined;
  /** The member's published load score (lower is better), if any. */
  load(id: string): number | undefined;
  /** Whether any member of `site` is alive or suspect (i.e. the site is reachable). */
  siteReachable(site: string): boolean;
}

export type Strategy = 'nearest' | 'score' | 'round-robin';

export interface DiscoverQuery {
  name: string;
  strategy: Strategy;
  site?: string;
  tags?: string[];
  /** Round-robin rotation is kept per client id. */
  client?: string;
  limit?: number;
  /** Include failing instances (and instances of unreachable nodes). */
  all?: boolean;
}

/** One answer of a discovery query. */
export interface DiscoveredInstance {
  id: string;
  name: string;
  /** Name of the member the instance runs on. */
  node: string;
  nodeId: string;
  site: string;
  address: string;
  port: number;
  tags: string[];
  meta: Record<string, string>;
  health: Health;
  /**
   * True when the instance's node cannot be reached right now (its whole site is cut off from
   * us): the answer is the last known one.
   */
  stale: boolean;
  /** Seconds since this instance's node was last known alive (0 when it is alive now). */
  ageSeconds: number;
}
