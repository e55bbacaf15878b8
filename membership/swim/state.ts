// The membership state of one core and the SWIM update rules (memberlist `state.go`: aliveNode,
// suspectNode, deadNode, refute, mergeState). SwimCore (core.ts) extends this with probing, gossip,
// push-pull and timers. Effects produced while handling one call are collected in `fx`.

import type { Coordinate } from '../coordinates/index.js';
import { Awareness } from './awareness.js';
import { BroadcastQueue } from './broadcast-queue.js';
import {
  type SwimConfig,
  retransmitLimit,
  suspicionConfirmations,
  suspicionMaxTimeout,
  suspicionMinTimeout,
} from './config.js';
import { IdInterner } from './interner.js';
import {
  MemberTable,
  STATE_NAMES,
  ST_ALIVE,
  ST_DEAD,
  ST_LEFT,
  ST_NONE,
  ST_SUSPECT,
  stateCode,
} from './member-table.js';
import { assertValidMeta, freezeMeta, metaBytes, metaEquals, utf8Length } from './meta.js';
import { Suspicion } from './suspicion.js';
import type {
  Effect,
  Member,
  MemberMeta,
  MemberState,
  MembershipEventType,
  PushPullEntry,
  SwimMessage,
  Update,
} from './types.js';

interface LoadColumns {
  interner: IdInterner;
  idxs: Int32Array;
  codes: Uint8Array;
  incs: Uint32Array;
  /** Held once by the cache (so they stay valid for every core that loads the same array). */
  metaRefs: Uint32Array;
}
const loadCache = new WeakMap<readonly PushPullEntry[], LoadColumns>();

/** Largest incarnation number (it travels as an unsigned 32-bit integer). */
export const MAX_INCARNATION = 0xffff_ffff;

export interface SwimInit {
  /** Our id (the libp2p peer id string) and metadata. */
  self: { id: string; meta: MemberMeta };
  config: SwimConfig;
  /** Uniform random numbers in [0, 1): the only source of randomness. */
  rng: () => number;
  /** The runtime's clock, ms (use a monotonic clock). */
  now: number;
  /**
   * Incarnation to start at. A restarted agent passes (persisted incarnation + 1) so that its
   * alive messages beat what the cluster remembers. Default 0. If the cluster still holds a higher
   * one, the member refutes as soon as it hears of it.
   */
  initialIncarnation?: number;
  /** Share one interner between many cores (simulator); default: a private one. */
  interner?: IdInterner;
  /**
   * Members known at start (a restored snapshot, or the simulator's converged cluster): inserted
   * as they are, without events and without gossip. An entry for self is ignored; 'suspect' is
   * loaded as 'alive' (there is no suspicion timer to go with it).
   */
  initialMembers?: Iterable<PushPullEntry>;
  /** Queue our own alive message at start so that peers learn about us. Default true. */
  announce?: boolean;
}

/** Counters for metrics (monotonic, since start). */
export interface SwimStats {
  messagesSent: number;
  probes: number;
  probeFailures: number;
  indirectProbes: number;
  nacksReceived: number;
  refutations: number;
  suspicionsRaised: number;
  deathsDeclared: number;
  pushPulls: number;
  reconnectAttempts: number;
  relaysDropped: number;
  misroutedPings: number;
  /** Acks that came after their probe had failed (each raises the awareness score). */
  lateAcks: number;
}

export class SwimState {
  readonly config: SwimConfig;
  readonly id: string;
  protected readonly rng: () => number;
  protected readonly interner: IdInterner;
  protected readonly table: MemberTable;
  protected readonly selfIdx: number;
  protected readonly queue: BroadcastQueue;
  protected readonly suspicions = new Map<number, Suspicion>();
  protected readonly awareness: Awareness;
  protected hasLeft = false;
  protected lastNow: number;
  protected fx: Effect[] = [];
  protected coordinate: Coordinate | undefined;
  readonly stats: SwimStats = {
    messagesSent: 0,
    probes: 0,
    probeFailures: 0,
    indirectProbes: 0,
    nacksReceived: 0,
    refutations: 0,
    suspicionsRaised: 0,
    deathsDeclared: 0,
    pushPulls: 0,
    reconnectAttempts: 0,
    relaysDropped: 0,
    misroutedPings: 0,
    lateAcks: 0,
  };

