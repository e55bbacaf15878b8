// Source choice for a pull: which peers to pull an image's chunks from, in what order, and which
// of them to spare. Pure: the caller passes what membership, the holders' own reports and the DHT
// say; nothing here does I/O.
//
// Order: members of our own site first (LAN bandwidth is cheap and does not cross the WAN), then
// by estimated RTT (nearest first; unknown RTT last). Sparing (BitTorrent's super-seeding, decided
// on the pulling side): a spared source is asked only for chunks no other source holds. Across the
// WAN the image's origin is always spared, so it sends each chunk about once and the sites spread
// it among themselves; once a live member of our own site holds the whole image, every source
// across the WAN is spared, so the site-mate sends the image and the WAN fills only gaps.

/** What source choice needs to know of the membership. */
export interface SourceView {
  readonly selfId: string;
  readonly selfSite: string;
  site(id: string): string | undefined;
  state(id: string): string | undefined;
  rtt(id: string): number | undefined;
}

/** Where a peer is from our side: in our own site, or across the WAN (an unknown member too). */
export function scopeOf(view: SourceView, peer: string): 'site' | 'wan' {
  return view.site(peer) === view.selfSite ? 'site' : 'wan';
}

/** Alive or suspect: a member that may still answer. */
function reachable(view: SourceView, peer: string): boolean {
  const s = view.state(peer);
  return s === 'alive' || s === 'suspect';
}

/** RTT rank of a member whose RTT is not known yet: after every measured one. */
const UNKNOWN_RTT = 1e9;

/**
 * The candidates (holders of some chunks, the origin, DHT providers) that may serve a pull, best
 * first: live members other than ourselves, our own site first, then by estimated RTT.
 */
export function rankSources(view: SourceView, candidates: Iterable<string>): string[] {
  const live = [...new Set(candidates)].filter((p) => p !== view.selfId && reachable(view, p));
  const rank = (p: string) =>
    [view.site(p) === view.selfSite ? 0 : 1, view.rtt(p) ?? UNKNOWN_RTT] as const;
  return live.sort((a, b) => {
    const [sa, ra] = rank(a);
    const [sb, rb] = rank(b);
    return sa - sb || ra - rb;
  });
}

/** Whether any of `peers` is a live member of our own site (other than ourselves). */
export function inOwnSite(view: SourceView, peers: Iterable<string>): boolean {
  for (const p of peers)
    if (p !== view.selfId && view.site(p) === view.selfSite && reachable(view, p)) return true;
  return false;
}

/**
 * Whether `peer` is to be spared: it is across the WAN and it is the image's origin (`creator`),
 * or a live member of our own site holds the whole image (`wholeHolders`: those that said their
 * copy is complete, and the DHT's providers, which an agent becomes when its copy is complete).
 */
export function isSpared(
  view: SourceView,
  peer: string,
  creator: string,
  wholeHolders: () => Iterable<string>,
): boolean {
  if (scopeOf(view, peer) === 'site') return false;
  return peer === creator || inOwnSite(view, wholeHolders());
}
