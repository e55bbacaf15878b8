// Which chunk to ask which peer for. Pure (randomness injected).
//
// Rarest first: among the chunks we lack, each peer is asked for those the fewest of our peers
// hold (random among equals), so every chunk spreads from its first holder at once and the origin
// is asked mostly for chunks nobody else has yet: its upload stays near one copy of the image.
// Requests are pipelined up to a window of bytes per peer. Chunks marked urgent (a client reading
// the image now) go before everything else.
//
// A peer added as `spared` (the image's origin across the WAN: its uplink is the one everybody
// wants at first) is asked only for chunks no other connected peer holds, so the origin sends
// each chunk about once and the pullers spread it among themselves (BitTorrent's super-seeding,
// decided on the pulling side). Urgent chunks are asked of it regardless.
import { Bitfield } from './bitfield.js';

/** The rarity order is recomputed at most this often (ms): it costs a pass over the missing chunks. */
export const REBUILD_EVERY_MS = 250;

export interface PeerView {
  bits: Bitfield;
  inflightBytes: number;
  inflight: Set<number>;
  /** Asked only for chunks no unspared peer holds. */
  spared: boolean;
  /**
   * Entries of the rarity order before this had nothing to ask this peer for when last scanned
   * (reset whenever that can change), so a call does not walk every missing chunk again: with a
   * call per chunk received and per `have` from each source, those walks were ~15% of the samples
   * in the CPU profiles of the 8 lab agents.
   */
  scanned: number;
  /** Chunks the peer announced since (they may lie before `scanned`): tried first. */
  fresh: number[];
}

export class PieceScheduler {
  readonly size: number;
  readonly have: Bitfield;
  readonly #sizes: readonly number[];
  readonly #rng: () => number;
  readonly #peers = new Map<string, PeerView>();
  /** How many peers hold each chunk. */
  readonly #count: Uint16Array;
  /** How many unspared peers hold each chunk. */
  readonly #plain: Uint16Array;
  /** Chunk → the peer it is requested from. */
  readonly #requested = new Map<number, string>();
  /** Missing chunks ordered by rarity, rebuilt lazily. */
  #order: number[] = [];
  #dirty = true;
  #urgent: number[] = [];
  #rebuiltAt = -Infinity;
  /** Every entry of #order before this is had or requested. */
  #cursor = 0;
  /**
   * Entries of #order before this one had, when it was built, no more holders than there are
   * spared peers: the only ones a spared peer can be asked for (no unspared holder), so its scan
   * stops here instead of walking every missing chunk on each call.
   */
  #sparedEnd = 0;
  readonly #now: () => number;

  constructor(
    sizes: readonly number[],
    have: Bitfield,
    rng: () => number = Math.random,
    now: () => number = () => performance.now(),
  ) {
    this.#now = now;
    this.size = sizes.length;
    this.#sizes = sizes;
    this.have = have;
    this.#rng = rng;
    this.#count = new Uint16Array(sizes.length);
    this.#plain = new Uint16Array(sizes.length);
  }

  get complete(): boolean {
    return this.have.complete;
  }

  peers(): string[] {
    return [...this.#peers.keys()];
  }

  peer(id: string): PeerView | undefined {
    return this.#peers.get(id);
  }

  /** Connected peers that are not spared (they may hold nothing yet). */
  unspared(): number {
    let n = 0;
    for (const p of this.#peers.values()) if (!p.spared) n++;
    return n;
  }

  addPeer(id: string, bits: Bitfield, opts: { spared?: boolean } = {}): void {
    this.removePeer(id);
    const spared = opts.spared ?? false;
    this.#peers.set(id, {
      bits,
      inflightBytes: 0,
      inflight: new Set(),
      spared,
      scanned: 0,
      fresh: [],
    });
    if (spared) this.#sparedEnd = this.#order.length;
    for (let i = 0; i < this.size; i++) if (bits.has(i)) this.#hold(i, spared, 1);
    this.#dirty = true;
  }

  /** Makes a connected peer spared or not: what the puller knows of its own site changed. */
  setSpared(id: string, spared: boolean): void {
    const p = this.#peers.get(id);
    if (!p || p.spared === spared) return;
    for (let i = 0; i < this.size; i++) if (p.bits.has(i)) this.#plain[i] += spared ? -1 : 1;
    p.spared = spared;
    this.#rescan();
    this.#sparedEnd = this.#order.length; // until the rebuild, spared peers scan all
    this.#dirty = true;
  }

