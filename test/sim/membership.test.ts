// The deterministic simulator driving the SWIM core: crash detection, dissemination, loss, slow
// nodes, partitions, leave and rejoin, checked against the standing invariants (tracker.ts) after
// every simulated 100 ms. A failure names its seed: SIM_SEED=<seed> npx vitest run test/sim.
import { describe, expect, it } from 'vitest';
import { resolveSwimConfig, type SwimConfig } from '../../membership/swim/index.js';
import { seedFromEnv } from './rng.js';
import { Simulation, simMeta, type SimOptions } from './swim-sim.js';

const seed = seedFromEnv();
const lan = resolveSwimConfig('lan');

function sim(opts: Partial<SimOptions> & { nodes: number }, config: SwimConfig = lan): Simulation {
  const s = new Simulation({ seed, config, ...opts });
  s.tracker.installInvariants();
  return s;
}

function report(what: string, figures: Record<string, number | string>): void {
  console.log(
    `[sim seed=${seed}] ${what}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 10) / 10 : v}`)
      .join(' ')}`,
  );
}

describe(`SWIM simulator (SIM_SEED=${seed})`, () => {
  it('1,000 nodes, 5% loss: an update reaches everyone, a crash is detected everywhere, no false dead', () => {
    const s = sim({
      nodes: 1000,
      network: { loss: 0.05, sites: 5, intraSiteMs: 0.25, interSiteMs: [0.5, 5] },
    });
    s.run(3000);
    const sent0 = s.sent;
    s.run(8000);
    const perMember = (s.sent - sent0) / 1000 / 5;
    const u = 7;
    s.updateMeta(u, { ...simMeta(u, s.net.siteOf(u)), tags: { v: '2' } });
    const w = s.tracker.watchUpdate(u, s.cores[u].incarnation);
    expect(
      s.runUntil(() => s.tracker.coverage(w, 1) >= 0, 30_000, 50),
      `update coverage (SIM_SEED=${seed})`,
    ).toBeGreaterThanOrEqual(0);
    const c = 13;
    s.crash(c);
    const d = s.tracker.watchDeath(c);
    expect(
      s.runUntil(() => s.tracker.delays(d).missing === 0, 60_000, 100),
      `crash detection (SIM_SEED=${seed})`,
    ).toBeGreaterThanOrEqual(0);
    const det = s.tracker.summary(d);
    report('n=1000 loss=5%', {
      update99ms: s.tracker.coverage(w, 0.99),
      update100ms: s.tracker.coverage(w, 1),
      detectP50ms: det.p50,
      detectP99ms: det.p99,
      msgsPerMemberPerS: perMember,
      falseDead: s.tracker.falseDeads.length,
    });
    expect(s.tracker.falseDeads, `false dead verdicts (SIM_SEED=${seed})`).toEqual([]);
    expect(s.tracker.coverage(w, 0.99)).toBeLessThan(1500);
  });

  it('messages per member per second do not grow with N', () => {
    const rate = (n: number) => {
      const s = sim({ nodes: n, network: { sites: 3, interSiteMs: [0.5, 2] } });
      s.run(3000);
      const sent0 = s.sent;
      s.run(8000);
      return (s.sent - sent0) / n / 5;
    };
    const small = rate(50);
    const big = rate(800);
    report('messages/member/s', { n50: small, n800: big });
    expect(big).toBeLessThan(small * 1.25);
  });

  it('10 nodes with 10% TCP-like loss (retransmits) for 5 simulated minutes: no false dead', () => {
    const s = sim({ nodes: 10, network: { loss: 0.1, lossMode: 'delay', sites: 1 } });
    s.run(300_000);
    report('n=10 loss=10% tcp 5min', {
      suspectEvents: s.tracker.eventCounts['member:suspect'] ?? 0,
      falseDead: s.tracker.falseDeads.length,
    });
    expect(s.tracker.falseDeads, `SIM_SEED=${seed}`).toEqual([]);
  });

  it('CPU-starved and stalling nodes are not declared dead (Lifeguard), crashes still are', () => {
    const s = sim({ nodes: 100, network: { sites: 2, interSiteMs: [0.5, 2] } });
    for (let i = 0; i < 10; i++) s.setLag(i, 20, 60);
    for (let i = 10; i < 30; i++) s.setStalls(i, 0.5, 50, 150);
    s.run(60_000);
    s.crash(50);
    const d = s.tracker.watchDeath(50);
    expect(s.runUntil(() => s.tracker.delays(d).missing === 0, 60_000, 100)).toBeGreaterThanOrEqual(
      0,
    );
    report('n=100 slow nodes', {
      falseDead: s.tracker.falseDeads.length,
      detectP99ms: s.tracker.summary(d).p99,
    });
    expect(s.tracker.falseDeads, `SIM_SEED=${seed}`).toEqual([]);
  });

  it('a partitioned site is declared dead, and after healing everyone is alive everywhere', () => {
    const n = 300;
    const s = sim({ nodes: n, network: { sites: 3, interSiteMs: [0.5, 2] } });
    s.run(2000);
    const cut: number[] = [];
    for (let i = 0; i < n; i++) if (s.net.siteOf(i) === 2) cut.push(i);
    s.partition([cut]);
    s.run(2000 + 30_000);
    expect(s.cores[0].counts().dead).toBe(cut.length);
    s.heal();
    const all = () => s.cores.every((c) => c.counts().alive + c.counts().suspect === n);
    const took = s.runUntil(all, 120_000, 250);
    report('partition of 1/3 for 30 s, then heal', { convergedAfterMs: took });
    expect(took, `SIM_SEED=${seed}`).toBeGreaterThanOrEqual(0);
  });

  it('nodes join from scratch, leave gracefully (left, not dead), and rejoin after a restart', () => {
    const n = 200;
    const s = sim({
      nodes: n,
      converged: false,
      joinSpreadMs: 2000,
      network: { sites: 2, interSiteMs: [0.5, 2] },
    });
    const joined = s.runUntil(() => s.cores.every((c) => c && c.counts().alive === n), 60_000, 100);
    expect(joined, `join (SIM_SEED=${seed})`).toBeGreaterThanOrEqual(0);
    s.run(s.now + 2000);
    s.leave(5);
    const l = s.tracker.watchDeath(5);
    expect(s.runUntil(() => s.tracker.delays(l).missing === 0, 10_000, 50)).toBeGreaterThanOrEqual(
      0,
    );
    expect(s.cores[0].stateOf(s.ids[5])).toBe('left');
    const leftAfter = s.tracker.summary(l).max;
    s.crash(9);
    s.run(s.now + 15_000);
    expect(s.cores[0].stateOf(s.ids[9])).toBe('dead');
    s.restart(9, { keepIncarnation: true });
    const back = s.runUntil(
      () => s.cores.every((c, i) => !s.isLive(i) || c.stateOf(s.ids[9]) === 'alive'),
      30_000,
      100,
    );
    report('join/leave/rejoin n=200', {
      joinedMs: joined,
      leftEverywhereMs: leftAfter,
      rejoinedMs: back,
    });
    expect(back, `rejoin (SIM_SEED=${seed})`).toBeGreaterThanOrEqual(0);
  });
});
