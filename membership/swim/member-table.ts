// The member table of one core, compact: state, incarnation and time of the last state change in
// typed arrays indexed by the interned member index; metadata as references into a pool of shared
// immutable objects (interner.metas). Two dense
// index lists give O(1) random choice and O(1) updates:
//   live: alive + suspect members other than self; also the probe order: positions before
//         probeIndex were probed in this pass, the next target is drawn from the rest;
//   down: dead + left members (for reconnect, gossip to the dead and reaping).
// About 25 bytes per (core, member) pair, all in typed arrays (no work for the garbage collector):
// 10,000 simulated cores x 10,000 members take ~2.5 GB.

import type { IdInterner, MetaPool } from './interner.js';
import type { MemberMeta, MemberState } from './types.js';

export const ST_NONE = 0;
export const ST_ALIVE = 1;
export const ST_SUSPECT = 2;
export const ST_DEAD = 3;
export const ST_LEFT = 4;

export const STATE_NAMES: ReadonlyArray<MemberState | undefined> = [
  undefined,
  'alive',
  'suspect',
  'dead',
  'left',
];

export function stateCode(s: MemberState): number {
  return s === 'alive' ? ST_ALIVE : s === 'suspect' ? ST_SUSPECT : s === 'dead' ? ST_DEAD : ST_LEFT;
}

const isLiveCode = (s: number) => s === ST_ALIVE || s === ST_SUSPECT;
const isDownCode = (s: number) => s === ST_DEAD || s === ST_LEFT;

export class MemberTable {
  readonly interner: IdInterner;
  readonly selfIdx: number;
  private cap = 0;
  state = new Uint8Array(0);
  inc = new Uint32Array(0);
  changedAt = new Float64Array(0);
  private metaRef = new Uint32Array(0);
  private readonly pool: MetaPool<MemberMeta>;
  /** Position of a member in `live` or `down` (a member is in at most one), or -1. */
  private pos = new Int32Array(0);
  private live = new Int32Array(16);
  private liveLen = 0;
  private down = new Int32Array(16);
  private downLen = 0;
  /** Next position of `live` to probe; everything before it was probed in this pass. */
  private probeIndex = 0;
  /** Members per state code, self included. */
  private readonly counts = [0, 0, 0, 0, 0];

  constructor(interner: IdInterner, selfId: string) {
    this.interner = interner;
    this.pool = interner.metas;
    this.selfIdx = interner.intern(selfId);
    this.ensure(Math.max(interner.capacity, this.selfIdx + 1));
  }

  /** Grows the arrays to hold index `n - 1`. */
  ensure(n: number): void {
    if (n <= this.cap) return;
    const cap = Math.max(n, Math.ceil(this.cap * 1.5), this.interner.capacity, 16);
    const st = new Uint8Array(cap);
    st.set(this.state);
    const inc = new Uint32Array(cap);
    inc.set(this.inc);
    const ch = new Float64Array(cap);
    ch.set(this.changedAt);
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    this.state = st;
    this.inc = inc;
    this.changedAt = ch;
    this.pos = pos;
    const mr = new Uint32Array(cap);
    mr.set(this.metaRef);
    this.metaRef = mr;
    this.cap = cap;
  }

  get capacity(): number {
    return this.cap;
  }

  /** The metadata of `idx`, if it is a member. */
  metaOf(idx: number): MemberMeta | undefined {
    return idx >= 0 && idx < this.cap ? this.pool.get(this.metaRef[idx]) : undefined;
  }

  /** State code of `idx` (ST_NONE if not a member or out of range). */
  code(idx: number): number {
    return idx >= 0 && idx < this.cap ? this.state[idx] : ST_NONE;
  }

  /** Alive + suspect members other than self. */
  get liveCount(): number {
    return this.liveLen;
  }

  get downCount(): number {
    return this.downLen;
  }

  /** Members in a state (self included). */
  count(code: number): number {
    return this.counts[code];
  }

  /**
   * Inserts or changes a member. Keeps the lists and counts in step; `changedAt` is only written
   * when the state changes (or the member is new).
   */
  set(idx: number, code: number, incarnation: number, meta: MemberMeta, now: number): void {
    this.ensure(idx + 1);
    const old = this.state[idx];
    this.inc[idx] = incarnation;
    const oldRef = this.metaRef[idx];
    if (this.pool.get(oldRef) !== meta) {
      this.metaRef[idx] = this.pool.acquire(meta);
      this.pool.release(oldRef);
    }
    if (old === code) return;
    this.state[idx] = code;
    this.changedAt[idx] = now;
    this.counts[old]--;
    this.counts[code]++;
    if (idx === this.selfIdx) return;
    if (isLiveCode(old) && !isLiveCode(code)) this.removeLive(idx);
    else if (isDownCode(old) && !isDownCode(code)) this.removeDown(idx);
    if (isLiveCode(code) && !isLiveCode(old)) this.addLive(idx);
    else if (isDownCode(code) && !isDownCode(old)) this.addDown(idx);
  }

