// The hold of catalogs of nodes membership does not know (hold.ts): taken once the node is known,
// dropped after the hold, bounded in count and bytes, a newer version not extending the hold.
import { describe, expect, it } from 'vitest';
import { UnknownNodeHold } from '../../../membership/catalog/hold.js';
import type { NodeCatalog } from '../../../membership/catalog/types.js';

const cat = (node: string, version: number): NodeCatalog => ({ node, version, services: [] });
const bytes = (n: number) => new Uint8Array(n);

describe('UnknownNodeHold', () => {
  it('releases a catalog once its node is known, drops it after the hold otherwise', () => {
    const h = new UnknownNodeHold({ holdMs: 1000 });
    expect(h.hold(cat('a', 1), bytes(10), 'gossip', 0)).toBe('held');
    expect(h.hold(cat('b', 1), bytes(10), 'sync', 0)).toBe('held');
    const known = new Set<string>();
    expect(h.release((n) => known.has(n), 500)).toEqual({ known: [], expired: [] });
    known.add('a');
    const r = h.release((n) => known.has(n), 600);
    expect(r.known.map((x) => [x.catalog.node, x.via])).toEqual([['a', 'gossip']]);
    expect(r.expired).toEqual([]);
    const later = h.release((n) => known.has(n), 1000);
    expect(later.expired.map((x) => x.catalog.node)).toEqual(['b']);
    expect(h.size).toBe(0);
    expect(h.bytes).toBe(0);
  });

  it('keeps the newest version; a newer one does not extend the hold', () => {
    const h = new UnknownNodeHold({ holdMs: 1000 });
    expect(h.hold(cat('a', 2), bytes(10), 'gossip', 0)).toBe('held');
    expect(h.hold(cat('a', 1), bytes(10), 'gossip', 100)).toBe('stale');
    expect(h.hold(cat('a', 2), bytes(10), 'gossip', 100)).toBe('stale');
    expect(h.hold(cat('a', 3), bytes(30), 'sync', 900)).toBe('held');
    expect(h.bytes).toBe(30);
    const r = h.release(() => false, 1000);
    expect(r.expired.map((x) => x.catalog.version)).toEqual([3]);
  });

  it('is bounded in count and in bytes', () => {
    const h = new UnknownNodeHold({ maxCount: 2, maxBytes: 100 });
    expect(h.hold(cat('a', 1), bytes(40), 'gossip', 0)).toBe('held');
    expect(h.hold(cat('b', 1), bytes(70), 'gossip', 0)).toBe('full');
    expect(h.hold(cat('b', 1), bytes(60), 'gossip', 0)).toBe('held');
    expect(h.hold(cat('c', 1), bytes(1), 'gossip', 0)).toBe('full');
    // replacing a held one counts its new size only
    expect(h.hold(cat('a', 2), bytes(40), 'gossip', 0)).toBe('held');
    expect(h.hold(cat('a', 3), bytes(41), 'gossip', 0)).toBe('full');
    expect([h.size, h.bytes]).toEqual([2, 100]);
  });
});
