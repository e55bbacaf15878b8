// The simulator's figures for `npm run bench -- membership`, run as its own process (10,000 nodes
// need a larger heap): node --max-old-space-size=10000 dist/test/sim/bench-sim.js 1000 10000
// Prints one JSON object.
import { resolveSwimConfig } from '../../membership/swim/index.js';
import { Simulation, simMeta } from './swim-sim.js';

function run(n: number, seed: number): Record<string, number | Record<string, number>> {
  const t0 = performance.now();
  const s = new Simulation({
    nodes: n,
    seed,
    config: resolveSwimConfig('lan'),
    network: { loss: 0.05, sites: 10, intraSiteMs: 0.25, interSiteMs: [0.5, 5] },
  });
  s.run(3000);
  const sent0 = s.sent;
  const byType0 = new Map(s.sentByType);
  s.run(8000);
  const perMember = (s.sent - sent0) / n / 5;
  const byType: Record<string, number> = {};
  for (const [type, k] of s.sentByType)
    byType[type] = Math.round(((k - (byType0.get(type) ?? 0)) / n / 5) * 100) / 100;
  const u = 7;
  s.updateMeta(u, { ...simMeta(u, s.net.siteOf(u)), tags: { v: '2' } });
  const w = s.tracker.watchUpdate(u, s.cores[u].incarnation);
  s.runUntil(() => s.tracker.coverage(w, 1) >= 0, 30_000, 50);
  const c = 13;
  s.crash(c);
  const d = s.tracker.watchDeath(c);
  s.runUntil(() => s.tracker.delays(d).missing === 0, 120_000, 100);
  const det = s.tracker.summary(d);
  return {
    nodes: n,
    seed,
    update_99pct_ms: Math.round(s.tracker.coverage(w, 0.99)),
    update_100pct_ms: Math.round(s.tracker.coverage(w, 1)),
    crash_dead_everywhere_p50_ms: Math.round(det.p50),
    crash_dead_everywhere_max_ms: Math.round(det.max),
    messages_per_member_per_s: Math.round(perMember * 10) / 10,
    messages_per_member_per_s_by_type: byType,
    false_dead: s.tracker.falseDeads.length,
    wall_ms: Math.round(performance.now() - t0),
    heap_mb: Math.round(process.memoryUsage().rss / 1e6),
  };
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => n > 0);
const seed = Number(process.env.SIM_SEED ?? 42);
const out = (sizes.length ? sizes : [1000]).map((n) => run(n, seed));
process.stdout.write(`${JSON.stringify(out)}\n`);
