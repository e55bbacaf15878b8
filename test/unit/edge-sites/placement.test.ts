// Placement (which members must hold an image) and source choice (whom a pull asks, in what
// order, and whom it spares): the pure policies of edge-sites/.
import { describe, expect, it } from 'vitest';
import {
  holdersInSite,
  inOwnSite,
  isSpared,
  placedSites,
  rankSources,
  shouldHold,
  type PlacedImage,
  type PlacementMember,
  type SourceView,
} from '../../../edge-sites/index.js';

const member = (id: string, site: string, state: PlacementMember['state'] = 'alive') => ({
  id,
  site,
  state,
});

const image = (sites: 'all' | string[], copies = 1, digest = 'sha256:aa'): PlacedImage => ({
  digest,
  placement: { sites, copies },
});

describe('placement', () => {
  const members = [
    member('a1', 'a'),
    member('a2', 'a'),
    member('a3', 'a'),
    member('b1', 'b'),
    member('b2', 'b', 'dead'),
    member('c1', 'c', 'left'),
  ];

  it('holds `copies` live members per placed site, the same answer in any member order', () => {
    const img = image('all', 2);
    const holders = holdersInSite(img, 'a', members);
    expect(holders).toHaveLength(2);
    expect(holders.every((h) => ['a1', 'a2', 'a3'].includes(h))).toBe(true);
    expect(holdersInSite(img, 'a', [...members].reverse())).toEqual(holders);
    // dead and left members hold nothing; a site with fewer live members than copies has them all
    expect(holdersInSite(img, 'b', members)).toEqual(['b1']);
    expect(holdersInSite(img, 'c', members)).toEqual([]);
    for (const m of members)
      expect(shouldHold(img, m.id, m.site, members)).toBe(
        holdersInSite(img, m.site, members).includes(m.id),
      );
  });

  it('a site not named holds nothing; placedSites lists the named ones that exist', () => {
    const img = image(['a', 'x']);
    expect(holdersInSite(img, 'b', members)).toEqual([]);
    expect(holdersInSite(img, 'a', members)).toHaveLength(1);
    expect(placedSites(img, ['b', 'a', 'c', 'a'])).toEqual(['a']);
    expect(placedSites(image('all'), ['b', 'a', 'b'])).toEqual(['a', 'b']);
  });

  it('when a holder dies the next in rank takes over and the others keep their copies', () => {
    const img = image('all', 2, 'sha256:bb');
    const before = holdersInSite(img, 'a', members);
    const gone = before[0];
    const after = holdersInSite(
      img,
      'a',
      members.map((m) => (m.id === gone ? { ...m, state: 'dead' as const } : m)),
    );
    expect(after).toHaveLength(2);
    expect(after).toContain(before[1]);
    expect(after).not.toContain(gone);
  });

  it('spreads images over the members of a site (rendezvous hashing, not always the first)', () => {
    const site = Array.from({ length: 4 }, (_, i) => member(`m${i}`, 's'));
    const counts = new Map<string, number>();
    for (let i = 0; i < 400; i++) {
      const [h] = holdersInSite(image('all', 1, `sha256:${i}`), 's', site);
      counts.set(h, (counts.get(h) ?? 0) + 1);
    }
    expect(counts.size).toBe(4);
    for (const n of counts.values()) expect(n).toBeGreaterThan(60);
  });
});

/** A membership view: self is `me` in site a. */
function view(
  sites: Record<string, string>,
  opts: { rtt?: Record<string, number>; state?: Record<string, string> } = {},
): SourceView {
  return {
    selfId: 'me',
    selfSite: 'a',
    site: (id) => (id === 'me' ? 'a' : sites[id]),
    state: (id) => (id in sites || id === 'me' ? (opts.state?.[id] ?? 'alive') : undefined),
    rtt: (id) => opts.rtt?.[id],
  };
}

describe('source choice', () => {
  const v = view(
    { a1: 'a', a2: 'a', b1: 'b', c1: 'c', d1: 'd', gone: 'b' },
    { rtt: { a1: 5, a2: 1, b1: 40, c1: 20 }, state: { gone: 'dead' } },
  );

  it('ranks own site first, then by RTT (unknown last); drops self, dead and unknown peers', () => {
    expect(rankSources(v, ['d1', 'b1', 'me', 'a1', 'gone', 'c1', 'stranger', 'a2', 'b1'])).toEqual([
      'a2',
      'a1',
      'c1',
      'b1',
      'd1',
    ]);
  });

  it('a site-mate counts only when live and not ourselves', () => {
    expect(inOwnSite(v, ['b1', 'me'])).toBe(false);
    expect(inOwnSite(v, ['b1', 'a1'])).toBe(true);
    const suspect = view({ a1: 'a' }, { state: { a1: 'suspect' } });
    expect(inOwnSite(suspect, ['a1'])).toBe(true);
    const dead = view({ a1: 'a' }, { state: { a1: 'dead' } });
    expect(inOwnSite(dead, ['a1'])).toBe(false);
  });

  it('spares the origin across the WAN, and every WAN source once a site-mate holds the whole', () => {
    const none = () => [];
    // the origin across the WAN is spared; another WAN holder is not, nor a site-mate origin
    expect(isSpared(v, 'b1', 'b1', none)).toBe(true);
    expect(isSpared(v, 'c1', 'b1', none)).toBe(false);
    expect(isSpared(v, 'a1', 'a1', none)).toBe(false);
    // a live site-mate with the whole image: every WAN source is spared, site-mates never
    expect(isSpared(v, 'c1', 'b1', () => ['d1', 'a1'])).toBe(true);
    expect(isSpared(v, 'a2', 'b1', () => ['a1'])).toBe(false);
    // a whole copy only across the WAN, or at a dead site-mate, or at ourselves, spares nothing more
    expect(isSpared(v, 'c1', 'b1', () => ['d1', 'gone', 'me'])).toBe(false);
    const deadMate = view({ a1: 'a', c1: 'c' }, { state: { a1: 'dead' } });
    expect(isSpared(deadMate, 'c1', 'b1', () => ['a1'])).toBe(false);
    // a peer whose site is not known yet counts as across the WAN
    expect(isSpared(v, 'stranger', 'stranger', none)).toBe(true);
  });
});
