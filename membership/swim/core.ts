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
// and feeds each `rtt` effect to the coordinate client. Persist `incarnation` (and pass it + 1 as
// initialIncarnation after a restart); after leave(), wait for pendingBroadcasts to reach 0.
//
// This class: the public API, the timers, gossip, push-pull, reconnect, catch-up and reaping.
// Probing is in probe.ts, the update rules in state.ts, the state in base.ts.

import type { SwimInit } from './base.js';
import { type SwimConfig, pushPullIntervalFor } from './config.js';
import { ST_ALIVE, ST_DEAD, ST_LEFT } from './member-table.js';
import { assertValidMeta, freezeMeta, metaEquals } from './meta.js';
import { SAMPLE_TRIES, SwimProber } from './probe.js';
import type { Effect, MemberMeta, SwimMessage, Update } from './types.js';

/**
 * A graceful leave tells up to this many live members directly, at once, besides gossiping it. At
 * the lan preset the gossip alone reached 9 other members in ~150-350 ms, but a member the random
 * rounds happened to miss heard it only from a second-hand round; the lab's "left everywhere
 * within 1 s" once took longer on a loaded host. One message per member, once, is cheap; above
 * this many the notified members' own gossip rounds carry it the rest of the way.
 */
export const LEAVE_DIRECT_MAX = 32;

export class SwimCore extends SwimProber {
  private nextGossipAt: number;
  private nextPushPullAt: number;
  private nextReconnectAt: number;
  private nextReapAt: number;
  /** The next catch-up push-pull (see afterRevival; Infinity: none due). */
  private catchUpAt = Infinity;
  private lastCatchUp = -Infinity;
  private catchUpShots = 0;
  private lastRevival = -Infinity;
  private hasJoined = false;

  constructor(init: SwimInit) {
    super(init);
    const c = this.config;
    const now = init.now;
    // Random phases so that members started together do not probe and gossip in lockstep.
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
   * Leaves gracefully: marks us `left` with a new incarnation, tells up to LEAVE_DIRECT_MAX live
   * members directly, right away, and gossips it. Probing, push-pull and reconnects stop; acks
   * and gossip go on. Keep calling tick()/handle() until pendingBroadcasts is 0 (or a short
   * timeout) before shutting down.
   */
  leave(now: number): Effect[] {
    now = this.begin(now);
    if (this.hasLeft) return this.end();
    this.hasLeft = true;
    const inc = this.bumpedIncarnation();
    this.table.set(this.selfIdx, ST_LEFT, inc, this.meta, now);
    const left: Update = { kind: 'left', id: this.id, incarnation: inc };
    this.broadcast(this.selfIdx, left);
    this.probe = undefined;
    // the first round, right away: to (up to LEAVE_DIRECT_MAX) members at once, not gossipNodes;
    // the queued broadcast goes on in the usual gossip rounds
    for (const idx of this.sampleLive(LEAVE_DIRECT_MAX, (i) => i !== this.selfIdx))
      this.send(this.interner.idOf(idx), { type: 'gossip', updates: [left] });
    return this.end();
  }

  /**
   * Changes our metadata: new incarnation, spread by gossip (quietly, riding on pings and acks, when
   * only the load score changed). Throws InvalidMetaError.
   */
  updateMeta(meta: MemberMeta, now: number): Effect[] {
    assertValidMeta(meta);
    now = this.begin(now);
    const state = this.hasLeft ? ST_LEFT : ST_ALIVE;
    const loadOnly = metaEquals(this.meta, meta, true);
    this.table.set(this.selfIdx, state, this.bumpedIncarnation(), freezeMeta(meta), now);
    if (!this.hasLeft) this.broadcastSelf(loadOnly);
    return this.end();
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
        // A joiner only knows what its seed knew: catch up a little later, like after a revival
        // (members that joined at the same time through other seeds are not in that state).
        if (!this.hasJoined) this.afterRevival();
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
      // The first slot after now, on the same phase: slots passed while the queue was empty (no
      // deadline for them, see nextDeadline) or during a stall are skipped, not sent back to back.
      const g = this.config.gossipInterval;
      this.nextGossipAt += g * Math.max(1, Math.ceil((now + 1 - this.nextGossipAt) / g));
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
      // Later shots further apart: the refutations of a large heal take a while to settle.
      const gap = this.catchUpShots === 2 ? 2.5 : 5;
      this.catchUpAt =
        this.catchUpShots > 0 ? now + this.catchUpWait() * (gap + this.rng()) : Infinity;
      if (!this.hasLeft) this.pushPullRound(true);
    }
    if (now >= this.nextReapAt) {
      this.reap(now);
      this.nextReapAt = now + this.reapInterval();
    }
    return this.end();
  }

