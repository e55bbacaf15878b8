// The catalog every agent keeps: the newest NodeCatalog of every node. Pure: no I/O; the runtime
// persists what apply() accepts.
import { createHash } from 'node:crypto';
import type { NodeCatalog, ServiceRecord } from './types.js';

export type Digest = Array<[node: string, version: number]>;

export class CatalogState {
  readonly #nodes = new Map<string, NodeCatalog>();
  /** service name → nodes that have at least one instance of it */
  readonly #byName = new Map<string, Set<string>>();
  #digestHash: string | undefined;

  /** Accepts `c` if it is newer than what we hold for its node. Returns whether it changed. */
  apply(c: NodeCatalog): boolean {
    const cur = this.#nodes.get(c.node);
    if (cur && cur.version >= c.version) return false;
    if (cur) this.#unindex(cur);
    this.#nodes.set(c.node, c);
    for (const s of c.services) {
      let set = this.#byName.get(s.name);
      if (!set) this.#byName.set(s.name, (set = new Set()));
      set.add(c.node);
    }
    this.#digestHash = undefined;
    return true;
  }

  /** Forgets a node entirely (after it has been gone longer than the reap timeout). */
  remove(node: string): boolean {
    const cur = this.#nodes.get(node);
    if (!cur) return false;
    this.#unindex(cur);
    this.#nodes.delete(node);
    this.#digestHash = undefined;
    return true;
  }

  #unindex(c: NodeCatalog): void {
    for (const s of c.services) {
      const set = this.#byName.get(s.name);
      if (!set) continue;
      set.delete(c.node);
      if (set.size === 0) this.#byName.delete(s.name);
    }
  }

  get(node: string): NodeCatalog | undefined {
    return this.#nodes.get(node);
  }

  nodes(): NodeCatalog[] {
    return [...this.#nodes.values()];
  }

  get size(): number {
    return this.#nodes.size;
  }

  /** Every instance of a service name, with its node. */
  instances(name: string): Array<{ node: string; service: ServiceRecord }> {
    const out: Array<{ node: string; service: ServiceRecord }> = [];
    for (const node of this.#byName.get(name) ?? []) {
      for (const service of this.#nodes.get(node)?.services ?? [])
        if (service.name === name) out.push({ node, service });
    }
    return out;
  }

  names(): string[] {
    return [...this.#byName.keys()].sort();
  }

  /** Every node and its version, sorted by node. */
  digest(): Digest {
    return [...this.#nodes.values()]
      .map((c): [string, number] => [c.node, c.version])
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** A hash of the digest: two catalogs with the same hash hold the same versions. */
  digestHash(): string {
    if (this.#digestHash === undefined) {
      const h = createHash('sha256');
      for (const [n, v] of this.digest()) h.update(`${n}:${v}\n`);
      this.#digestHash = h.digest('hex').slice(0, 32);
    }
    return this.#digestHash;
  }

  /** The catalogs we hold that are newer than (or missing from) a peer's digest. */
  newerThan(peer: Digest): NodeCatalog[] {
    const theirs = new Map(peer);
    return [...this.#nodes.values()].filter((c) => (theirs.get(c.node) ?? -1) < c.version);
  }

  /** The nodes for which a peer's digest has a newer version than ours. */
  wanted(peer: Digest): string[] {
    return peer.filter(([n, v]) => (this.#nodes.get(n)?.version ?? -1) < v).map(([n]) => n);
  }
}
