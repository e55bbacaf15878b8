// The SWIM update rules (memberlist `state.go`: aliveNode, suspectNode, deadNode, refute,
// mergeState), with Lifeguard's refutation and a few partition-healing refinements documented on
// each method. See base.ts for the class chain.

import { MAX_INCARNATION, MAX_INCARNATION_JUMP, SwimBase, incarnationCeiling } from './base.js';
import { suspicionConfirmations, suspicionMaxTimeout, suspicionMinTimeout } from './config.js';
import { ST_ALIVE, ST_DEAD, ST_LEFT, ST_NONE, ST_SUSPECT } from './member-table.js';
import { metaEquals } from './meta.js';
import { Suspicion } from './suspicion.js';
import type { PushPullEntry, Update } from './types.js';

export class SwimState extends SwimBase {
  /** Applies the updates of a message (from any member: the ceiling holds for every sender). */
  protected applyUpdates(updates: readonly Update[], now: number): void {
    for (const u of updates)
      if (this.plausible(u.id, u.incarnation, now)) this.applyUpdate(u, now, true);
  }

  /**
   * Whether an update about member `id` at `incarnation` may be applied: not when it is above the
   * member's plausible ceiling (MAX_INCARNATION_JUMP), whoever sends it, the member included (it
   * may have been made to refute a forged verdict). Updates about us are always looked at; we
   * refute no verdict near the top (refute).
   */
  protected plausible(id: string, incarnation: number, now: number): boolean {
    if (id === this.id) return true;
    const idx = this.interner.lookup(id);
    if (this.table.code(idx) === ST_NONE) return true;
    let anchor = this.incAnchors.get(idx);
    if (anchor === undefined) {
      anchor = { inc: this.table.inc[idx], at: now };
      this.incAnchors.set(idx, anchor);
    }
    if (incarnation <= incarnationCeiling(anchor, now)) return true;
    this.stats.implausibleUpdates++;
    return false;
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
      this.incAnchors.set(idx, { inc: u.incarnation, at: now });
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
    // A member we hold alive with a new load score and nothing else new: quiet news. The same meta
    // under a new incarnation is not: it may refute a suspicion we did not hear of.
    const quiet = code === ST_ALIVE && !same && metaEquals(oldMeta, u.meta, true);
    if (rebroadcast) this.broadcast(idx, u, quiet);
    if (code === ST_DEAD || code === ST_LEFT) this.revivedAt.set(idx, now);
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
    const min = suspicionMinTimeout(this.config, n);
    const max = suspicionMaxTimeout(this.config, n);
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
    if (u.kind === 'dead') {
      if (this.discredited(u.from)) return;
      if (this.recentlyRevived(u.from, now)) {
        // Its verdicts may be news from the other side of a partition that just healed: treat
        // them as a suspicion, which the member refutes if it is alive.
        this.applySuspect(
          { kind: 'suspect', id: u.id, incarnation: u.incarnation, from: u.from },
          now,
        );
        return;
      }
    }
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
   * Whether `from` came back from dead in our view less than gossipToTheDeadTime ago (its death
   * verdicts are then downgraded to suspicions, see applyDown).
   */
  protected recentlyRevived(from: string, now: number): boolean {
    if (this.revivedAt.size === 0) return false;
    const idx = this.interner.lookup(from);
    const at = this.revivedAt.get(idx);
    if (at === undefined) return false;
    if (now - at <= this.config.gossipToTheDeadTime) return true;
    this.revivedAt.delete(idx);
    return false;
  }

  /**
   * Someone suspects (or buried) us at `accused`: come back with a higher incarnation, gossiped as
   * usual and also sent at once to the `accuser`, whose suspicion timer is running.
   */
  protected refute(accused: number, accuser: string | undefined, wasDead = false): void {
    let inc = this.incarnation + 1;
    if (accused >= inc) {
      // A verdict within MAX_INCARNATION_JUMP of the top is a forgery (we would need 1,000 years
      // to get there): refuting above it would take us to the top, where our own word is dropped
      // by everyone (above their ceilings) and nothing can refute any more. Others drop it too.
      if (accused >= MAX_INCARNATION - MAX_INCARNATION_JUMP) this.stats.implausibleUpdates++;
      else inc = accused + 1;
    }
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
      if (!this.plausible(e.id, e.incarnation, now)) continue;
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
}