  #hold(i: number, spared: boolean, by: 1 | -1): void {
    this.#count[i] += by;
    if (!spared) this.#plain[i] += by;
  }

  /** A peer got new chunks. */
  peerHas(id: string, indexes: readonly number[]): void {
    const p = this.#peers.get(id);
    if (!p) return;
    for (const i of indexes)
      if (i >= 0 && i < this.size && p.bits.set(i)) {
        this.#hold(i, p.spared, 1);
        if (!this.have.has(i)) p.fresh.push(i);
      }
    this.#dirty = true;
  }

  /** A peer went away: its requests go back in the pool. */
  removePeer(id: string): void {
    const p = this.#peers.get(id);
    if (!p) return;
    for (let i = 0; i < this.size; i++) if (p.bits.has(i)) this.#hold(i, p.spared, -1);
    for (const i of p.inflight) this.#requested.delete(i);
    this.#peers.delete(id);
    this.#rescan();
    this.#sparedEnd = this.#order.length; // holders went: until the rebuild, spared peers scan all
    this.#dirty = true;
  }

  /** Moves these chunks to the front (a reader is waiting for them). */
  urgent(indexes: readonly number[]): void {
    this.#urgent = indexes.filter((i) => !this.have.has(i));
  }

  #rebuild(): void {
    // counting sort by holder count (a small integer), shuffled within each count: O(chunks),
    // where sorting 13k chunks of a 256 MiB image four times a second was ~5% of a relay's CPU
    const buckets: number[][] = [];
    for (let i = 0; i < this.size; i++)
      if (!this.have.has(i)) (buckets[this.#count[i]] ??= []).push(i);
    let spared = 0;
    for (const p of this.#peers.values()) if (p.spared) spared++;
    const order: number[] = [];
    let sparedEnd = -1;
    for (let c = 0; c < buckets.length; c++) {
      const b = buckets[c];
      if (c > spared && sparedEnd < 0) sparedEnd = order.length;
      if (!b) continue;
      for (let k = b.length - 1; k > 0; k--) {
        const j = Math.floor(this.#rng() * (k + 1));
        const t = b[k];
        b[k] = b[j];
        b[j] = t;
      }
      for (const i of b) order.push(i);
    }
    this.#order = order;
    this.#sparedEnd = sparedEnd < 0 ? order.length : sparedEnd;
    this.#rescan();
    this.#dirty = false;
    this.#rebuiltAt = this.#now();
  }

  /** Chunks to request from `peer` now, keeping its in-flight bytes under `window`. Marks them requested. */
  next(peerId: string, window: number): number[] {
    const p = this.#peers.get(peerId);
    if (!p) return [];
    if (this.#dirty && this.#now() - this.#rebuiltAt >= REBUILD_EVERY_MS) this.#rebuild();
    const out: number[] = [];
    // refill in batches: only once half the window has drained
    if (p.inflightBytes > window / 2 && this.#urgent.length === 0) return out;
    const take = (i: number, urgent = false) => {
      if (this.have.has(i) || this.#requested.has(i) || !p.bits.has(i)) return false;
      if (p.spared && !urgent && this.#plain[i] > 0) return false;
      this.#requested.set(i, peerId);
      p.inflight.add(i);
      p.inflightBytes += this.#sizes[i];
      out.push(i);
      return true;
    };
    for (const i of this.#urgent) {
      if (p.inflightBytes >= window) return out;
      take(i, true);
    }
    // skip the settled front of the order (chunks we have or asked someone for)
    while (
      this.#cursor < this.#order.length &&
      (this.have.has(this.#order[this.#cursor]) || this.#requested.has(this.#order[this.#cursor]))
    )
      this.#cursor++;
    // what the peer announced since its last scan first (new at a peer means rare), then the
    // order from where that scan stopped
    let k = 0;
    while (k < p.fresh.length && p.inflightBytes < window) take(p.fresh[k++]);
    p.fresh = k === p.fresh.length ? [] : p.fresh.slice(k);
    const end = p.spared ? this.#sparedEnd : this.#order.length;
    let r = Math.max(this.#cursor, p.scanned);
    for (; r < end && p.inflightBytes < window; r++) take(this.#order[r]);
    p.scanned = r;
    return out;
  }

  /** Every peer scans the order from its start again (something before a scan point changed). */
  #rescan(): void {
    this.#cursor = 0;
    for (const p of this.#peers.values()) p.scanned = 0;
  }

  /** A requested chunk arrived and was stored. */
  received(peerId: string, i: number): void {
    this.have.set(i);
    this.#release(peerId, i);
  }

  /**
   * The peer answered that it does not have chunk i (it lost it): it no longer counts as a holder,
   * so the chunk goes to another holder, or to a spared peer if that was the only other one.
   */
  missing(peerId: string, i: number): void {
    this.#release(peerId, i);
    const p = this.#peers.get(peerId);
    if (p && p.bits.clear(i)) {
      this.#hold(i, p.spared, -1);
      this.#sparedEnd = this.#order.length;
      this.#dirty = true;
    }
  }

  /** A request failed (peer lacks it, bad bytes, stream closed): it may be asked of someone else. */
  failed(peerId: string, i: number): void {
    this.#release(peerId, i);
  }

  #release(peerId: string, i: number): void {
    if (!this.have.has(i)) this.#rescan();
    const p = this.#peers.get(peerId);
    if (p && p.inflight.delete(i)) p.inflightBytes -= this.#sizes[i];
    if (this.#requested.get(i) === peerId) this.#requested.delete(i);
  }

  /** A chunk we had was lost (found corrupt): it is wanted again. */
  lost(i: number): void {
    this.have.clear(i);
    this.#dirty = true;
    this.#rebuiltAt = -Infinity;
    this.#rescan();
  }

  /** Chunks missing that no connected peer holds (the pull needs more peers). */
  unavailable(): number {
    let n = 0;
    for (let i = 0; i < this.size; i++) if (!this.have.has(i) && this.#count[i] === 0) n++;
    return n;
  }
}