  /** Forgets a member entirely (reaping). */
  remove(idx: number): void {
    const old = this.code(idx);
    if (old === ST_NONE) return;
    if (idx !== this.selfIdx) {
      if (isLiveCode(old)) this.removeLive(idx);
      else if (isDownCode(old)) this.removeDown(idx);
    }
    this.counts[old]--;
    this.state[idx] = ST_NONE;
    this.inc[idx] = 0;
    this.changedAt[idx] = 0;
    this.pool.release(this.metaRef[idx]);
    this.metaRef[idx] = 0;
  }

  /**
   * The next member to probe: a uniformly random member among those not yet probed in this pass
   * (a lazy Fisher-Yates shuffle: each pass is a fresh random order, at O(1) per probe). -1 if
   * there is nobody to probe.
   */
  nextProbe(rng: () => number): number {
    if (this.liveLen === 0) return -1;
    if (this.probeIndex >= this.liveLen) this.probeIndex = 0;
    const j = this.probeIndex + Math.floor(rng() * (this.liveLen - this.probeIndex));
    this.swapLive(this.probeIndex, j);
    return this.live[this.probeIndex++];
  }

  /** A uniformly random live member, or -1. */
  randomLive(rng: () => number): number {
    return this.liveLen === 0 ? -1 : this.live[Math.floor(rng() * this.liveLen)];
  }

  /** A uniformly random dead or left member, or -1. */
  randomDown(rng: () => number): number {
    return this.downLen === 0 ? -1 : this.down[Math.floor(rng() * this.downLen)];
  }

  /** The i-th live member (0 <= i < liveCount), for sampling without replacement. */
  liveAt(i: number): number {
    return this.live[i];
  }

  downAt(i: number): number {
    return this.down[i];
  }

  /** Calls fn for every member index (self included), in index order. */
  forEach(fn: (idx: number, code: number) => void): void {
    const st = this.state;
    for (let i = 0; i < this.cap; i++) if (st[i] !== ST_NONE) fn(i, st[i]);
  }

  private swapLive(i: number, j: number): void {
    if (i === j) return;
    const a = this.live;
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
    this.pos[a[i]] = i;
    this.pos[a[j]] = j;
  }

  /**
   * Loads many members into an empty table at once (no per-member bookkeeping beyond the lists).
   * `idxs[i]`, `codes[i]`, `incs[i]`, `metaRefs[i]` describe member i (metaRefs from this table's
   * pool, each held once by the caller); self is skipped. Used for a converged start: 10,000 cores
   * x 10,000 members in a few seconds.
   */
  bulkLoad(
    idxs: Int32Array,
    codes: Uint8Array,
    incs: Uint32Array,
    metaRefs: Uint32Array,
    now: number,
  ): void {
    let max = 0;
    for (const i of idxs) if (i > max) max = i;
    this.ensure(max + 1);
    this.reserveLive(this.liveLen + idxs.length);
    for (let k = 0; k < idxs.length; k++) {
      const idx = idxs[k];
      const code = codes[k];
      if (idx === this.selfIdx || this.state[idx] !== ST_NONE || code === ST_NONE) continue;
      this.state[idx] = code;
      this.inc[idx] = incs[k];
      this.changedAt[idx] = now;
      this.metaRef[idx] = metaRefs[k];
      this.pool.addRefs(metaRefs[k], 1);
      this.counts[code]++;
      if (isLiveCode(code)) {
        this.live[this.liveLen] = idx;
        this.pos[idx] = this.liveLen++;
      } else this.addDown(idx);
    }
  }

  /** Makes room for `n` live members at once (bulk loading). */
  reserveLive(n: number): void {
    if (n <= this.live.length) return;
    const g = new Int32Array(n);
    g.set(this.live.subarray(0, this.liveLen));
    this.live = g;
  }

  private addLive(idx: number): void {
    if (this.liveLen === this.live.length) this.reserveLive(Math.max(16, this.live.length * 2));
    // Appended to the part not yet probed in this pass (nextProbe picks from it at random).
    const p = this.liveLen++;
    this.live[p] = idx;
    this.pos[idx] = p;
  }

  private removeLive(idx: number): void {
    let p = this.pos[idx];
    if (p < this.probeIndex) {
      // Keep "probed" before probeIndex and "not probed" after it.
      this.swapLive(p, this.probeIndex - 1);
      p = this.probeIndex - 1;
      this.probeIndex--;
    }
    this.swapLive(p, this.liveLen - 1);
    this.liveLen--;
    this.pos[idx] = -1;
  }

  private addDown(idx: number): void {
    if (this.downLen === this.down.length) {
      const g = new Int32Array(this.down.length * 2);
      g.set(this.down);
      this.down = g;
    }
    this.down[this.downLen] = idx;
    this.pos[idx] = this.downLen++;
  }

  private removeDown(idx: number): void {
    const p = this.pos[idx];
    const last = this.down[--this.downLen];
    this.down[p] = last;
    this.pos[last] = p;
    this.pos[idx] = -1;
  }
}
