// Measurement scenarios shared by the simulator tests and bench/membership-sim.ts.
import { type SwimConfig, resolveSwimConfig } from '../../membership/swim/index.js';
import { percentile } from '../../bench/lib.js';
import { detectionBound, disseminationBound } from './bounds.js';
import type { NetworkOptions } from './network.js';
import { Simulation, simMeta } from './swim-sim.js';

export interface StandardRunOptions {
  nodes: number;
  seed: number;
  config?: SwimConfig;
  /** Default: 5% loss (dropped), 5 sites 0.5-2 ms apart (a campus), 0.25 ms inside a site. */
  network?: Partial<NetworkOptions>;
  /** Crashes to detect, one after another. Default 2. */
  crashes?: number;
}

export interface StandardRunFigures {
  nodes: number;
  seed: number;
  build_ms: number;
  wall_ms: number;
  /** Messages sent per member per second over 5 quiet simulated seconds (at the run's loss). */
  msgs_per_member_s: number;
  /** The same over 5 more seconds without loss (probes only: no news, no indirect probes). */
  msgs_per_member_s_no_loss: number;
  update_99pct_ms: number;
  update_100pct_ms: number;
  detect_p50_ms: number;
  detect_p99_ms: number;
  detect_everywhere_ms: number;
  false_dead: number;
  suspect_events_per_s: number;
  heap_mb: number;
  rss_mb: number;
}

/**
 * A converged cluster at 5% loss (lan preset unless told): quiet period (message rate), one
 * metadata update (time to 99% and 100% of live members), then crashes (time until each live
 * member holds the crashed one dead: p50/p99 over observers, and until everyone does).
 */
export function standardRun(o: StandardRunOptions): StandardRunFigures {
  const t0 = performance.now();
  const config = o.config ?? resolveSwimConfig('lan');
  const sim = new Simulation({
    nodes: o.nodes,
    seed: o.seed,
    config,
    network: { loss: 0.05, sites: 5, interSiteMs: [0.5, 2], ...o.network },
    checkEveryMs: o.nodes > 2000 ? 1000 : 100,
  });
  sim.tracker.installInvariants();
  const built = performance.now();
  sim.run(3000);
  const s0 = sim.sent;
  sim.run(8000);
  const msgs = (sim.sent - s0) / o.nodes / 5;
  const loss = sim.net.opts.loss;
  sim.net.setLoss(0);
  sim.run(10_000); // let the last news settle
  const s1 = sim.sent;
  sim.run(15_000);
  const msgsNoLoss = (sim.sent - s1) / o.nodes / 5;
  sim.net.setLoss(loss);

  const u = 1 % o.nodes;
  sim.updateMeta(u, { ...simMeta(u, sim.net.siteOf(u)), tags: { role: 'edge', v: '2' } });
  const w = sim.tracker.watchUpdate(u, sim.cores[u].incarnation);
  const took = sim.runUntil(
    () => sim.tracker.delays(w).missing === 0,
    disseminationBound(config, o.nodes),
    10,
  );
  if (took < 0) sim.fail('the update did not reach every live member');
  const upd99 = sim.tracker.coverage(w, 0.99);
  const upd100 = sim.tracker.coverage(w, 1);

  const delays: number[] = [];
  const everywhere: number[] = [];
  for (let k = 0; k < (o.crashes ?? 2); k++) {
    sim.run(sim.now + 2000);
    const c = (3 + 7 * k) % o.nodes;
    sim.crash(c);
    const d = sim.tracker.watchDeath(c);
    const t = sim.runUntil(
      () => sim.tracker.delays(d).missing === 0,
      detectionBound(config, o.nodes),
      20,
    );
    if (t < 0) sim.fail(`the crash of ${sim.ids[c]} was not detected everywhere`);
    const ds = sim.tracker.delays(d).delays;
    delays.push(...ds);
    everywhere.push(Math.max(...ds));
  }
  const mem = process.memoryUsage();
  return {
    nodes: o.nodes,
    seed: o.seed,
    build_ms: Math.round(built - t0),
    wall_ms: Math.round(performance.now() - t0),
    msgs_per_member_s: +msgs.toFixed(2),
    msgs_per_member_s_no_loss: +msgsNoLoss.toFixed(2),
    update_99pct_ms: Math.round(upd99),
    update_100pct_ms: Math.round(upd100),
    detect_p50_ms: Math.round(percentile(delays, 50)),
    detect_p99_ms: Math.round(percentile(delays, 99)),
    detect_everywhere_ms: Math.round(Math.max(...everywhere)),
    false_dead: sim.tracker.falseDeads.length,
    suspect_events_per_s: +(
      (sim.tracker.eventCounts['member:suspect'] ?? 0) /
      o.nodes /
      (sim.now / 1000)
    ).toFixed(2),
    heap_mb: Math.round(mem.heapUsed / 2 ** 20),
    rss_mb: Math.round(mem.rss / 2 ** 20),
  };
}
