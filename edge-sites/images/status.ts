// Who holds what: the progress every agent announces for the images it holds or pulls, and the
// per-site replication status built from it. Pure.
import type { PlacementMember } from '../placement.js';
import { holdersInSite, siteIsPlaced } from '../placement.js';

export interface Progress {
  have: number;
  total: number;
  bytes: number;
  done: boolean;
  at: number;
}

/** digest → member → what that member last said about its copy. */
export class ProgressTable {
  readonly #t = new Map<string, Map<string, Progress>>();

  set(digest: string, member: string, p: Progress): void {
    let m = this.#t.get(digest);
    if (!m) this.#t.set(digest, (m = new Map()));
    m.set(member, p);
  }

  get(digest: string, member: string): Progress | undefined {
    return this.#t.get(digest)?.get(member);
  }

  of(digest: string): Map<string, Progress> {
    return this.#t.get(digest) ?? new Map();
  }

  forgetMember(member: string): void {
    for (const m of this.#t.values()) m.delete(member);
  }

  forgetDigest(digest: string): void {
    this.#t.delete(digest);
  }
}

export interface SiteStatus {
  site: string;
  /** This site must hold the image. */
  placed: boolean;
  /** Copies wanted in the site (bounded by its live members). */
  wanted: number;
  /** Names of live members with a full, verified copy. */
  complete: string[];
  /** Bytes of the image held by live members of the site, summed. */
  bytesHeld: number;
  /** Members that should hold it by placement. */
  holders: string[];
}

export function siteStatus(
  image: { digest: string; size: number; placement: { sites: 'all' | string[]; copies: number } },
  members: ReadonlyArray<PlacementMember & { name: string }>,
  progress: Map<string, Progress>,
): SiteStatus[] {
  const sites = new Set(members.map((m) => m.site));
  if (image.placement.sites !== 'all') for (const s of image.placement.sites) sites.add(s);
  const out: SiteStatus[] = [];
  for (const site of [...sites].sort()) {
    const live = members.filter(
      (m) => m.site === site && (m.state === 'alive' || m.state === 'suspect'),
    );
    const complete: string[] = [];
    let bytesHeld = 0;
    for (const m of live) {
      const p = progress.get(m.id);
      if (!p) continue;
      bytesHeld += p.bytes;
      if (p.done) complete.push(m.name);
    }
    const placed = siteIsPlaced(image, site);
    const byId = new Map(members.map((m) => [m.id, m.name]));
    out.push({
      site,
      placed,
      wanted: placed ? Math.min(image.placement.copies, live.length) : 0,
      complete: complete.sort(),
      bytesHeld,
      holders: holdersInSite(image, site, members).map((id) => byId.get(id) ?? id),
    });
  }
  return out;
}