  constructor(init: SwimInit) {
    assertValidMeta(init.self.meta);
    this.config = { ...init.config };
    this.id = init.self.id;
    this.rng = init.rng;
    this.lastNow = init.now;
    this.interner = init.interner ?? new IdInterner();
    this.table = new MemberTable(this.interner, this.id);
    this.selfIdx = this.table.selfIdx;
    this.queue = new BroadcastQueue(this.config.maxQueuedUpdates);
    this.awareness = new Awareness(this.config.awarenessMaxMultiplier);
    const inc = Math.min(MAX_INCARNATION, Math.max(0, Math.floor(init.initialIncarnation ?? 0)));
    this.table.set(this.selfIdx, ST_ALIVE, inc, freezeMeta(init.self.meta), init.now);
    if (init.initialMembers !== undefined) this.loadMembers(init.initialMembers, init.now);
    if (init.announce ?? true) this.broadcastSelf();
  }

  /** Our current incarnation number (persist it; see SwimInit.initialIncarnation). */
  get incarnation(): number {
    return this.table.inc[this.selfIdx];
  }

  /** Our current metadata. */
  get meta(): MemberMeta {
    return this.table.metaOf(this.selfIdx)!;
  }

  /** True after leave() (until a later join()). */
  get left(): boolean {
    return this.hasLeft;
  }

  /** Lifeguard awareness score, 0..awarenessMaxMultiplier-1 (0 = healthy). */
  get healthScore(): number {
    return this.awareness.score;
  }

  /** Updates waiting to be gossiped (after leave(), wait for 0 before shutting down). */
  get pendingBroadcasts(): number {
    return this.queue.size;
  }

  /** The member, self included, or undefined if unknown. */
  member(id: string): Member | undefined {
    const idx = this.interner.lookup(id);
    return this.table.code(idx) === ST_NONE ? undefined : this.view(idx);
  }

  /** The state of a member (cheap: no object built), or undefined if unknown. */
  stateOf(id: string): MemberState | undefined {
    return STATE_NAMES[this.table.code(this.interner.lookup(id))];
  }

  /** The incarnation we hold for a member, or undefined if unknown. */
  incarnationOf(id: string): number | undefined {
    const idx = this.interner.lookup(id);
    return this.table.code(idx) === ST_NONE ? undefined : this.table.inc[idx];
  }

  /** Every known member, self included (optionally only those in the given states). */
  members(states?: readonly MemberState[]): Member[] {
    const want = states === undefined ? undefined : new Set(states.map(stateCode));
    const out: Member[] = [];
    this.table.forEach((idx, code) => {
      if (want === undefined || want.has(code)) out.push(this.view(idx));
    });
    return out;
  }

  /** Ids of dead and left members (cheap when few are down). */
  downIds(): string[] {
    const out: string[] = [];
    for (let i = 0; i < this.table.downCount; i++)
      out.push(this.interner.idOf(this.table.downAt(i)));
    return out;
  }

  /** Members per state, self included. */
  counts(): Record<MemberState, number> {
    const t = this.table;
    return {
      alive: t.count(ST_ALIVE),
      suspect: t.count(ST_SUSPECT),
      dead: t.count(ST_DEAD),
      left: t.count(ST_LEFT),
    };
  }

  /** Sets the coordinate our acks carry (from a CoordinateClient). */
  setLocalCoordinate(c: Coordinate | undefined): void {
    this.coordinate = c;
  }

  // ---- internals -------------------------------------------------------------------------------

  /** Live members including self: the `n` of the formulas in config.ts. */
  protected clusterSize(): number {
    return this.table.liveCount + 1;
  }

  protected view(idx: number): Member {
    return {
      id: this.interner.idOf(idx),
      meta: this.table.metaOf(idx)!,
      incarnation: this.table.inc[idx],
      state: STATE_NAMES[this.table.state[idx]]!,
      stateChangedAt: this.table.changedAt[idx],
    };
  }

