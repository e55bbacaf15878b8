// SwimCore: the pure SWIM + Lifeguard failure detector. No I/O, no timers, no clock, no
// Math.random: the runtime passes `now` (ms) to every call and delivers the returned effects.
//
// Driving it from a runtime:
//   const core = new SwimCore({ self: { id, meta }, config: resolveSwimConfig('lan'), rng, now });
//   deliver(core.join(seedIds, now));
//   on message bytes from peer P:  deliver(core.handle(P, decodeMessage(bytes, limit), now))
//                                  (a DecodeError is counted and dropped, never thrown on)
//   timer: at core.nextDeadline() (re-arm after every call) -> deliver(core.tick(now))
//          (run it after pending I/O, e.g. setImmediate from the timer callback, so an ack that
//          arrived during an event-loop stall is handled before the probe times out)
//   connection to P closed:        core.probeSoon(P)
//   rtt effect:                    coords.observe(id, rttMs, coordinate);
//                                  core.setLocalCoordinate(coords.local)
// where deliver() sends each `send` effect (best effort, never retried), publishes each `event`
// and feeds each `rtt` effect to the coordinate client.
//
// Timeline of one probe (memberlist probeNode): at t0 ping the next member in the shuffled round-
// robin order; at t0 + probeTimeout*(s+1) without an ack, send ping-req to `indirectChecks` alive
// members and ping the member directly once more (same seq); at t0 + probeInterval*(s+1) without an ack (direct or relayed), suspect the member and
// raise the awareness score s by the nacks that did not come. The next probe starts at
// t0 + probeInterval or when the current one concludes, whichever is later.

import type { SwimConfig } from './config.js';
import { pushPullIntervalFor } from './config.js';
import { ST_ALIVE, ST_DEAD, ST_LEFT, ST_SUSPECT } from './member-table.js';
import { assertValidMeta, freezeMeta } from './meta.js';
import { SwimState, type SwimInit } from './state.js';
import type {
  AckMessage,
  Effect,
  MemberMeta,
  PingReqMessage,
  SwimMessage,
  Update,
} from './types.js';

interface Probe {
  idx: number;
  id: string;
  seq: number;
  startedAt: number;
  /** Direct ping deadline; then ping-req. */
  timeoutAt: number;
  /** Indirect deadline; then suspect. */
  endAt: number;
  indirect: boolean;
  expectedNacks: number;
  nacks: number;
}

interface Relay {
  origin: string;
  originSeq: number;
  deadline: number;
  nack: boolean;
}

/** Most out-of-turn probe targets remembered (probeSoon). */
const MAX_PROBE_SOON = 16;
/** Attempts at random sampling before giving up on finding a suitable member. */
const SAMPLE_TRIES = 16;

export class SwimCore extends SwimState {
  private probe: Probe | undefined;
  private nextProbeAt: number;
  private nextGossipAt: number;
  private nextPushPullAt: number;
  private nextReconnectAt: number;
  private nextReapAt: number;
  /** A catch-up push-pull after we refuted a death verdict (Infinity: none due). */
  private catchUpAt = Infinity;
  private lastCatchUp = -Infinity;
  private catchUpShots = 0;
  private readonly relays = new Map<number, Relay>();
  private seq = 0;
  private readonly soon: string[] = [];
  private hasJoined = false;
  /** Seq and target of the last probe that failed (a late ack for it means our timeouts are short). */
  private lastFailed = -1;
  private lastFailedTarget = '';

  constructor(init: SwimInit) {
    super(init);
    const c = this.config;
    const now = init.now;
    // Random phases so that members started together do not probe and gossip in lockstep.
    this.nextProbeAt = now + this.rng() * c.probeInterval;
    this.nextGossipAt = now + this.rng() * c.gossipInterval;
    const pp = pushPullIntervalFor(c, this.clusterSize());
    this.nextPushPullAt = pp > 0 ? now + this.rng() * pp : Infinity;
    this.nextReconnectAt =
      c.reconnectInterval > 0 ? now + this.rng() * c.reconnectInterval : Infinity;
    this.nextReapAt = now + this.reapInterval();
  }

  /** True once a push-pull reply was merged (a seed answered). */
  get joined(): boolean {
    return this.hasJoined;
  }

