// A hand-driven harness for unit tests of the SWIM core: no sleeps, time is whatever the test says.
// Cores are created with a converged membership; effects are collected and delivered on request.
import {
  type Effect,
  type MemberMeta,
  type MembershipEvent,
  type PushPullEntry,
  type SwimConfig,
  type SwimMessage,
  SwimCore,
  resolveSwimConfig,
} from '../../../membership/swim/index.js';
import { createRng } from '../../sim/rng.js';

export function metaFor(id: string, extra: Partial<MemberMeta> = {}): MemberMeta {
  return {
    name: `n-${id}`,
    site: 'site1',
    addrs: [`/ip4/10.0.0.1/tcp/7946/p2p/${id}`],
    tags: {},
    ...extra,
  };
}

export interface Envelope {
  from: string;
  to: string;
  msg: SwimMessage;
}

export class Harness {
  readonly cores = new Map<string, SwimCore>();
  readonly inflight: Envelope[] = [];
  readonly events: Array<{ at: string; event: MembershipEvent }> = [];
  readonly rtts: Array<{ at: string; id: string; rttMs: number }> = [];
  /** Messages sent so far, by type. */
  readonly sentByType = new Map<string, number>();
  now = 0;
  readonly config: SwimConfig;

  constructor(
    ids: string[],
    overrides: Partial<SwimConfig> = {},
    opts: { seed?: number; initialIncarnation?: Record<string, number> } = {},
  ) {
    this.config = resolveSwimConfig('lan', overrides);
    const rng = createRng(opts.seed ?? 1);
    const all: PushPullEntry[] = ids.map((id) => ({
      id,
      incarnation: 0,
      state: 'alive',
      meta: metaFor(id),
    }));
    for (const id of ids) {
      this.cores.set(
        id,
        new SwimCore({
          self: { id, meta: metaFor(id) },
          config: this.config,
          rng: rng.fork(),
          now: 0,
          initialMembers: all,
          announce: false,
          initialIncarnation: opts.initialIncarnation?.[id],
        }),
      );
    }
  }

  core(id: string): SwimCore {
    const c = this.cores.get(id);
    if (c === undefined) throw new Error(`no core ${id}`);
    return c;
  }

  /** Records effects produced by `at`; sends go in flight. Returns the sends. */
  absorb(at: string, fx: Effect[]): Envelope[] {
    const sent: Envelope[] = [];
    for (const e of fx) {
      if (e.type === 'send') {
        const env = { from: at, to: e.to, msg: e.msg };
        this.inflight.push(env);
        sent.push(env);
        this.sentByType.set(e.msg.type, (this.sentByType.get(e.msg.type) ?? 0) + 1);
      } else if (e.type === 'event') this.events.push({ at, event: e.event });
      else this.rtts.push({ at, id: e.id, rttMs: e.rttMs });
    }
    return sent;
  }

  sentOfType(type: SwimMessage['type']): number {
    return this.sentByType.get(type) ?? 0;
  }

  /** Ticks one core at `now`. */
  tick(id: string, now = this.now): Envelope[] {
    this.now = now;
    return this.absorb(id, this.core(id).tick(now));
  }

  /** Ticks every core at `now`. */
  tickAll(now = this.now): void {
    this.now = now;
    for (const id of this.cores.keys()) this.tick(id, now);
  }

  /** Delivers everything in flight (and what that produces) until quiet; `drop` filters. */
  deliver(drop: (e: Envelope) => boolean = () => false, maxRounds = 50): void {
    for (let r = 0; r < maxRounds && this.inflight.length > 0; r++) {
      const batch = this.inflight.splice(0);
      for (const env of batch) {
        if (drop(env)) continue;
        const core = this.cores.get(env.to);
        if (core === undefined) continue;
        this.absorb(env.to, core.handle(env.from, env.msg, this.now));
      }
    }
  }

  /** Runs all cores from `this.now` to `until` in `step` ms increments, delivering instantly. */
  run(until: number, drop: (e: Envelope) => boolean = () => false, step = 10): void {
    for (let t = this.now; t <= until; t += step) {
      this.tickAll(t);
      this.deliver(drop);
    }
    this.now = until;
  }

  eventsOf(
    type: MembershipEvent['type'],
    about?: string,
  ): Array<{ at: string; event: MembershipEvent }> {
    return this.events.filter(
      (e) => e.event.type === type && (about === undefined || e.event.member.id === about),
    );
  }
}