  protected emit(type: MembershipEventType, idx: number, previous: number): void {
    const prev = STATE_NAMES[previous] ?? 'none';
    this.fx.push({ type: 'event', event: { type, member: this.view(idx), previous: prev } });
  }

  protected send(to: string, msg: SwimMessage, addrs?: string[]): void {
    this.stats.messagesSent++;
    if (addrs !== undefined && addrs.length > 0) this.fx.push({ type: 'send', to, msg, addrs });
    else this.fx.push({ type: 'send', to, msg });
  }

  /** Starts a call: clamps the clock (never backwards) and resets the effect list. */
  protected begin(now: number): number {
    this.fx = [];
    if (now > this.lastNow) this.lastNow = now;
    return this.lastNow;
  }

  protected end(): Effect[] {
    const fx = this.fx;
    this.fx = [];
    return fx;
  }

  protected broadcast(idx: number, u: Update): void {
    let size = 8 + utf8Length(u.id);
    if (u.kind === 'alive') size += 16 + metaBytes(u.meta) + 3 * u.meta.addrs.length;
    else if (u.kind !== 'left') size += 2 + utf8Length(u.from);
    this.queue.enqueue(idx, u, size);
  }

  protected broadcastSelf(): void {
    this.broadcast(this.selfIdx, {
      kind: 'alive',
      id: this.id,
      incarnation: this.incarnation,
      meta: this.meta,
    });
  }

  /** Fills `out` with queued updates for one outgoing message. */
  protected piggyback(out: Update[] = []): Update[] {
    const cfg = this.config;
    return this.queue.take(
      retransmitLimit(cfg, this.clusterSize()),
      cfg.maxUpdatesPerMessage - out.length,
      cfg.maxUpdateBytesPerMessage - 256 * out.length,
      out,
    );
  }

  protected applyUpdates(updates: readonly Update[], now: number): void {
    for (const u of updates) this.applyUpdate(u, now, true);
  }

  protected applyUpdate(u: Update, now: number, rebroadcast: boolean): void {
    switch (u.kind) {
      case 'alive':
        return this.applyAlive(u, now, rebroadcast);
      case 'suspect':
        return this.applySuspect(u, now);
      case 'dead':
      case 'left':
        return this.applyDown(u, now);
    }
  }

  protected applyAlive(u: Update & { kind: 'alive' }, now: number, rebroadcast: boolean): void {
    if (u.id === this.id) {
      // Someone says we are alive: refute only if it claims a newer or different us.
      if (this.hasLeft || u.incarnation < this.incarnation) return;
      if (u.incarnation === this.incarnation && metaEquals(u.meta, this.meta)) return;
      this.refute(u.incarnation, undefined);
      return;
    }
    let idx = this.interner.lookup(u.id);
    const code = this.table.code(idx);
    if (code === ST_NONE) {
      idx = this.interner.intern(u.id);
      this.table.set(idx, ST_ALIVE, u.incarnation, u.meta, now);
      if (rebroadcast) this.broadcast(idx, u);
      this.emit('member:up', idx, ST_NONE);
      return;
    }
    if (u.incarnation <= this.table.inc[idx]) return;
    this.suspicions.delete(idx);
    const oldMeta = this.table.metaOf(idx)!;
    const same = metaEquals(oldMeta, u.meta);
    this.table.set(idx, ST_ALIVE, u.incarnation, same ? oldMeta : u.meta, now);
    if (rebroadcast) this.broadcast(idx, u);
    if (code === ST_DEAD) this.afterRevival();
    if (code === ST_DEAD || code === ST_LEFT) this.emit('member:up', idx, code);
    else if (code === ST_SUSPECT) this.emit('member:alive', idx, code);
    else if (!same) this.emit('member:update', idx, code);
  }