  /**
   * Joins through `seedIds` (peer ids the runtime can dial): sends each a push-pull request. Call
   * again (e.g. with backoff) until `joined`. After leave(), joining again comes back with a new
   * incarnation.
   */
  join(seedIds: readonly string[], now: number): Effect[] {
    now = this.begin(now);
    if (this.hasLeft) {
      this.hasLeft = false;
      this.table.set(this.selfIdx, ST_ALIVE, this.bumpedIncarnation(), this.meta, now);
      this.broadcastSelf();
      this.nextProbeAt = now;
    }
    const members = this.localState();
    for (const seed of new Set(seedIds)) {
      if (seed === this.id) continue;
      this.stats.pushPulls++;
      this.send(seed, { type: 'push-pull', seq: this.nextSeq(), join: true, members });
    }
    return this.end();
  }

  /**
   * Leaves gracefully: marks us `left` with a new incarnation and gossips it (the first round
   * right away). Probing, push-pull and reconnects stop; acks and gossip go on. Keep calling
   * tick()/handle() until pendingBroadcasts is 0 (or a short timeout) before shutting down.
   */
  leave(now: number): Effect[] {
    now = this.begin(now);
    if (this.hasLeft) return this.end();
    this.hasLeft = true;
    const inc = this.bumpedIncarnation();
    this.table.set(this.selfIdx, ST_LEFT, inc, this.meta, now);
    this.broadcast(this.selfIdx, { kind: 'left', id: this.id, incarnation: inc });
    this.probe = undefined;
    this.gossipRound(now);
    return this.end();
  }

  /** Changes our metadata: new incarnation, spread by gossip. Throws InvalidMetaError. */
  updateMeta(meta: MemberMeta, now: number): Effect[] {
    assertValidMeta(meta);
    now = this.begin(now);
    const state = this.hasLeft ? ST_LEFT : ST_ALIVE;
    this.table.set(this.selfIdx, state, this.bumpedIncarnation(), freezeMeta(meta), now);
    if (!this.hasLeft) this.broadcastSelf();
    return this.end();
  }

  /**
   * Makes `id` the next member probed, out of turn (the runtime calls it when its connection to
   * that member closes). If no probe is in flight, the next one starts at the next tick. Never
   * changes any state by itself.
   */
  probeSoon(id: string): void {
    if (id === this.id || this.soon.includes(id) || this.soon.length >= MAX_PROBE_SOON) return;
    this.soon.push(id);
    if (this.probe === undefined) this.nextProbeAt = Math.min(this.nextProbeAt, this.lastNow);
  }

  /** Handles a message from member `from` (the runtime's authenticated peer id). */
  handle(from: string, msg: SwimMessage, now: number): Effect[] {
    now = this.begin(now);
    switch (msg.type) {
      case 'ping':
        this.applyUpdates(msg.updates, now);
        if (msg.target !== this.id) {
          this.stats.misroutedPings++;
          break;
        }
        this.send(from, this.ackFor(msg.seq, from));
        break;
      case 'ping-req':
        this.applyUpdates(msg.updates, now);
        this.relay(from, msg, now);
        break;
      case 'ack':
        this.applyUpdates(msg.updates, now);
        this.onAck(from, msg, now);
        break;
      case 'nack':
        if (this.probe !== undefined && msg.seq === this.probe.seq) {
          this.probe.nacks++;
          this.stats.nacksReceived++;
        }
        break;
      case 'gossip':
        this.applyUpdates(msg.updates, now);
        break;
      case 'push-pull':
        // Merge first, so that the reply carries our refutation if they thought us dead.
        this.mergeRemote(msg.members, from, now);
        this.send(from, { type: 'push-pull-reply', seq: msg.seq, members: this.localState() });
        break;
      case 'push-pull-reply':
        this.mergeRemote(msg.members, from, now);
        this.hasJoined = true;
        break;
    }
    return this.end();
  }

  /** Fires every timer due at `now`. Harmless to call more often. */
  tick(now: number): Effect[] {
    now = this.begin(now);
    this.expireSuspicions(now);
    this.expireRelays(now);
    this.advanceProbe(now);
    if (!this.hasLeft && this.probe === undefined && now >= this.nextProbeAt) this.startProbe(now);
    if (now >= this.nextGossipAt) {
      this.gossipRound(now);
      this.nextGossipAt = Math.max(this.nextGossipAt + this.config.gossipInterval, now + 1);
    }
    if (now >= this.nextPushPullAt) {
      if (!this.hasLeft) this.pushPullRound();
      this.nextPushPullAt = now + pushPullIntervalFor(this.config, this.clusterSize());
    }
    if (now >= this.nextReconnectAt) {
      if (!this.hasLeft) this.reconnectRound(now);
      this.nextReconnectAt = now + this.config.reconnectInterval;
    }
    if (now >= this.catchUpAt) {
      this.lastCatchUp = now;
      this.catchUpShots--;
      this.catchUpAt =
        this.catchUpShots > 0 ? now + this.catchUpWait() * (2.5 + this.rng()) : Infinity;
      if (!this.hasLeft) this.pushPullRound();
    }
    if (now >= this.nextReapAt) {
      this.reap(now);
      this.nextReapAt = now + this.reapInterval();
    }
    return this.end();
  }

