// Placement: which members must hold an image. Pure.
//
// An image's placement names the sites that must hold it ("all" or a list) and the full copies
// wanted per site. In each placed site the holders are the `copies` members (alive or suspect) that
// rank highest by rendezvous hashing of (image digest, member id): every agent computes the same
// answer from the same membership, with no coordination, and when a holder dies the next member in
// rank takes over, while the others keep their copies.
import { createHash } from 'node:crypto';

export interface PlacementMember {
  id: string;
  site: string;
  state: 'alive' | 'suspect' | 'dead' | 'left';
}

export interface PlacedImage {
  digest: string;
  placement: { sites: 'all' | string[]; copies: number };
}

export function siteIsPlaced(image: PlacedImage, site: string): boolean {
  return image.placement.sites === 'all' || image.placement.sites.includes(site);
}

function score(digest: string, id: string): string {
  return createHash('sha256').update(digest).update('\0').update(id).digest('hex');
}

/** The members of `site` that must hold `image` (best rank first). */
export function holdersInSite(
  image: PlacedImage,
  site: string,
  members: readonly PlacementMember[],
): string[] {
  if (!siteIsPlaced(image, site)) return [];
  return members
    .filter((m) => m.site === site && (m.state === 'alive' || m.state === 'suspect'))
    .map((m) => ({ id: m.id, s: score(image.digest, m.id) }))
    .sort((a, b) => (a.s < b.s ? 1 : a.s > b.s ? -1 : 0))
    .slice(0, image.placement.copies)
    .map((m) => m.id);
}

/** The sites that must hold `image`, given the sites that exist. */
export function placedSites(image: PlacedImage, sites: Iterable<string>): string[] {
  return [...new Set(sites)].filter((s) => siteIsPlaced(image, s)).sort();
}

/** Whether `self` (a member of `members`, in `site`) must hold `image`. */
export function shouldHold(
  image: PlacedImage,
  self: string,
  site: string,
  members: readonly PlacementMember[],
): boolean {
  return holdersInSite(image, site, members).includes(self);
}
