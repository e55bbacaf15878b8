// Catalogs of nodes that membership does not know. A catalog can come before the membership news
// of a new member (its gossip races SWIM's), so one is held for a while, in memory only: not
// answered, relayed, stored or put in the digest. It is taken once membership knows its node, and
// dropped (counted) if it still does not after CATALOG_UNKNOWN_HOLD_MS. Anyone with the cluster
// key can sign catalogs for made-up identities; this keeps them out of every agent's catalog,
// disk and anti-entropy frames. Pure: the runtime (service.ts) passes the time and asks membership.
import type { NodeCatalog } from './types.js';

/**
 * How long a catalog of a node membership does not know is held (ms): 30 s. SWIM spreads a join
 * to every member within a few protocol periods (1 s each, `lan` preset) even on 10,000 agents;
 * a catalog dropped too early comes back by anti-entropy once membership knows its node.
 */
export const CATALOG_UNKNOWN_HOLD_MS = 30_000;
/**
 * Most catalogs held at once: 256, enough for a burst of new members whose catalogs arrive before
 * their joins; more are dropped (counted) and come back by anti-entropy.
 */
export const MAX_HELD_CATALOGS = 256;
/**
 * Most bytes of signed catalogs held at once: 4 MiB (8 catalogs of the largest size a peer
 * accepts, thousands of ordinary ones), so made-up identities cost an agent this much memory at
 * most, never its disk.
 */
export const MAX_HELD_BYTES = 4 * 1024 * 1024;
/**
 * How often held catalogs are checked against membership (ms): 1 s. They are also checked at
 * once when membership reports a member up (when its runtime has events); this interval is what
 * drops the expired ones, and takes a held catalog at most this late without such events.
 */
export const CATALOG_HOLD_CHECK_MS = 1_000;

export interface HeldCatalog {
  catalog: NodeCatalog;
  /** The signed bytes, as received. */
  bytes: Uint8Array;
  /** How it came (the runtime's RemoteSource, or `store` when it was loaded at start). */
  via: string;
  /** When it was first held (ms): a newer version does not extend the hold. */
  since: number;
}

export interface HoldLimits {
  holdMs?: number;
  maxCount?: number;
  maxBytes?: number;
}

export class UnknownNodeHold {
  readonly #held = new Map<string, HeldCatalog>();
  readonly #holdMs: number;
  readonly #maxCount: number;
  readonly #maxBytes: number;
  #bytes = 0;

  constructor(limits: HoldLimits = {}) {
    this.#holdMs = limits.holdMs ?? CATALOG_UNKNOWN_HOLD_MS;
    this.#maxCount = limits.maxCount ?? MAX_HELD_CATALOGS;
    this.#maxBytes = limits.maxBytes ?? MAX_HELD_BYTES;
  }

  /**
   * Holds `catalog` until its node is known: `held` (or replaced an older version of it), `stale`
   * (an equal or newer version is held already), `full` (no room: not held).
   */
  hold(
    catalog: NodeCatalog,
    bytes: Uint8Array,
    via: string,
    now: number,
  ): 'held' | 'stale' | 'full' {
    const cur = this.#held.get(catalog.node);
    if (cur && cur.catalog.version >= catalog.version) return 'stale';
    const count = this.#held.size + (cur ? 0 : 1);
    const total = this.#bytes - (cur?.bytes.length ?? 0) + bytes.length;
    if (count > this.#maxCount || total > this.#maxBytes) return 'full';
    this.#held.set(catalog.node, { catalog, bytes, via, since: cur?.since ?? now });
    this.#bytes = total;
    return 'held';
  }

  /**
   * Takes out the catalogs whose node `known` now says membership knows (`known`), and those held
   * CATALOG_UNKNOWN_HOLD_MS or longer (`expired`).
   */
  release(
    known: (node: string) => boolean,
    now: number,
  ): { known: HeldCatalog[]; expired: HeldCatalog[] } {
    const out = { known: [] as HeldCatalog[], expired: [] as HeldCatalog[] };
    for (const [node, h] of this.#held) {
      if (known(node)) out.known.push(h);
      else if (now - h.since >= this.#holdMs) out.expired.push(h);
      else continue;
      this.#held.delete(node);
      this.#bytes -= h.bytes.length;
    }
    return out;
  }

  /** Whether a catalog of `node` is held. */
  has(node: string): boolean {
    return this.#held.has(node);
  }

  get size(): number {
    return this.#held.size;
  }

  /** Bytes of the signed catalogs held. */
  get bytes(): number {
    return this.#bytes;
  }
}