  /** When tick() next has something to do (ms, runtime clock); Infinity if never. */
  nextDeadline(): number {
    let d = Math.min(this.nextGossipAt, this.nextPushPullAt, this.nextReconnectAt, this.nextReapAt);
    d = Math.min(d, this.catchUpAt);
    const p = this.probe;
    if (p !== undefined) d = Math.min(d, p.indirect ? p.endAt : p.timeoutAt);
    else if (!this.hasLeft) d = Math.min(d, this.nextProbeAt);
    for (const s of this.suspicions.values()) if (s.deadline < d) d = s.deadline;
    for (const r of this.relays.values()) if (r.deadline < d) d = r.deadline;
    return d;
  }

  /**
   * After a revival (see SwimState.afterRevival): two push-pulls with random alive members, a
   * little later (after 0.5-1.5 and 3-4 x max(reconnectInterval, 10 gossip intervals), once the
   * refutations of a healed partition have settled), fetch what we missed. At most one such pair
   * per 5 waits.
   */
  protected override afterRevival(): void {
    const wait = this.catchUpWait();
    if (this.catchUpShots > 0 || this.lastNow - this.lastCatchUp < 5 * wait) return;
    this.catchUpShots = 2;
    this.catchUpAt = this.lastNow + wait * (0.5 + this.rng());
  }

  private catchUpWait(): number {
    return Math.max(this.config.reconnectInterval, 10 * this.config.gossipInterval);
  }

  // ---- probing ---------------------------------------------------------------------------------

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  private bumpedIncarnation(): number {
    return Math.min(this.incarnation + 1, 0xffff_ffff);
  }

  /**
   * The ack for a ping from `to`. If we hold `to` dead, the ack says so, so that it refutes (it is
   * evidently running; this is how a healed partition and a reconnect ping find each other).
   */
  private ackFor(seq: number, to: string): AckMessage {
    const updates: Update[] = [];
    const idx = this.interner.lookup(to);
    if (this.table.code(idx) === ST_DEAD) {
      updates.push({ kind: 'dead', id: to, incarnation: this.table.inc[idx], from: this.id });
    }
    this.piggyback(updates);
    return this.coordinate === undefined
      ? { type: 'ack', seq, updates }
      : { type: 'ack', seq, coordinate: this.coordinate, updates };
  }

  private pickProbeTarget(): number {
    while (this.soon.length > 0) {
      const idx = this.interner.lookup(this.soon.shift()!);
      const code = this.table.code(idx);
      if (code === ST_ALIVE || code === ST_SUSPECT) return idx;
    }
    return this.table.nextProbe(this.rng);
  }

  private startProbe(now: number): void {
    const c = this.config;
    this.nextProbeAt = now + c.probeInterval;
    const idx = this.pickProbeTarget();
    if (idx < 0) return;
    const id = this.interner.idOf(idx);
    const seq = this.nextSeq();
    this.probe = {
      idx,
      id,
      seq,
      startedAt: now,
      timeoutAt: now + this.awareness.scale(c.probeTimeout),
      endAt: now + this.awareness.scale(c.probeInterval),
      indirect: false,
      expectedNacks: 0,
      nacks: 0,
    };
    this.stats.probes++;
    const updates: Update[] = [];
    // Buddy system (Lifeguard): tell a member we suspect, so that it can refute at once.
    if (this.table.code(idx) === ST_SUSPECT) {
      updates.push({ kind: 'suspect', id, incarnation: this.table.inc[idx], from: this.id });
    }
    this.send(id, { type: 'ping', seq, target: id, updates: this.piggyback(updates) });
  }

