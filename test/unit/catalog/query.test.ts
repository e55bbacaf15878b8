import { describe, expect, it } from 'vitest';
import { discover, RoundRobinCounters } from '../../../membership/catalog/query.js';
import { CatalogState } from '../../../membership/catalog/state.js';
import type {
  MemberLookup,
  NodeCatalog,
  ServiceRecord,
} from '../../../membership/catalog/types.js';

type M = {
  name: string;
  site: string;
  state: 'alive' | 'suspect' | 'dead' | 'left';
  rtt?: number;
  load?: number;
  changedAt?: number;
};

function lookup(self: string, members: Record<string, M>): MemberLookup {
  return {
    selfId: self,
    selfSite: members[self].site,
    state: (id) => members[id]?.state,
    name: (id) => members[id]?.name,
    site: (id) => members[id]?.site,
    stateChangedAt: (id) => members[id]?.changedAt,
    rtt: (id) => members[id]?.rtt,
    load: (id) => members[id]?.load,
    siteReachable: (site) =>
      Object.values(members).some(
        (m) => m.site === site && (m.state === 'alive' || m.state === 'suspect'),
      ),
  };
}

function svc(id: string, extra: Partial<ServiceRecord> = {}): ServiceRecord {
  return {
    id,
    name: 'web',
    address: '10.0.0.1',
    port: 80,
    tags: [],
    meta: {},
    health: 'passing',
    ...extra,
  };
}

function catalog(...nodes: NodeCatalog[]): CatalogState {
  const c = new CatalogState();
  for (const n of nodes) c.apply(n);
  return c;
}

const members: Record<string, M> = {
  a1: { name: 'a1', site: 'a', state: 'alive', rtt: 0 },
  a2: { name: 'a2', site: 'a', state: 'alive', rtt: 1 },
  b1: { name: 'b1', site: 'b', state: 'alive', rtt: 30, load: 0.1 },
  c1: { name: 'c1', site: 'c', state: 'alive', rtt: 80, load: 0.5 },
};

describe('CatalogState', () => {
  it('keeps the highest version per node and indexes by name', () => {
    const c = new CatalogState();
    expect(c.apply({ node: 'n', version: 2, services: [svc('x')] })).toBe(true);
    expect(c.apply({ node: 'n', version: 1, services: [] })).toBe(false);
    expect(c.apply({ node: 'n', version: 2, services: [] })).toBe(false);
    expect(c.instances('web')).toHaveLength(1);
    expect(c.apply({ node: 'n', version: 3, services: [svc('y', { name: 'api' })] })).toBe(true);
    expect(c.instances('web')).toHaveLength(0);
    expect(c.names()).toEqual(['api']);
  });

  it('digests tell what each side lacks', () => {
    const a = catalog(
      { node: 'x', version: 2, services: [] },
      { node: 'y', version: 1, services: [] },
    );
    const b = catalog(
      { node: 'x', version: 1, services: [] },
      { node: 'z', version: 5, services: [] },
    );
    expect(a.newerThan(b.digest()).map((c) => c.node)).toEqual(['x', 'y']);
    expect(a.wanted(b.digest())).toEqual(['z']);
    expect(a.digestHash()).not.toBe(b.digestHash());
    b.apply({ node: 'x', version: 2, services: [] });
    b.apply({ node: 'y', version: 1, services: [] });
    a.apply({ node: 'z', version: 5, services: [] });
    expect(a.digestHash()).toBe(b.digestHash());
  });
});

describe('discover', () => {
  const cat = catalog(
    { node: 'a2', version: 1, services: [svc('web-a2', { address: '10.0.0.2' })] },
    { node: 'b1', version: 1, services: [svc('web-b1', { address: '10.0.1.1', tags: ['v2'] })] },
    {
      node: 'c1',
      version: 1,
      services: [
        svc('web-c1', { address: '10.0.2.1', tags: ['v2'] }),
        svc('bad', { health: 'failing' }),
      ],
    },
  );

  it('nearest: same site first, then by estimated RTT', () => {
    const r = discover(cat, lookup('a1', members), { name: 'web', strategy: 'nearest' }, 0);
    expect(r.map((i) => i.id)).toEqual(['web-a2', 'web-b1', 'web-c1']);
    const fromC = discover(cat, lookup('c1', members), { name: 'web', strategy: 'nearest' }, 0);
    expect(fromC[0].id).toBe('web-c1');
  });

  it('failing instances only with all; filters by site, tag, limit', () => {
    const q = lookup('a1', members);
    expect(
      discover(cat, q, { name: 'web', strategy: 'nearest', all: true }, 0).map((i) => i.id),
    ).toContain('bad');
    expect(
      discover(cat, q, { name: 'web', strategy: 'nearest', site: 'b' }, 0).map((i) => i.id),
    ).toEqual(['web-b1']);
    expect(
      discover(cat, q, { name: 'web', strategy: 'nearest', tags: ['v2'] }, 0).map((i) => i.id),
    ).toEqual(['web-b1', 'web-c1']);
    expect(discover(cat, q, { name: 'web', strategy: 'nearest', limit: 1 }, 0)).toHaveLength(1);
    expect(discover(cat, q, { name: 'nothing', strategy: 'nearest' }, 0)).toEqual([]);
  });

  it('score: lowest load first', () => {
    const r = discover(cat, lookup('a1', members), { name: 'web', strategy: 'score' }, 0);
    expect(r.map((i) => i.id)).toEqual(['web-b1', 'web-c1', 'web-a2']);
  });

  it('round-robin rotates per client without disturbing other clients', () => {
    const rr = new RoundRobinCounters();
    const q = lookup('a1', members);
    const first = (client: string) =>
      discover(cat, q, { name: 'web', strategy: 'round-robin', client }, 0, rr)[0].id;
    expect([first('x'), first('x'), first('x'), first('x')]).toEqual([
      'web-a2',
      'web-b1',
      'web-c1',
      'web-a2',
    ]);
    expect(first('y')).toBe('web-a2');
    expect(first('x')).toBe('web-b1');
  });

  it('drops a dead node whose site is reachable, keeps a cut-off site as stale after fresh ones', () => {
    const deadB = { ...members, b1: { ...members.b1, state: 'dead' as const, changedAt: 10_000 } };
    // b1 is the only member of site b: the site is unreachable → stale
    const r = discover(cat, lookup('a1', deadB), { name: 'web', strategy: 'nearest' }, 40_000);
    expect(r.map((i) => [i.id, i.stale])).toEqual([
      ['web-a2', false],
      ['web-c1', false],
      ['web-b1', true],
    ]);
    expect(r[2].ageSeconds).toBe(30);
    // with another live member in site b, b1's death is a real failure → dropped
    const withB2 = { ...deadB, b2: { name: 'b2', site: 'b', state: 'alive' as const } };
    expect(
      discover(cat, lookup('a1', withB2), { name: 'web', strategy: 'nearest' }, 0).map((i) => i.id),
    ).toEqual(['web-a2', 'web-c1']);
    // a dead member of our own site is dropped; a left one and an unknown one too
    const deadA2 = { ...members, a2: { ...members.a2, state: 'dead' as const } };
    expect(
      discover(cat, lookup('a1', deadA2), { name: 'web', strategy: 'nearest' }, 0).map((i) => i.id),
    ).not.toContain('web-a2');
    const leftC = { ...members, c1: { ...members.c1, state: 'left' as const } };
    expect(
      discover(cat, lookup('a1', leftC), { name: 'web', strategy: 'nearest' }, 0).map((i) => i.id),
    ).not.toContain('web-c1');
  });
});
