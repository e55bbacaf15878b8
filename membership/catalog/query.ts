// Local discovery queries, answered from the local catalog and membership with no network round
// trip. Pure: everything it needs comes in as arguments.
//
// Which instances are answered:
// - an instance whose node is alive or suspect is fresh;
// - an instance whose node is dead is dropped when the node's site still has a reachable member
//   (the node itself failed), but kept as `stale` when its whole site is unreachable (a partition
//   or a WAN cut: a stale answer beats none); our own site is always reachable (we are in it), so
//   a dead member of our own site is always dropped;
// - an instance whose node left, or that membership does not know, is dropped;
// - failing instances are dropped unless `all` is set.
// Fresh instances come before stale ones, then the strategy orders each group.
import type { CatalogState } from './state.js';
import type { DiscoveredInstance, DiscoverQuery, MemberLookup } from './types.js';

/** How many round-robin client counters are kept (least recently used dropped first). */
export const ROUND_ROBIN_CLIENTS = 10_000;

/** Per-client rotation counters for the round-robin strategy. */
export class RoundRobinCounters {
  readonly #counters = new Map<string, number>();
  readonly #max: number;

  constructor(max = ROUND_ROBIN_CLIENTS) {
    this.#max = max;
  }

  /** Returns the client's counter for `key` and advances it. */
  next(client: string, key: string): number {
    const k = `${client}\u0000${key}`;
    const n = this.#counters.get(k) ?? 0;
    this.#counters.delete(k);
    this.#counters.set(k, n + 1);
    if (this.#counters.size > this.#max) {
      const oldest = this.#counters.keys().next().value as string;
      this.#counters.delete(oldest);
    }
    return n;
  }

  get size(): number {
    return this.#counters.size;
  }
}

function byId(a: DiscoveredInstance, b: DiscoveredInstance): number {
  if (a.nodeId !== b.nodeId) return a.nodeId < b.nodeId ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** Orders by: this agent first, then same site, then estimated RTT, then a stable id order. */
function nearestOrder(members: MemberLookup) {
  return (a: DiscoveredInstance, b: DiscoveredInstance): number => {
    const selfA = a.nodeId === members.selfId ? 0 : 1;
    const selfB = b.nodeId === members.selfId ? 0 : 1;
    if (selfA !== selfB) return selfA - selfB;
    const siteA = a.site === members.selfSite ? 0 : 1;
    const siteB = b.site === members.selfSite ? 0 : 1;
    if (siteA !== siteB) return siteA - siteB;
    const rA = members.rtt(a.nodeId) ?? Number.MAX_SAFE_INTEGER;
    const rB = members.rtt(b.nodeId) ?? Number.MAX_SAFE_INTEGER;
    if (rA !== rB) return rA - rB;
    return byId(a, b);
  };
}

function scoreOrder(members: MemberLookup) {
  return (a: DiscoveredInstance, b: DiscoveredInstance): number => {
    const lA = members.load(a.nodeId) ?? Number.MAX_SAFE_INTEGER;
    const lB = members.load(b.nodeId) ?? Number.MAX_SAFE_INTEGER;
    if (lA !== lB) return lA - lB;
    return nearestOrder(members)(a, b);
  };
}

export function discover(
  catalog: CatalogState,
  members: MemberLookup,
  q: DiscoverQuery,
  now: number,
  rr?: RoundRobinCounters,
): DiscoveredInstance[] {
  const fresh: DiscoveredInstance[] = [];
  const stale: DiscoveredInstance[] = [];
  for (const { node, service } of catalog.instances(q.name)) {
    const state = members.state(node);
    const site = members.site(node);
    if (state === undefined || site === undefined || state === 'left') continue;
    if (q.site !== undefined && site !== q.site) continue;
    if (q.tags && !q.tags.every((t) => service.tags.includes(t))) continue;
    if (service.health !== 'passing' && !q.all) continue;
    let isStale = false;
    let age = 0;
    if (state === 'dead') {
      if (site === members.selfSite || members.siteReachable(site)) continue;
      isStale = true;
      age = Math.max(0, Math.round((now - (members.stateChangedAt(node) ?? now)) / 1000));
    }
    const inst: DiscoveredInstance = {
      id: service.id,
      name: service.name,
      node: members.name(node) ?? node,
      nodeId: node,
      site,
      address: service.address,
      port: service.port,
      tags: service.tags,
      meta: service.meta,
      health: service.health,
      stale: isStale,
      ageSeconds: age,
    };
    (isStale ? stale : fresh).push(inst);
  }
  const order = (list: DiscoveredInstance[]): DiscoveredInstance[] => {
    if (q.strategy === 'score') return list.sort(scoreOrder(members));
    if (q.strategy === 'round-robin') {
      list.sort(byId);
      if (list.length > 1 && rr) {
        const n = rr.next(q.client ?? '', q.name) % list.length;
        return [...list.slice(n), ...list.slice(0, n)];
      }
      return list;
    }
    return list.sort(nearestOrder(members));
  };
  const out = [...order(fresh), ...order(stale)];
  return q.limit !== undefined && q.limit >= 0 ? out.slice(0, q.limit) : out;
}