  private advanceProbe(now: number): void {
    const p = this.probe;
    if (p === undefined) return;
    if (!p.indirect && now >= p.timeoutAt) {
      p.indirect = true;
      this.stats.indirectProbes++;
      const meta = this.table.metaOf(p.idx);
      const relays = this.sampleLive(this.config.indirectChecks, (i) => {
        return i !== p.idx && this.table.code(i) === ST_ALIVE;
      });
      for (const r of relays) {
        const msg: PingReqMessage = {
          type: 'ping-req',
          seq: p.seq,
          target: p.id,
          targetAddrs: meta?.addrs ?? [],
          nack: true,
          updates: this.piggyback(),
        };
        this.send(this.interner.idOf(r), msg);
      }
      p.expectedNacks = relays.length;
      // A second direct ping with the same seq, in parallel (memberlist's fallback probe): one
      // more independent path for the price of one message, so a single lost packet is not enough
      // to start a suspicion when the relays' paths are lossy too.
      this.send(p.id, { type: 'ping', seq: p.seq, target: p.id, updates: this.piggyback() });
    }
    if (now >= p.endAt) {
      this.probe = undefined;
      const code = this.table.code(p.idx);
      if (code !== ST_ALIVE && code !== ST_SUSPECT) {
        // It died or left in the meantime (we heard from others): nothing to conclude.
        if (now >= this.nextProbeAt && !this.hasLeft) this.startProbe(now);
        return;
      }
      // No ack, direct or relayed. Nacks that did not come suggest that we are the slow one.
      this.stats.probeFailures++;
      const missed = p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1;
      this.awareness.applyDelta(Math.max(0, missed));
      const sus: Update = {
        kind: 'suspect',
        id: p.id,
        incarnation: this.table.inc[p.idx],
        from: this.id,
      };
      this.applySuspect(sus, now);
      // Tell the member at once, so that it can refute before the suspicion spreads far.
      this.send(p.id, { type: 'gossip', updates: [sus] });
      this.lastFailed = p.seq;
      this.lastFailedTarget = p.id;
      if (now >= this.nextProbeAt && !this.hasLeft) this.startProbe(now);
    }
  }

  private onAck(from: string, msg: AckMessage, now: number): void {
    const p = this.probe;
    if (p !== undefined && msg.seq === p.seq) {
      this.probe = undefined;
      this.awareness.applyDelta(-1);
      if (from === p.id) {
        const rtt: Effect = { type: 'rtt', id: p.id, rttMs: now - p.startedAt };
        if (msg.coordinate !== undefined) rtt.coordinate = msg.coordinate;
        this.fx.push(rtt);
      }
      return;
    }
    if (msg.seq === this.lastFailed && from === this.lastFailedTarget) {
      // The member was alive, just slower than our timeouts: stretch them (Lifeguard-style).
      this.lastFailed = -1;
      this.stats.lateAcks++;
      this.awareness.applyDelta(1);
      return;
    }
    const r = this.relays.get(msg.seq);
    if (r !== undefined) {
      this.relays.delete(msg.seq);
      this.send(r.origin, { type: 'ack', seq: r.originSeq, updates: this.piggyback() });
    }
  }

  /** Probes `msg.target` for `origin` and relays the ack (or a nack after our probe timeout). */
  private relay(origin: string, msg: PingReqMessage, now: number): void {
    if (msg.target === this.id || msg.target === origin) return;
    if (this.relays.size >= this.config.maxPendingRelays) {
      this.stats.relaysDropped++;
      return;
    }
    const seq = this.nextSeq();
    this.relays.set(seq, {
      origin,
      originSeq: msg.seq,
      deadline: now + this.config.probeTimeout,
      nack: msg.nack,
    });
    const known = this.table.metaOf(this.interner.lookup(msg.target))?.addrs;
    const addrs = msg.targetAddrs.length > 0 ? msg.targetAddrs : known;
    const ping: SwimMessage = { type: 'ping', seq, target: msg.target, updates: this.piggyback() };
    this.send(msg.target, ping, addrs);
  }

  private expireRelays(now: number): void {
    if (this.relays.size === 0) return;
    for (const [seq, r] of this.relays) {
      if (r.deadline > now) continue;
      this.relays.delete(seq);
      if (r.nack) this.send(r.origin, { type: 'nack', seq: r.originSeq });
    }
  }

  private expireSuspicions(now: number): void {
    if (this.suspicions.size === 0) return;
    for (const [idx, s] of this.suspicions) {
      if (s.deadline > now) continue;
      this.suspicions.delete(idx);
      if (this.table.code(idx) !== ST_SUSPECT) continue;
      const id = this.interner.idOf(idx);
      this.applyDown({ kind: 'dead', id, incarnation: s.incarnation, from: this.id }, now);
    }
  }

  // ---- dissemination, anti-entropy, reconnect, reaping -----------------------------------------

