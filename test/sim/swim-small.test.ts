// The SWIM core in the simulator, small clusters (10-50 nodes): fast cases for every fault.
// A failing run prints SIM_SEED=<seed>; run again with that environment variable to reproduce.
import { describe, expect, it } from 'vitest';
import { type SwimConfig, resolveSwimConfig } from '../../membership/swim/index.js';
import { percentile } from '../../bench/lib.js';
import { detectionBound, disseminationBound } from './bounds.js';
import { seedFromEnv } from './rng.js';
import { type SimOptions, Simulation, simMeta } from './swim-sim.js';

const SEED = seedFromEnv();
const lan = resolveSwimConfig('lan');

function sim(opts: Partial<SimOptions> & { nodes: number }, seedOffset = 0): Simulation {
  const s = new Simulation({ seed: (SEED + seedOffset) >>> 0, config: lan, ...opts });
  s.tracker.installInvariants();
  return s;
}

function log(what: string, figures: object): void {
  console.log(`[sim seed=${SEED}] ${what}: ${JSON.stringify(figures)}`);
}

/** Crashes `victim`, runs until every live node sees it dead, returns the per-observer delays. */
function crashAndWait(s: Simulation, victim: number, cfg: SwimConfig = lan): number[] {
  s.crash(victim);
  const w = s.tracker.watchDeath(victim);
  const took = s.runUntil(() => s.tracker.delays(w).missing === 0, detectionBound(cfg, s.n), 20);
  if (took < 0) s.fail(`crash of ${s.ids[victim]} not detected everywhere`);
  return s.tracker.delays(w).delays;
}