  protected applySuspect(u: Update & { kind: 'suspect' }, now: number): void {
    if (u.id === this.id) {
      if (!this.hasLeft && u.incarnation >= this.incarnation) this.refute(u.incarnation, u.from);
      else if (!this.hasLeft) this.correct(u.from, now);
      return;
    }
    const idx = this.interner.lookup(u.id);
    const code = this.table.code(idx);
    if (code === ST_NONE || u.incarnation < this.table.inc[idx]) return;
    if (this.discredited(u.from)) return;
    const s = this.suspicions.get(idx);
    if (s !== undefined) {
      if (u.incarnation > s.incarnation) {
        s.incarnation = u.incarnation;
        this.table.inc[idx] = u.incarnation;
      }
      // A new independent confirmation shortens the timeout and is gossiped on.
      if (s.confirm(u.from)) this.broadcast(idx, u);
      return;
    }
    if (code !== ST_ALIVE) return;
    const n = this.clusterSize();
    // Lifeguard: an unhealthy member (awareness score s) waits (s + 1) times longer.
    const min = this.awareness.scale(suspicionMinTimeout(this.config, n));
    const max = this.awareness.scale(suspicionMaxTimeout(this.config, n));
    const k = suspicionConfirmations(this.config, n);
    this.suspicions.set(idx, new Suspicion(u.from, u.incarnation, now, k, min, max));
    this.table.set(idx, ST_SUSPECT, u.incarnation, this.table.metaOf(idx)!, now);
    this.broadcast(idx, u);
    if (u.from === this.id) this.stats.suspicionsRaised++;
    this.emit('member:suspect', idx, code);
  }

  protected applyDown(u: Update & { kind: 'dead' | 'left' }, now: number): void {
    if (u.id === this.id) {
      if (!this.hasLeft && u.incarnation >= this.incarnation)
        this.refute(u.incarnation, u.kind === 'dead' ? u.from : undefined, true);
      else if (!this.hasLeft && u.kind === 'dead') this.correct(u.from, now);
      return;
    }
    const idx = this.interner.lookup(u.id);
    const code = this.table.code(idx);
    if (code === ST_NONE || u.incarnation < this.table.inc[idx]) return;
    if (u.kind === 'dead' && this.discredited(u.from)) return;
    // Left is final; dead only moves on to left (the member's own word is more precise).
    if (code === ST_LEFT || (code === ST_DEAD && u.kind === 'dead')) return;
    this.suspicions.delete(idx);
    const next = u.kind === 'left' ? ST_LEFT : ST_DEAD;
    this.table.set(idx, next, u.incarnation, this.table.metaOf(idx)!, now);
    this.broadcast(idx, u);
    if (u.kind === 'dead' && u.from === this.id) this.stats.deathsDeclared++;
    this.emit(next === ST_LEFT ? 'member:left' : 'member:down', idx, code);
  }

  /** Accusers told our current incarnation recently (accuser → time), see correct(). */
  private readonly corrected = new Map<string, number>();

  /**
   * Someone suspects or buried us at an incarnation we already refuted: it missed the refutation
   * (gossip reaches almost everyone, not everyone), so tell it directly — at most once per probe
   * interval per accuser — or it would hold us dead until a push-pull repairs it.
   */
  protected correct(accuser: string, now: number): void {
    if (accuser === this.id) return;
    const last = this.corrected.get(accuser);
    if (last !== undefined && now - last < this.config.probeInterval) return;
    if (this.corrected.size > 1024) this.corrected.clear();
    this.corrected.set(accuser, now);
    const alive: Update = {
      kind: 'alive',
      id: this.id,
      incarnation: this.incarnation,
      meta: this.meta,
    };
    this.send(accuser, { type: 'gossip', updates: [alive] });
  }

  /**
   * A verdict (suspect, dead) from a member we hold dead or left is not credible: it is most likely
   * stale news from the other side of a partition, and acting on it after the partition heals
   * would mark live members dead until they refute. (Verdicts about us are still refuted.)
   */
  protected discredited(from: string): boolean {
    const code = this.table.code(this.interner.lookup(from));
    return code === ST_DEAD || code === ST_LEFT;
  }