  /**
   * Up to `k` distinct live members accepted by `ok`, chosen at random (rejection sampling, then a
   * scan of the live list if the sample came up short).
   */
  private sampleLive(k: number, ok: (idx: number) => boolean): number[] {
    const out: number[] = [];
    const n = this.table.liveCount;
    if (k <= 0 || n === 0) return out;
    for (let t = 0; t < k * 3 + SAMPLE_TRIES && out.length < k; t++) {
      const idx = this.table.randomLive(this.rng);
      if (ok(idx) && !out.includes(idx)) out.push(idx);
    }
    if (out.length < k && n <= 4 * k + SAMPLE_TRIES) {
      for (let i = 0; i < n && out.length < k; i++) {
        const idx = this.table.liveAt(i);
        if (ok(idx) && !out.includes(idx)) out.push(idx);
      }
    }
    return out;
  }

  /** One gossip round: queued updates to `gossipNodes` live or recently dead members. */
  private gossipRound(now: number): void {
    if (this.queue.size === 0) return;
    const t = this.table;
    const k = this.config.gossipNodes;
    const targets = this.sampleLive(k, () => true);
    // Recently dead members are gossip targets too (gossip to the dead), in proportion.
    const window = this.config.gossipToTheDeadTime;
    if (t.downCount > 0 && window > 0) {
      for (let i = 0; i < k; i++) {
        if (this.rng() * (t.liveCount + t.downCount) < t.liveCount) continue;
        const d = t.randomDown(this.rng);
        if (t.code(d) === ST_DEAD && now - t.changedAt[d] <= window && !targets.includes(d)) {
          if (targets.length >= k) targets[Math.floor(this.rng() * k)] = d;
          else targets.push(d);
        }
      }
    }
    for (const idx of targets) {
      const updates = this.piggyback();
      if (updates.length === 0) break;
      this.send(this.interner.idOf(idx), { type: 'gossip', updates });
    }
  }

  private pushPullRound(): void {
    const [idx] = this.sampleLive(1, (i) => this.table.code(i) === ST_ALIVE);
    if (idx === undefined) return;
    this.stats.pushPulls++;
    const msg: SwimMessage = {
      type: 'push-pull',
      seq: this.nextSeq(),
      join: false,
      members: this.localState(),
    };
    this.send(this.interner.idOf(idx), msg);
  }

  /**
   * Reconnect (after Serf): with probability min(1, dead / alive), ping one random member that
   * died less than reconnectTimeout ago, the ping carrying its death verdict. If it is back, it
   * refutes at once in its ack (and its ack tells us if it holds us dead, so we refute too), so a
   * healed partition finds itself again. The cluster as a whole tries each dead member about once
   * per reconnectInterval. Unlike Serf this is a ping, not a full push-pull, so it is cheap enough
   * to run every few seconds.
   */
  private reconnectRound(now: number): void {
    const t = this.table;
    const dead = t.count(ST_DEAD);
    if (dead === 0) return;
    const alive = Math.max(1, t.count(ST_ALIVE) - 1);
    if (this.rng() >= dead / alive) return;
    for (let i = 0; i < SAMPLE_TRIES; i++) {
      const idx = t.randomDown(this.rng);
      if (t.code(idx) !== ST_DEAD || now - t.changedAt[idx] > this.config.reconnectTimeout)
        continue;
      this.stats.reconnectAttempts++;
      const id = this.interner.idOf(idx);
      const verdict: Update = { kind: 'dead', id, incarnation: t.inc[idx], from: this.id };
      const ping: SwimMessage = {
        type: 'ping',
        seq: this.nextSeq(),
        target: id,
        updates: this.piggyback([verdict]),
      };
      this.send(id, ping, t.metaOf(idx)?.addrs);
      return;
    }
  }

  private reapInterval(): number {
    const c = this.config;
    return Math.min(60_000, Math.max(1_000, Math.min(c.reconnectTimeout, c.tombstoneTimeout) / 10));
  }

  /** Forgets dead members after reconnectTimeout and left ones after tombstoneTimeout. */
  private reap(now: number): void {
    const t = this.table;
    for (let i = t.downCount - 1; i >= 0; i--) {
      const idx = t.downAt(i);
      const code = t.code(idx);
      const limit = code === ST_DEAD ? this.config.reconnectTimeout : this.config.tombstoneTimeout;
      if (now - t.changedAt[idx] <= limit) continue;
      this.emit('member:reap', idx, code);
      t.remove(idx);
      this.queue.remove(idx);
      this.suspicions.delete(idx);
      this.interner.release(idx);
    }
  }
}

export type { SwimConfig, SwimInit };
