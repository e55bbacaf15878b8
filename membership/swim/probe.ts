// Probing (memberlist `probeNode`, with Lifeguard): the round-robin probe, indirect probes
// through ping-req relays with nacks, the fallback direct ping, suspicion after a failed probe, the
// buddy system, and relaying for others. See base.ts for the class chain.
//
// Timeline of one probe (memberlist probeNode): at t0 ping the next member in the shuffled round-
// robin order; at t0 + probeTimeout*(s+1) without an ack, send ping-req to `indirectChecks` alive
// members and ping the member directly once more (same seq); at t0 + probeInterval*(s+1)
// without an ack (direct or relayed), the round failed: raise the awareness score s by the nacks
// that did not come. A member we hold alive then gets a second round at once (`confirmRounds`);
// a member that fails every round is suspected (and told so at once). The next probe starts at
// t0 + probeInterval or when the current one concludes, whichever is later. An ack that arrives
// after the verdict raises s too: our timeouts were shorter than the member's answers. A member
// probed out of turn because its connection closed (probeSoon) has had its first failure already:
// it is suspected after one failed round, so a crashed process is not detected later than before
// (only while our own awareness score is 0: an unhealthy prober keeps both rounds).
//
// Why a second round: a round fails by packet loss alone with probability ~ l^2 (direct and
// fallback ping) * (1 - (1 - l)^4)^k (every relay path); at l = 5% and k = 3 that is ~6e-5 per
// probe, so a cluster of n members raises ~n * 3e-4 false suspicions a second (3 a second at
// 10,000), each gossiped to everybody and refuted: gossip then runs at its cap on every member and
// messages per member grow with n. Two rounds make it ~4e-9 per probe; a member that fails
// silently (its connections stay open: power loss, a cut cable) is suspected one probe interval
// later.

import type { SwimInit } from './base.js';
import { ST_ALIVE, ST_DEAD, ST_SUSPECT } from './member-table.js';
import { SwimState } from './state.js';
import type { AckMessage, Effect, PingReqMessage, SwimMessage, Update } from './types.js';

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
  /** Rounds of this probe that failed before this one (a closed connection counts as one). */
  failedRounds: number;
  /** Seq of the previous round (its late ack still proves the member alive), or -1. */
  prevSeq: number;
}

interface Relay {
  origin: string;
  originSeq: number;
  /** An ack until then is relayed; then the relay is forgotten. */
  deadline: number;
  /** The origin wants a nack if no ack came by `nackAt` (and has not had it yet). */
  nack: boolean;
  nackAt: number;
}

/**
 * A relay nacks after this fraction of the time the origin leaves for indirect probes
 * (probeInterval - probeTimeout), so that the nack arrives before the origin concludes: a nack
 * that comes late counts as missed and raises the origin's awareness score, stretching the probes
 * of a healthy member each time it probes a crashed one (with a nack at probeTimeout, as in
 * memberlist, a lan prober's score rose by k after every probe of a dead member).
 */
export const NACK_FRACTION = 0.6;

/** Most out-of-turn probe targets remembered (probeSoon). */
const MAX_PROBE_SOON = 16;
/** Attempts at random sampling before giving up on finding a suitable member. */
export const SAMPLE_TRIES = 16;

export class SwimProber extends SwimState {
  protected probe: Probe | undefined;
  protected nextProbeAt: number;
  protected readonly relays = new Map<number, Relay>();
  private seq = 0;
  private readonly soon: string[] = [];
  /**
   * Seq and target of the last probe that failed (a late ack for it means our timeouts are short).
   */
  private lastFailed = -1;
  private lastFailedTarget = '';

  constructor(init: SwimInit) {
    super(init);
    // A random phase, so that members started together do not probe in lockstep.
    this.nextProbeAt = init.now + this.rng() * this.config.probeInterval;
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

  /** The earliest probe, relay or suspicion deadline. */
  protected probeDeadline(): number {
    let d = Infinity;
    const p = this.probe;
    if (p !== undefined) d = p.indirect ? p.endAt : p.timeoutAt;
    else if (!this.hasLeft) d = this.nextProbeAt;
    for (const s of this.suspicions.values()) if (s.deadline < d) d = s.deadline;
    for (const r of this.relays.values()) d = Math.min(d, r.nack ? r.nackAt : r.deadline);
    return d;
  }

  protected nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    return this.seq;
  }

  /**
   * The ack for a ping from `to`. If we hold `to` dead, the ack says so, so that it refutes (it is
   * evidently running; this is how a healed partition and a reconnect ping find each other).
   */
  protected ackFor(seq: number, to: string): AckMessage {
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

  /** The next member to probe, and whether it is out of turn (probeSoon). */
  private pickProbeTarget(): [number, boolean] {
    while (this.soon.length > 0) {
      const idx = this.interner.lookup(this.soon.shift()!);
      const code = this.table.code(idx);
      if (code === ST_ALIVE || code === ST_SUSPECT) return [idx, true];
    }
    return [this.table.nextProbe(this.rng), false];
  }

  protected startProbe(now: number): void {
    this.nextProbeAt = now + this.config.probeInterval;
    const [idx, outOfTurn] = this.pickProbeTarget();
    if (idx < 0) return;
    // The shortcut needs our own health: a member starved of CPU sees connections time out and
    // close, and its quick verdicts would be false (the lab's 50 agents on 2 cores).
    const shortcut = outOfTurn && this.awareness.score === 0;
    this.probeRound(idx, now, shortcut ? 1 : 0, -1);
  }

  /** Starts round `failedRounds + 1` of a probe of member `idx`. */
  private probeRound(idx: number, now: number, failedRounds: number, prevSeq: number): void {
    const c = this.config;
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
      failedRounds,
      prevSeq,
    };
    if (prevSeq === -1) this.stats.probes++;
    const updates: Update[] = [];
    // Buddy system (Lifeguard): tell a member we suspect, so that it can refute at once.
    if (this.table.code(idx) === ST_SUSPECT) {
      updates.push({ kind: 'suspect', id, incarnation: this.table.inc[idx], from: this.id });
    }
    this.send(id, { type: 'ping', seq, target: id, updates: this.piggyback(updates) });
  }

