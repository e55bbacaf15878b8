// What the simulator measures and checks: membership events seen by each node (detection of
// crashed nodes, dissemination of updates, false dead verdicts), and the standing invariants.
import type { MembershipEvent } from '../../membership/swim/index.js';
import { percentile } from '../../bench/lib.js';
import { detectionBound, disseminationBound, staleDeadBound } from './bounds.js';
import type { Simulation } from './swim-sim.js';

/** First time each observer saw something about `subject` (NaN: not yet). */
export interface Watch {
  subject: number;
  start: number;
  times: Float64Array;
  /** Incarnation an update watch waits for. */
  incarnation: number;
  kind: 'death' | 'update';
}

export interface FalseDead {
  t: number;
  observer: number;
  subject: number;
  /**
   * Within the detection bound after a partition started or healed: most likely a verdict formed
   * while the two could not reach each other, still spreading (SWIM's rule: the member must
   * refute it). Reported apart from false verdicts about reachable members.
   */
  afterPartition: boolean;
}

export class SimTracker {
  readonly crashAt = new Map<number, number>();
  readonly falseDeads: FalseDead[] = [];
  readonly eventCounts: Record<string, number> = {};
  private readonly watches: Watch[] = [];

  constructor(private readonly sim: Simulation) {}

  /** Watches for member:down / member:left about `subject` from now on. */
  watchDeath(subject: number): Watch {
    return this.add(subject, 'death', 0);
  }

  /** Watches for every node to hold `subject` at `incarnation` or later. */
  watchUpdate(subject: number, incarnation: number): Watch {
    return this.add(subject, 'update', incarnation);
  }

  private add(subject: number, kind: Watch['kind'], incarnation: number): Watch {
    const w: Watch = {
      subject,
      start: this.sim.now,
      times: new Float64Array(this.sim.n).fill(NaN),
      incarnation,
      kind,
    };
    this.watches.push(w);
    return w;
  }

  onCrash(i: number): void {
    this.crashAt.set(i, this.sim.now);
  }

  onRestart(i: number): void {
    this.crashAt.delete(i);
  }

  onEvent(observer: number, ev: MembershipEvent): void {
    const sim = this.sim;
    this.eventCounts[ev.type] = (this.eventCounts[ev.type] ?? 0) + 1;
    const subject = sim.idx(ev.member.id);
    if (subject < 0) return;
    if (ev.type === 'member:down' && sim.isLive(subject) && sim.net.canReach(observer, subject)) {
      // A restarted node's previous life may still be detected as dead: not a false verdict.
      const sinceStart = sim.now - sim.startedAt[subject];
      const bound = detectionBound(sim.config, sim.n);
      if (sinceStart > bound) {
        const topo = sim.net.topologyChangedAt;
        const afterPartition = topo > 0 && sim.now - topo < bound;
        this.falseDeads.push({ t: sim.now, observer, subject, afterPartition });
      }
    }
    if (ev.type === 'member:left' && sim.hasLeft[subject] === 0 && sim.isRunning(subject)) {
      sim.fail(`node ${observer} saw ${ev.member.id} leave, but it never left`);
    }
    for (const w of this.watches) {
      if (w.subject !== subject || !Number.isNaN(w.times[observer])) continue;
      if (w.kind === 'death') {
        if (ev.type === 'member:down' || ev.type === 'member:left') w.times[observer] = sim.now;
      } else if (ev.member.incarnation >= w.incarnation && ev.member.state === 'alive') {
        w.times[observer] = sim.now;
      }
    }
  }

  /**
   * Delays (ms from the watch's start) at which live observers saw it, one per observer that did;
   * `missing` counts live observers that did not (yet).
   */
  delays(w: Watch): { delays: number[]; missing: number } {
    const delays: number[] = [];
    let missing = 0;
    for (let o = 0; o < this.sim.n; o++) {
      if (o === w.subject || !this.sim.isLive(o)) continue;
      if (Number.isNaN(w.times[o])) missing++;
      else delays.push(w.times[o] - w.start);
    }
    return { delays, missing };
  }

  /** Time for `fraction` (0..1] of the live observers to see it, or NaN if not reached. */
  coverage(w: Watch, fraction: number): number {
    const { delays, missing } = this.delays(w);
    const total = delays.length + missing;
    const need = Math.ceil(fraction * total);
    if (need > delays.length) return NaN;
    delays.sort((a, b) => a - b);
    return need === 0 ? 0 : delays[need - 1];
  }

  /** p50 / p99 / max of the observer delays. */
  summary(w: Watch): { p50: number; p99: number; max: number; missing: number } {
    const { delays, missing } = this.delays(w);
    return {
      p50: percentile(delays, 50),
      p99: percentile(delays, 99),
      max: percentile(delays, 100),
      missing,
    };
  }

  /** False dead verdicts about members reachable all along (not explained by a partition). */
  get unexplainedFalseDeads(): FalseDead[] {
    return this.falseDeads.filter((f) => !f.afterPartition);
  }

  /** The standing invariants (see bounds.ts for the limits). */
  installInvariants(): void {
    const sim = this.sim;
    const cfg = sim.config;
    sim.invariant(
      'a crashed member is dead everywhere within the detection bound',
      () => {
        const bound = detectionBound(cfg, sim.n);
        for (const [c, at] of this.crashAt) {
          if (sim.now < at + bound) continue;
          const id = sim.ids[c];
          for (let o = 0; o < sim.n; o++) {
            if (!sim.isLive(o)) continue;
            const st = sim.cores[o].stateOf(id);
            if (st === 'alive' || st === 'suspect')
              return `${sim.ids[o]} still sees ${id} ${st} ${(sim.now - at).toFixed(0)} ms after its crash (bound ${bound} ms)`;
          }
        }
        return undefined;
      },
      500,
    );
    sim.invariant(
      'no live, reachable member stays dead',
      () => {
        const bound = staleDeadBound(cfg, sim.n);
        for (let o = 0; o < sim.n; o++) {
          if (!sim.isLive(o)) continue;
          const core = sim.cores[o];
          for (const id of core.downIds()) {
            const s = sim.idx(id);
            if (s < 0 || !sim.isLive(s) || !sim.net.canReach(o, s)) continue;
            const m = core.member(id)!;
            const since = Math.max(
              m.stateChangedAt,
              sim.net.topologyChangedAt,
              sim.startedAt[s],
              sim.startedAt[o],
            );
            if (sim.now - since > bound)
              return `${sim.ids[o]} has held live ${id} ${m.state} for ${(sim.now - since).toFixed(0)} ms (bound ${bound} ms)`;
          }
        }
        return undefined;
      },
      1000,
    );
    sim.invariant(
      'every update reaches every live member',
      () => {
        const bound = disseminationBound(cfg, sim.n);
        for (const w of this.watches) {
          if (w.kind !== 'update' || sim.now < w.start + bound || !sim.isLive(w.subject)) continue;
          const id = sim.ids[w.subject];
          for (let o = 0; o < sim.n; o++) {
            if (o === w.subject || !sim.isLive(o) || !sim.net.canReach(o, w.subject)) continue;
            const inc = sim.cores[o].incarnationOf(id);
            if (inc === undefined || inc < w.incarnation)
              return `${sim.ids[o]} holds ${id} at incarnation ${inc}, not ${w.incarnation}, ${(sim.now - w.start).toFixed(0)} ms after the update (bound ${bound} ms)`;
          }
        }
        return undefined;
      },
      500,
    );
  }
}
