// Simulator for the replicated key/value state: replicas with skewed clocks, lossy delayed
// broadcasts, partitions that heal, power-loss crashes and restarts, anti-entropy between random
// pairs (with writes interleaved mid-session), tombstone GC by stable vector and by horizon.
// Reproduce a failure with SIM_SEED=<seed> npx vitest run test/sim/kv.test.ts
import { describe, expect, it } from 'vitest';
import type { StateRecord } from '../../storage/state/index.js';
import { SimCluster, type SimConfig } from './kv/cluster.js';
import { checkConverged, checkMonotonic, checkReplicaState } from './kv/invariants.js';
import { createRng, seedFromEnv } from './rng.js';

interface Scenario {
  name: string;
  cfg: SimConfig;
  steps: number;
  /** Per-step probabilities. */
  p: {
    write: number;
    ae: number;
    partition: number;
    heal: number;
    crash: number;
    restart: number;
    gc: number;
  };
  checkEvery: number;
  /** Whether GC must have collected something (with few keys, a delete is soon overwritten). */
  expectGc: boolean;
}

const base: SimConfig = {
  replicas: 12,
  keys: 40,
  loss: 0.2,
  maxDelayMs: 400,
  maxSkewMs: 2_000,
  maxDriftMs: 1_500, // below the skew spread: some changes are refused for drift, then retried
  tombstoneHorizonMs: 60_000,
};

const scenarios: Scenario[] = [
  {
    name: '12 replicas, lossy broadcasts, partitions, crashes, GC',
    cfg: base,
    steps: 3_000,
    p: { write: 0.5, ae: 0.3, partition: 0.01, heal: 0.03, crash: 0.01, restart: 0.05, gc: 0.03 },
    checkEvery: 100,
    expectGc: true,
  },
  {
    name: '20 replicas, few keys, heavy loss and churn',
    cfg: { ...base, replicas: 20, keys: 8, loss: 0.6, tombstoneHorizonMs: 30_000 },
    steps: 2_000,
    p: { write: 0.6, ae: 0.4, partition: 0.02, heal: 0.04, crash: 0.02, restart: 0.06, gc: 0.05 },
    checkEvery: 100,
    expectGc: false,
  },
];

const seed = seedFromEnv();

describe(`kv state simulator (SIM_SEED=${seed})`, () => {
  for (const [n, sc] of scenarios.entries()) {
    it(sc.name, async () => {
      const rng = createRng((seed + n * 0x9e3779b9) >>> 0);
      const sim = new SimCluster(sc.cfg, rng);
      const highest: Array<Map<string, StateRecord>> = [];
      try {
        await sim.start();
        highest.push(...sim.replicas.map(() => new Map<string, StateRecord>()));
        for (let step = 0; step < sc.steps; step++) {
          sim.time += 5 + rng.int(50);
          await sim.deliver();
          const up = sim.up();
          if (up.length > 0 && rng.chance(sc.p.write)) await sim.write(rng.pick(up));
          if (up.length > 0 && rng.chance(sc.p.ae))
            await sim.antiEntropy(rng.pick(up), rng.chance(0.3));
          if (rng.chance(sc.p.partition)) sim.partition();
          if (rng.chance(sc.p.heal)) sim.heal();
          if (up.length > 2 && rng.chance(sc.p.crash)) await sim.crash(rng.pick(up));
          for (let i = 0; i < sim.replicas.length; i++) {
            if (sim.replicas[i].store === undefined && rng.chance(sc.p.restart))
              await sim.restart(i);
          }
          if (up.length > 0 && rng.chance(sc.p.gc)) await sim.gc(rng.pick(sim.up()));
          sim.refreshSummaries();
          if (step % sc.checkEvery === 0) {
            for (const i of sim.up()) {
              await checkMonotonic(sim, i, highest[i], await checkReplicaState(sim, i));
            }
          }
        }
        await sim.quiesce();
        for (let i = 0; i < sim.replicas.length; i++) {
          await checkMonotonic(sim, i, highest[i], await checkReplicaState(sim, i));
        }
        const result = await checkConverged(sim);
        // Collect what everyone has seen, then check again: GC must not resurrect anything. Two
        // passes: stable GC collects at a replica's second call what was stable at its first.
        for (let pass = 0; pass < 2; pass++)
          for (let i = 0; i < sim.replicas.length; i++) await sim.gc(i);
        await sim.quiesce();
        const after = await checkConverged(sim);
        expect(after.live).toBe(result.live);
        console.log(
          `${sc.name}: seed ${seed}, ${sc.steps} steps, ${result.keys} keys (${result.live} live), ` +
            JSON.stringify(sim.counters),
        );
        expect(sim.counters.crashes).toBeGreaterThan(0);
        if (sc.expectGc) expect(sim.counters.gcCollected).toBeGreaterThan(0);
      } catch (err) {
        console.error(
          `kv simulator failed: reproduce with SIM_SEED=${seed} npx vitest run test/sim/kv.test.ts\n` +
            `recent events:\n  ${sim.log.join('\n  ')}`,
        );
        throw err;
      }
    });
  }
});