  protected advanceProbe(now: number): void {
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
      const missed = p.expectedNacks > 0 ? p.expectedNacks - p.nacks : 1;
      this.awareness.applyDelta(Math.max(0, missed));
      if (code === ST_ALIVE && p.failedRounds + 1 < this.config.confirmRounds) {
        // Once more before accusing a member nobody suspects (see the top of this file).
        this.stats.probeRetries++;
        this.probeRound(p.idx, now, p.failedRounds + 1, p.seq);
        return;
      }
      this.stats.probeFailures++;
      const sus: Update = {
        kind: 'suspect',
        id: p.id,
        incarnation: this.table.inc[p.idx],
        from: this.id,
      };
      this.applySuspect(sus, now);
      // Tell the member at once, so that it can refute before the suspicion spreads far.
      this.send(p.id, { type: 'gossip', updates: [sus] });
      const s = this.suspicions.get(p.idx);
      if (s !== undefined) s.noticedAt = now;
      this.lastFailed = p.seq;
      this.lastFailedTarget = p.id;
      if (now >= this.nextProbeAt && !this.hasLeft) this.startProbe(now);
    }
  }

  protected onAck(from: string, msg: AckMessage, now: number): void {
    const p = this.probe;
    if (p !== undefined && msg.seq === p.prevSeq) {
      // The first round's ack, during the second: the member is alive, and our first round's
      // timeouts were shorter than its answer (a late ack: stretch them, and no RTT sample, since
      // the round it answers started earlier than this one).
      this.probe = undefined;
      this.stats.lateAcks++;
      this.awareness.applyDelta(1);
      if (from === p.id) this.suspicions.get(p.idx)?.restart(now);
      return;
    }
    if (p !== undefined && msg.seq === p.seq) {
      this.probe = undefined;
      this.awareness.applyDelta(-1);
      if (from === p.id) {
        // It answered: if we suspect it, its refutation is on the way (the ping carried our
        // suspicion); do not let our timer run out in the meantime.
        this.suspicions.get(p.idx)?.restart(now);
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
  protected relay(origin: string, msg: PingReqMessage, now: number): void {
    if (msg.target === this.id || msg.target === origin) return;
    if (this.relays.size >= this.config.maxPendingRelays) {
      this.stats.relaysDropped++;
      return;
    }
    const seq = this.nextSeq();
    const c = this.config;
    const deadline = now + c.probeTimeout;
    const nackAt =
      now + Math.min(c.probeTimeout, NACK_FRACTION * (c.probeInterval - c.probeTimeout));
    this.relays.set(seq, { origin, originSeq: msg.seq, deadline, nack: msg.nack, nackAt });
    const known = this.table.metaOf(this.interner.lookup(msg.target))?.addrs;
    const addrs = msg.targetAddrs.length > 0 ? msg.targetAddrs : known;
    const ping: SwimMessage = { type: 'ping', seq, target: msg.target, updates: this.piggyback() };
    this.send(msg.target, ping, addrs);
  }

  protected expireRelays(now: number): void {
    if (this.relays.size === 0) return;
    for (const [seq, r] of this.relays) {
      if (r.nack && r.nackAt <= now) {
        r.nack = false;
        this.send(r.origin, { type: 'nack', seq: r.originSeq });
      }
      if (r.deadline <= now) this.relays.delete(seq);
    }
  }

  /**
   * Declares dead the suspects whose timeout ran out. A suspicion we have not told the suspect of
   * ourselves since it (re)started first gets a last call: we tell the suspect directly and wait
   * one more probe timeout, so that a live member whose refutation never reached us answers us
   * directly. (The first suspector told it at once, so the first verdict about a crashed member is
   * not delayed.)
   */
  protected expireSuspicions(now: number): void {
    if (this.suspicions.size === 0) return;
    for (const [idx, s] of this.suspicions) {
      if (s.deadline > now) continue;
      const id = this.interner.idOf(idx);
      if (s.noticedAt < s.startedAt && this.table.code(idx) === ST_SUSPECT) {
        s.noticedAt = now;
        s.deadline = now + this.awareness.scale(this.config.probeTimeout);
        const notice: Update = { kind: 'suspect', id, incarnation: s.incarnation, from: this.id };
        this.send(id, { type: 'gossip', updates: [notice] });
        continue;
      }
      this.suspicions.delete(idx);
      if (this.table.code(idx) !== ST_SUSPECT) continue;
      this.applyDown({ kind: 'dead', id, incarnation: s.incarnation, from: this.id }, now);
    }
  }

  /**
   * Up to `k` distinct live members accepted by `ok`, chosen at random (rejection sampling, then a
   * scan of the live list if the sample came up short).
   */
  protected sampleLive(k: number, ok: (idx: number) => boolean): number[] {
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
}
