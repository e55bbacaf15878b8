// The membership state of one core: the member table, broadcast queue, suspicions, awareness, the
// read-only views the runtime uses, and the effect plumbing. The class chain of the core:
//   SwimBase (base.ts) -> SwimState (state.ts, update rules) -> SwimProber (probe.ts, probing)
//   -> SwimCore (core.ts, public API, timers, gossip, push-pull, reconnect).
// Effects produced while handling one call are collected in `fx`.

import type { Coordinate } from '../coordinates/index.js';
import { Awareness } from './awareness.js';
import { BroadcastQueue } from './broadcast-queue.js';
import { type SwimConfig, retransmitLimit } from './config.js';
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
import { assertValidMeta, freezeMeta, metaBytes, utf8Length } from './meta.js';
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

/**
 * How far a member's incarnation may climb, as we see it: MAX_INCARNATION_JUMP above the
 * incarnation it had when we first knew it, plus MAX_INCARNATION_RATE per second since. It rises
 * by one per refutation and per metadata change (a load score at most every 10 s), far below
 * that. Membership updates are not signed: a key holder sending `left` or `dead` at
 * MAX_INCARNATION removed a live member for good, since it cannot refute above the top, and
 * stepping it up through forged updates (many in one message, or over many messages) would do the
 * same. So an update above the ceiling is dropped, whoever sends it
 * (SwimStats.implausibleUpdates), and a verdict about us within MAX_INCARNATION_JUMP of the top
 * is refuted only at our incarnation + 1 (taking us to the top would leave us unable to refute
 * anything). Under the ceiling, forging for 2^32 / 20 per second (6.8 years) would exhaust a
 * member. 2^16 covers a week of missed news (load scores at 0.1 per second: ~60,000 in the 7 days
 * a dead member is kept) and a restart that lost its last incarnations.
 */
export const MAX_INCARNATION_JUMP = 0x1_0000;
/** See MAX_INCARNATION_JUMP (incarnations per second). */
export const MAX_INCARNATION_RATE = 20;

/** The highest incarnation plausible for a member first known at `anchor` (see above). */
export function incarnationCeiling(anchor: { inc: number; at: number }, now: number): number {
  const grown = Math.floor((Math.max(0, now - anchor.at) * MAX_INCARNATION_RATE) / 1000);
  return anchor.inc + MAX_INCARNATION_JUMP + grown;
}

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
  /** Probes that failed in every round (the member is then suspected). */
  probeFailures: number;
  /** Probe rounds that failed and were repeated before suspecting (confirmRounds). */
  probeRetries: number;
  /** Probe rounds that went indirect (ping-req to other members): rounds, not ping-reqs sent. */
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
  /**
   * Updates about a member dropped for raising its incarnation above the plausible ceiling, and
   * verdicts about us near the top refuted only at our incarnation + 1 (MAX_INCARNATION_JUMP).
   */
  implausibleUpdates: number;
}

export class SwimBase {
  readonly config: SwimConfig;
  readonly id: string;
  protected readonly rng: () => number;
  protected readonly interner: IdInterner;
  protected readonly table: MemberTable;
  protected readonly selfIdx: number;
  protected readonly queue: BroadcastQueue;
  protected readonly suspicions = new Map<number, Suspicion>();
  /** When members came back from dead or left (recent ones only; see recentlyRevived). */
  protected readonly revivedAt = new Map<number, number>();
  /** Per member: its incarnation when we first knew it, and when (see MAX_INCARNATION_JUMP). */
  protected readonly incAnchors = new Map<number, { inc: number; at: number }>();

  protected readonly awareness: Awareness;
  protected hasLeft = false;
  protected lastNow: number;
  protected fx: Effect[] = [];
  protected coordinate: Coordinate | undefined;
  readonly stats: SwimStats = {
    messagesSent: 0,
    probes: 0,
    probeFailures: 0,
    probeRetries: 0,
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
    implausibleUpdates: 0,
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

  /**
   * Updates still to be gossiped, quiet ones (load scores) aside: after leave(), wait for 0 before
   * shutting down.
   */
  get pendingBroadcasts(): number {
    return this.queue.loud;
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

  /**
   * Queues `u` for dissemination. A quiet update (an alive member's new load score, nothing else)
   * only rides on messages that go out anyway: see BroadcastQueue.
   */
  protected broadcast(idx: number, u: Update, quiet = false): void {
    let size = 8 + utf8Length(u.id);
    if (u.kind === 'alive') size += 16 + metaBytes(u.meta) + 3 * u.meta.addrs.length;
    else if (u.kind !== 'left') size += 2 + utf8Length(u.from);
    this.queue.enqueue(idx, u, size, quiet);
  }

  protected broadcastSelf(quiet = false): void {
    this.broadcast(
      this.selfIdx,
      { kind: 'alive', id: this.id, incarnation: this.incarnation, meta: this.meta },
      quiet,
    );
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