  /** When tick() next has something to do (ms, runtime clock); Infinity if never. */
  nextDeadline(): number {
    // A gossip round with an empty queue sends nothing: no deadline for it. An idle agent woke
    // for it five times a second (lan), besides its probes.
    const gossipAt = this.queue.loud > 0 ? this.nextGossipAt : Infinity;
    let d = Math.min(gossipAt, this.nextPushPullAt, this.nextReconnectAt, this.nextReapAt);
    d = Math.min(d, this.catchUpAt);
    return Math.min(d, this.probeDeadline());
  }

  /**
   * After a revival (see SwimState.afterRevival) or our first join: three push-pulls with random
   * alive members, a little later (after about 1, 4 and 10 x max(reconnectInterval, 10 gossip
   * intervals), as the refutations of a healed partition settle), fetch what we missed. A new series
   * starts at the next revival after one ends.
   */
  protected override afterRevival(): void {
    // Suspicions already running may come from the partition that just healed: give the
    // suspects a full timeout to hear of them and refute, rather than declare them dead now.
    // They may also never have heard of the suspicion (it was gossiped, or our accusation sent,
    // while we could not reach them): tell each suspect directly (again), so that it refutes now.
    const wait = this.catchUpWait();
    if (this.lastNow - this.lastRevival > this.config.probeInterval) {
      for (const [idx, s] of this.suspicions) {
        s.restart(this.lastNow);
        if (this.lastNow - s.noticedAt < wait) continue;
        s.noticedAt = this.lastNow;
        const id = this.interner.idOf(idx);
        const notice: Update = { kind: 'suspect', id, incarnation: s.incarnation, from: this.id };
        this.send(id, { type: 'gossip', updates: [notice] });
      }
    }
    this.lastRevival = this.lastNow;
    if (this.catchUpShots > 0 || this.lastNow - this.lastCatchUp < wait) return;
    this.catchUpShots = 3;
    this.catchUpAt = this.lastNow + wait * (0.5 + this.rng());
  }

  private catchUpWait(): number {
    return Math.max(this.config.reconnectInterval, 10 * this.config.gossipInterval);
  }

  private bumpedIncarnation(): number {
    return Math.min(this.incarnation + 1, 0xffff_ffff);
  }

  // ---- dissemination, anti-entropy, reconnect, reaping -----------------------------------------

  /** One gossip round: queued updates to `gossipNodes` live or recently dead members. */
  private gossipRound(now: number): void {
    if (this.queue.loud === 0) return;
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

  /**
   * A push-pull with a random alive member; for a catch-up, preferably one that recently came back
   * from dead in our view: it was on the other side, where the news we missed is.
   */
  private pushPullRound(catchUp = false): void {
    let idx: number | undefined;
    if (catchUp && this.revivedAt.size > 0) {
      const back = [...this.revivedAt.keys()].filter((i) => this.table.code(i) === ST_ALIVE);
      if (back.length > 0) idx = back[Math.floor(this.rng() * back.length)];
    }
    idx ??= this.sampleLive(1, (i) => this.table.code(i) === ST_ALIVE)[0];
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
    for (const [idx, at] of this.revivedAt)
      if (now - at > this.config.gossipToTheDeadTime) this.revivedAt.delete(idx);
    const t = this.table;
    for (let i = t.downCount - 1; i >= 0; i--) {
      const idx = t.downAt(i);
      const code = t.code(idx);
      const limit = code === ST_DEAD ? this.config.reconnectTimeout : this.config.tombstoneTimeout;
      if (now - t.changedAt[idx] <= limit) continue;
      this.emit('member:reap', idx, code);
      this.revivedAt.delete(idx);
      this.incAnchors.delete(idx);
      t.remove(idx);
      this.queue.remove(idx);
      this.suspicions.delete(idx);
      this.interner.release(idx);
    }
  }
}

export type { SwimConfig, SwimInit };
