// The SWIM core in the simulator at 1,000 nodes: one long run through every fault (5% loss
// throughout, CPU-starved and stalling nodes, an update, crashes, a graceful leave, a restart, a
// partition that heals), with the standing invariants checked every 100 ms simulated.
// Budget: well under a minute of wall time on two cores. A failure prints SIM_SEED=<seed>.
import { describe, expect, it } from 'vitest';
import { resolveSwimConfig } from '../../membership/swim/index.js';
import { percentile } from '../../bench/lib.js';
import { detectionBound, disseminationBound, staleDeadBound } from './bounds.js';
import { seedFromEnv } from './rng.js';
import { standardRun } from './scenarios.js';
import { Simulation, simMeta } from './swim-sim.js';

const SEED = seedFromEnv();
const N = 1000;
const lan = resolveSwimConfig('lan');

function log(what: string, figures: object): void {
  console.log(`[sim seed=${SEED}] ${what}: ${JSON.stringify(figures)}`);
}

describe(`SWIM simulator, ${N} nodes (SIM_SEED=${SEED})`, () => {
  it('dissemination, detection and message rate (the benchmark scenario)', () => {
    const f = standardRun({ nodes: N, seed: SEED });
    log('standard run', f);
    expect(f.false_dead, `SIM_SEED=${SEED}`).toBe(0);
    expect(f.update_100pct_ms, `SIM_SEED=${SEED}`).toBeLessThanOrEqual(disseminationBound(lan, N));
    expect(f.update_99pct_ms, `SIM_SEED=${SEED}`).toBeLessThanOrEqual(1500);
  });

  it('crashes, slow nodes, leave, restart and a healing partition, at 5% loss', () => {
    const t0 = performance.now();
    const sim = new Simulation({
      nodes: N,
      seed: SEED,
      config: lan,
      network: { loss: 0.05, sites: 5, interSiteMs: [0.5, 2] },
    });
    sim.tracker.installInvariants();
    const isLive = (i: number) => sim.isLive(i);
    // 20 CPU-starved nodes (50-100 ms on every message and timer), 100 that stall now and then.
    for (let i = 900; i < 920; i++) sim.setLag(i, 50, 50);
    for (let i = 920; i < 1000; i++) sim.setStalls(i, 1, 50, 100);
    sim.run(5000);

    // Crashes: three at once.
    const crashed = [11, 222, 333];
    const watches = crashed.map((c) => {
      sim.crash(c);
      return sim.tracker.watchDeath(c);
    });
    const detectTook = sim.runUntil(
      () => watches.every((w) => sim.tracker.delays(w).missing === 0),
      detectionBound(lan, N),
      20,
    );
    expect(detectTook, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    const delays = watches.flatMap((w) => sim.tracker.delays(w).delays);

    // A graceful leave.
    sim.leave(44);
    const lw = sim.tracker.watchDeath(44);
    const leaveTook = sim.runUntil(() => sim.tracker.delays(lw).missing === 0, 10_000, 20);
    expect(leaveTook, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    expect(sim.cores[0].stateOf(sim.ids[44])).toBe('left');

    // A crashed node restarts (its incarnation lost) and rejoins.
    sim.restart(222, { keepIncarnation: false });
    const rejoined = () =>
      sim.cores.every((c, o) => !isLive(o) || c.stateOf(sim.ids[222]) === 'alive');
    const rejoinTook = sim.runUntil(rejoined, disseminationBound(lan, N), 50);
    expect(rejoinTook, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);

    // No false verdicts so far, with loss, lag and stalls.
    const falseBeforePartition = sim.tracker.falseDeads.length;
    expect(sim.tracker.falseDeads, `SIM_SEED=${SEED}`).toEqual([]);

    // One site (200 nodes) cut off for 15 s, then healed.
    const site = [...Array(N).keys()].filter((i) => sim.net.siteOf(i) === 4);
    sim.partition([site]);
    sim.run(sim.now + 15_000);
    expect(sim.cores[0].counts().dead).toBeGreaterThanOrEqual(site.length);
    sim.heal();
    const live = () => sim.liveCount();
    const healed = () =>
      sim.cores.every((c, o) => {
        if (!isLive(o)) return true;
        const k = c.counts();
        return k.alive + k.suspect === live();
      });
    const healTook = sim.runUntil(healed, staleDeadBound(lan, N), 250);
    expect(healTook, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);
    sim.run(sim.now + 5000);

    let maxSlowHealth = 0;
    for (let i = 900; i < 920; i++)
      maxSlowHealth = Math.max(maxSlowHealth, sim.cores[i].healthScore);
    const update = sim.tracker.watchUpdate(5, sim.cores[5].incarnation + 1);
    sim.updateMeta(5, { ...simMeta(5, sim.net.siteOf(5)), tags: { v: 'after-heal' } });
    const updTook = sim.runUntil(
      () => sim.tracker.delays(update).missing === 0,
      disseminationBound(lan, N),
      10,
    );
    expect(updTook, `SIM_SEED=${SEED}`).toBeGreaterThanOrEqual(0);

    const f = {
      detect_p50_ms: Math.round(percentile(delays, 50)),
      detect_p99_ms: Math.round(percentile(delays, 99)),
      detect_all_three_everywhere_ms: Math.round(detectTook),
      left_everywhere_ms: Math.round(leaveTook),
      rejoin_everywhere_ms: Math.round(rejoinTook),
      heal_converged_ms: Math.round(healTook),
      verdicts_formed_across_partition: sim.tracker.falseDeads.length - falseBeforePartition,
      unexplained_false_dead: sim.tracker.unexplainedFalseDeads.length,
      update_after_heal_everywhere_ms: Math.round(updTook),
      msgs_per_member_s: +(sim.sent / N / (sim.now / 1000)).toFixed(1),
      suspect_events: sim.tracker.eventCounts['member:suspect'] ?? 0,
      simulated_s: Math.round(sim.now / 1000),
      wall_ms: Math.round(performance.now() - t0),
    };
    log('fault run', f);
    expect(sim.tracker.unexplainedFalseDeads, `SIM_SEED=${SEED}`).toEqual([]);
  });
});