describe(`SWIM simulator, small clusters (SIM_SEED=${SEED})`, () => {
  it('messages per member per second do not grow with N (50 vs 800 nodes), with or without loss', () => {
    const rate = (n: number, loss: number) => {
      const s = sim({ nodes: n, network: { sites: 3, interSiteMs: [0.5, 2], loss } });
      s.run(3000);
      const sent0 = s.sent;
      s.run(8000);
      return (s.sent - sent0) / n / 5;
    };
    for (const loss of [0, 0.05]) {
      const small = rate(50, loss);
      const big = rate(800, loss);
      log('messages/member/s', { loss, n50: small, n800: big });
      expect(big, `SIM_SEED=${SEED} loss ${loss}`).toBeLessThan(small * 1.1);
    }
  });

  it('N=50, lan: a crashed member is dead everywhere in under 3 s', () => {
    const everywhere: number[] = [];
    const all: number[] = [];
    for (let k = 0; k < 8; k++) {
      const s = sim({ nodes: 50, network: { sites: 3, interSiteMs: [0.5, 2] } }, k);
      s.run(3000 + 97 * k);
      const d = crashAndWait(s, (7 * k) % 50);
      all.push(...d);
      everywhere.push(Math.max(...d));
      expect(s.tracker.falseDeads, `SIM_SEED=${SEED}`).toEqual([]);
    }
    const f = {
      observer_p50_ms: Math.round(percentile(all, 50)),
      observer_p99_ms: Math.round(percentile(all, 99)),
      everywhere_p50_ms: Math.round(percentile(everywhere, 50)),
      everywhere_max_ms: Math.round(Math.max(...everywhere)),
    };
    log('N=50 crash detection', f);
    expect(f.everywhere_p50_ms, `SIM_SEED=${SEED}`).toBeLessThanOrEqual(3000);
  });

  for (const lossMode of ['drop', 'delay'] as const) {
    it(`N=10, 10% loss (${lossMode === 'drop' ? 'dropped' : 'TCP-like delays'}) for 5 minutes: no false dead`, () => {
      const s = sim({ nodes: 10, network: { loss: 0.1, lossMode } });
      s.run(300_000);
      const suspicions = s.tracker.eventCounts['member:suspect'] ?? 0;
      log(`N=10 10% loss ${lossMode}, 5 min`, {
        false_dead: s.tracker.falseDeads.length,
        suspect_events: suspicions,
        msgs_per_member_s: +(s.sent / 10 / 300).toFixed(1),
      });
      expect(s.tracker.falseDeads, `SIM_SEED=${SEED}`).toEqual([]);
    });
  }

  it('slow nodes: CPU-starved members are not declared dead, and stretch their own timeouts', () => {
    const s = sim({ nodes: 30, network: { loss: 0.05, lossMode: 'delay' } });
    const slow = [0, 1, 2, 3, 4];
    for (const i of slow) s.setLag(i, 50, 50); // every message and timer waits 50-100 ms
    for (let i = 5; i < 30; i++) s.setStalls(i, 2, 50, 100); // others stall twice a second
    let maxHealth = 0;
    for (let t = 5000; t <= 120_000; t += 5000) {
      s.run(t);
      for (const i of slow) maxHealth = Math.max(maxHealth, s.cores[i].healthScore);
    }
    const d = crashAndWait(s, 17);
    log('slow nodes, 2 min at 5% loss, then a crash', {
      false_dead: s.tracker.falseDeads.length,
      max_health_score_of_slow: maxHealth,
      suspect_events: s.tracker.eventCounts['member:suspect'] ?? 0,
      detect_p50_ms: Math.round(percentile(d, 50)),
      detect_max_ms: Math.round(Math.max(...d)),
    });
    expect(s.tracker.falseDeads, `SIM_SEED=${SEED}`).toEqual([]);
  });

  it('graceful leave: left everywhere, never dead, no longer probed', () => {
    const s = sim({ nodes: 30, network: { loss: 0.05 } });
    s.run(3000);
    s.leave(4);
    const w = s.tracker.watchDeath(4);
    const took = s.runUntil(() => s.tracker.delays(w).missing === 0, 10_000);
    expect(took, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    for (let o = 0; o < 30; o++) if (o !== 4) expect(s.cores[o].stateOf(s.ids[4])).toBe('left');
    expect(s.tracker.eventCounts['member:down'] ?? 0).toBe(0);
    log('leave', { left_everywhere_ms: Math.round(took) });
    s.run(s.now + 5000);
    expect(s.cores[4].pendingBroadcasts).toBe(0);
  });

  it('rejoin after restart, with and without the persisted incarnation', () => {
    const s = sim({ nodes: 30, network: { loss: 0.02 } });
    s.run(2000);
    crashAndWait(s, 9);
    crashAndWait(s, 10);
    s.restart(9, { keepIncarnation: true });
    s.restart(10, { keepIncarnation: false });
    const back = () =>
      s.cores.every(
        (c, o) =>
          !s.isLive(o) || (c.stateOf(s.ids[9]) === 'alive' && c.stateOf(s.ids[10]) === 'alive'),
      );
    const took = s.runUntil(back, disseminationBound(lan, 30));
    expect(took, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    expect(s.cores[9].members().length).toBe(30);
    log('rejoin after restart', {
      alive_everywhere_ms: took,
      incarnations: [s.cores[9].incarnation, s.cores[10].incarnation],
    });
    s.run(s.now + 20_000);
    expect(s.tracker.falseDeads, `SIM_SEED=${SEED}`).toEqual([]);
  });

  it('a partition that heals converges without operator action', () => {
    const s = sim({ nodes: 30, network: { sites: 3, loss: 0.02 } });
    s.run(2000);
    const cut = [...Array(30).keys()].filter((i) => s.net.siteOf(i) === 0);
    s.partition([cut]);
    s.run(s.now + 30_000);
    expect(s.cores[0].counts().dead).toBe(20);
    s.heal();
    const healed = () => s.cores.every((c) => c.counts().alive + c.counts().suspect === 30);
    const took = s.runUntil(healed, 120_000, 100);
    expect(took, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    log('partition 10|20 for 30 s, then heal', {
      converged_after_ms: took,
      verdicts_after_partition: s.tracker.falseDeads.length,
    });
    expect(s.tracker.unexplainedFalseDeads, `SIM_SEED=${SEED}`).toEqual([]);
  });

  it('nodes joining one by one through earlier ones all find each other', () => {
    const s = sim({ nodes: 50, converged: false, joinSpreadMs: 2000 });
    const full = () => s.now > 2000 && s.cores.every((c) => c.counts().alive === 50);
    const took = s.runUntil(full, 30_000, 100);
    expect(took, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    log('join of 50 nodes over 2 s', { everyone_knows_everyone_at_ms: Math.round(s.now) });
  });

  it('load scores refreshed all the time add no messages, and each reaches every member', () => {
    const n = 50;
    const s = sim({ nodes: n, network: { loss: 0.05 } });
    s.run(3000);
    const quiet0 = s.sent;
    s.run(8000);
    const quiet = (s.sent - quiet0) / n / 5;
    // every member publishes a new score every 2 s (an agent: at most every 10 s)
    const meta = (i: number, load: number) => ({ ...simMeta(i, s.net.siteOf(i)), load });
    const busy0 = s.sent;
    for (let k = 0; k < 250; k++) {
      s.run(8000 + k * 40);
      s.updateMeta(k % n, meta(k % n, k));
    }
    const busy = (s.sent - busy0) / n / 10;
    const last = (250 - 1) % n;
    const w = s.tracker.watchUpdate(last, s.cores[last].incarnation);
    const took = s.runUntil(
      () => s.tracker.delays(w).missing === 0,
      disseminationBound(lan, n),
      10,
    );
    log('load scores every 2 s at N=50', {
      messages_per_member_s: { quiet: +quiet.toFixed(1), busy: +busy.toFixed(1) },
      last_score_everywhere_ms: took,
    });
    expect(busy, `SIM_SEED=${SEED}`).toBeLessThan(quiet * 1.1);
    expect(took, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    expect(s.cores[0].member(s.ids[last])?.meta.load).toBe(249);
  });

  it('an update reaches every member; the codec carries real traffic', () => {
    const s = sim({ nodes: 20, codec: true, network: { loss: 0.05 } });
    s.run(2000);
    s.updateMeta(3, { ...simMeta(3, 0), tags: { role: 'storage' } });
    const w = s.tracker.watchUpdate(3, s.cores[3].incarnation);
    const took = s.runUntil(
      () => s.tracker.delays(w).missing === 0,
      disseminationBound(lan, 20),
      10,
    );
    expect(took, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    s.run(s.now + 10_000);
    crashAndWait(s, 5);
    log('N=20 through the codec', {
      update_everywhere_ms: took,
      bytes_per_member_s: Math.round(s.bytes / 20 / (s.now / 1000)),
    });
    expect(s.cores[0].member(s.ids[3])?.meta.tags).toEqual({ role: 'storage' });
  });

  it('is deterministic: the same seed gives the same run', () => {
    const run = () => {
      const s = sim({ nodes: 40, network: { loss: 0.05, sites: 2 } });
      s.setLag(3, 20, 30);
      s.run(4000);
      s.crash(8);
      s.run(15_000);
      return {
        sent: s.sent,
        lost: s.lost,
        events: s.tracker.eventCounts,
        inc: s.cores.map((c) => c.incarnation),
      };
    };
    expect(run()).toEqual(run());
  });
});