  /**
   * Someone suspects (or buried) us at `accused`: come back with a higher incarnation, gossiped as
   * usual and also sent at once to the `accuser`, whose suspicion timer is running.
   */
  protected refute(accused: number, accuser: string | undefined, wasDead = false): void {
    let inc = this.incarnation + 1;
    if (accused >= inc) inc = accused + 1;
    inc = Math.min(inc, MAX_INCARNATION);
    this.table.inc[this.selfIdx] = inc;
    this.awareness.applyDelta(1);
    this.stats.refutations++;
    const alive: Update = { kind: 'alive', id: this.id, incarnation: inc, meta: this.meta };
    this.broadcast(this.selfIdx, alive);
    if (accuser !== undefined && accuser !== this.id)
      this.send(accuser, { type: 'gossip', updates: [alive] });
    if (wasDead) this.afterRevival();
  }

  /**
   * Called when we refuted a death verdict, or learned that a member we held dead is alive: a
   * partition probably healed, and news from the other side did not reach us (nobody gossips to
   * members they hold dead). SwimCore schedules a catch-up push-pull.
   */
  protected afterRevival(): void {}

  /**
   * Merges a peer's full state. Differences from memberlist, on purpose:
   * - a remote `dead` or `suspect` entry is ignored unless it is about us (then we refute): after a
   *   partition heals, one side's stale verdicts would otherwise set off a storm of suspicions on
   *   the other side (tried: with 2% loss it caused hundreds of false dead verdicts in the
   *   simulator). Our own probes find members that really died; reconnects heal partitions.
   * - an `alive` entry is gossiped on only if it changed what we knew about a member we already
   *   knew, or if it is the sender's own entry (how a joiner is announced by its seed): members new
   *   to us through a push-pull are usually known to everyone else already.
   */
  protected mergeRemote(entries: readonly PushPullEntry[], from: string, now: number): void {
    for (const e of entries) {
      switch (e.state) {
        case 'alive': {
          const known = this.table.code(this.interner.lookup(e.id)) !== ST_NONE;
          const u: Update = { kind: 'alive', id: e.id, incarnation: e.incarnation, meta: e.meta };
          this.applyAlive(u, now, known || e.id === from);
          break;
        }
        case 'left':
          this.applyDown({ kind: 'left', id: e.id, incarnation: e.incarnation }, now);
          break;
        case 'suspect':
        case 'dead':
          if (e.id === this.id && !this.hasLeft && e.incarnation >= this.incarnation)
            this.refute(e.incarnation, undefined, e.state === 'dead'); // the reply carries it
          break;
      }
    }
  }

  /** Our full state for a push-pull, self included. */
  protected localState(): PushPullEntry[] {
    const out: PushPullEntry[] = [];
    const t = this.table;
    t.forEach((idx, code) => {
      out.push({
        id: this.interner.idOf(idx),
        incarnation: t.inc[idx],
        state: STATE_NAMES[code]!,
        meta: t.metaOf(idx)!,
      });
    });
    return out;
  }

  private loadMembers(entries: Iterable<PushPullEntry>, now: number): void {
    const list = Array.isArray(entries) ? (entries as PushPullEntry[]) : [...entries];
    // Many simulated cores load the same array through one shared interner: compute the columns
    // once and reuse them.
    let cols = loadCache.get(list);
    if (cols === undefined || cols.interner !== this.interner) {
      const n = list.length;
      cols = {
        interner: this.interner,
        idxs: new Int32Array(n),
        codes: new Uint8Array(n),
        incs: new Uint32Array(n),
        metaRefs: new Uint32Array(n),
      };
      for (let k = 0; k < n; k++) {
        const e = list[k];
        cols.idxs[k] = this.interner.intern(e.id);
        cols.codes[k] = e.state === 'suspect' ? ST_ALIVE : stateCode(e.state);
        cols.incs[k] = e.incarnation;
        cols.metaRefs[k] = this.interner.metas.acquire(e.meta);
      }
      if (this.interner.shared) loadCache.set(list, cols);
    }
    this.table.bulkLoad(cols.idxs, cols.codes, cols.incs, cols.metaRefs, now);
    // Uncached columns give back the references they held while loading.
    if (loadCache.get(list) !== cols) for (const r of cols.metaRefs) this.interner.metas.release(r);
  }
}
