// Membership routes: members and sites.
import type { Membership, MemberInfo } from '../../../membership/runtime/membership.js';
import type { Route } from '../router.js';

export interface SiteSummary {
  site: string;
  members: { alive: number; suspect: number; dead: number; left: number };
  images?: { complete: number; total: number };
}

export function summarizeSites(members: MemberInfo[]): SiteSummary[] {
  const by = new Map<string, SiteSummary>();
  for (const m of members) {
    let s = by.get(m.site);
    if (!s)
      by.set(m.site, (s = { site: m.site, members: { alive: 0, suspect: 0, dead: 0, left: 0 } }));
    s.members[m.state]++;
  }
  return [...by.values()].sort((a, b) => (a.site < b.site ? -1 : 1));
}

export function clusterRoutes(
  membership: Membership,
  imageSites?: () => Promise<Map<string, { complete: number; total: number }>>,
): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/members',
      handler: () => ({
        json: membership.members().map((m) => ({
          id: m.id,
          name: m.name,
          site: m.site,
          state: m.state,
          incarnation: m.incarnation,
          addrs: m.addrs,
          tags: m.tags,
          load: m.load,
          rttMs: m.self ? 0 : roundOrUndefined(membership.rtt(m.id)),
          self: m.self,
          stateChangedAt: m.stateChangedAt,
        })),
      }),
    },
    {
      method: 'GET',
      path: '/v1/sites',
      handler: async () => {
        const sites = summarizeSites(membership.members());
        const images = await imageSites?.();
        if (images)
          for (const s of sites) s.images = images.get(s.site) ?? { complete: 0, total: 0 };
        return { json: sites };
      },
    },
  ];
}

function roundOrUndefined(v: number | undefined): number | undefined {
  return v === undefined ? undefined : Math.round(v * 100) / 100;
}
