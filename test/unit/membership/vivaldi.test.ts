// Vivaldi coordinates: convergence on a synthetic latency matrix, validation, the client cache.
import { describe, expect, it } from 'vitest';
import { InvalidCoordinateError } from '../../../membership/errors.js';
import {
  CoordinateClient,
  DEFAULT_VIVALDI_CONFIG,
  assertValidCoordinate,
  estimateRtt,
  isValidCoordinate,
  newCoordinate,
  updateCoordinate,
} from '../../../membership/coordinates/index.js';
import { createRng } from '../../sim/rng.js';

/** Sites on a plane (ms): RTT between sites = distance; within a site ~1 ms; plus access links. */
const SITES: Array<[string, number, number]> = [
  ['paris', 0, 0],
  ['london', 8, 3],
  ['frankfurt', 10, -6],
  ['newyork', -75, 10],
  ['tokyo', 180, 60],
];
const PER_SITE = 4;

function trueRtt(a: number, b: number, access: number[]): number {
  const sa = SITES[Math.floor(a / PER_SITE)];
  const sb = SITES[Math.floor(b / PER_SITE)];
  const d = Math.hypot(sa[1] - sb[1], sa[2] - sb[2]);
  return (a === b ? 0 : Math.max(d, 0.5)) + access[a] + access[b];
}

describe('Vivaldi', () => {
  it('converges so that estimated RTTs order the sites correctly', () => {
    const rng = createRng(11);
    const n = SITES.length * PER_SITE;
    const access = Array.from({ length: n }, () => 0.2 + rng() * 0.5);
    const clients = Array.from({ length: n }, () => new CoordinateClient({ rng }));
    for (let round = 0; round < 400; round++) {
      for (let i = 0; i < n; i++) {
        const j = rng.int(n);
        if (j === i) continue;
        const rtt = trueRtt(i, j, access) * (1 + 0.05 * rng()); // 5% jitter
        clients[i].observe(`n${j}`, rtt, clients[j].local);
      }
    }
    let relErrSum = 0;
    let pairs = 0;
    for (let i = 0; i < n; i++) {
      // From every node, the estimated RTT to each site's first node gives the true site order.
      const est = SITES.map((_, s) =>
        estimateRtt(clients[i].local, clients[s * PER_SITE + 1].local),
      );
      const truth = SITES.map((_, s) => trueRtt(i, s * PER_SITE + 1, access));
      const byEst = [...est.keys()].sort((x, y) => est[x] - est[y]);
      const byTruth = [...truth.keys()].sort((x, y) => truth[x] - truth[y]);
      // Close sites (paris/london/frankfurt are 8-13 ms apart) may swap among themselves; the
      // nearest site and the far ones must be right.
      expect(byEst[0]).toBe(byTruth[0]);
      expect(byEst.slice(3)).toEqual(byTruth.slice(3));
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const t = trueRtt(i, j, access);
        if (t < 5) continue;
        relErrSum += Math.abs(estimateRtt(clients[i].local, clients[j].local) - t) / t;
        pairs++;
      }
    }
    expect(relErrSum / pairs).toBeLessThan(0.15);
    for (const c of clients) expect(c.local.error).toBeLessThan(0.5);
  });

  it('starts at the origin with the largest error and a minimal height', () => {
    const c = newCoordinate();
    expect(c.vec).toEqual(new Array(8).fill(0));
    expect(c.error).toBe(1.5);
    expect(c.height).toBe(DEFAULT_VIVALDI_CONFIG.heightMin);
    // Two fresh coordinates are pushed apart along some direction, not stuck.
    const moved = updateCoordinate(c, newCoordinate(), 20, DEFAULT_VIVALDI_CONFIG, {
      rng: createRng(1),
    });
    expect(estimateRtt(moved, newCoordinate())).toBeGreaterThan(1);
  });

  it('validates coordinates from peers', () => {
    const ok = newCoordinate();
    expect(isValidCoordinate(ok)).toBe(true);
    expect(isValidCoordinate({ ...ok, vec: [1, 2] })).toBe(false);
    expect(isValidCoordinate({ ...ok, vec: [NaN, 0, 0, 0, 0, 0, 0, 0] })).toBe(false);
    expect(isValidCoordinate({ ...ok, vec: [1e6, 0, 0, 0, 0, 0, 0, 0] })).toBe(false);
    expect(isValidCoordinate({ ...ok, error: -1 })).toBe(false);
    expect(isValidCoordinate({ ...ok, height: Infinity })).toBe(false);
    expect(() => assertValidCoordinate({ ...ok, adjustment: NaN })).toThrow(InvalidCoordinateError);
  });

  it('the client rejects bad samples, filters outliers and keeps a bounded cache', () => {
    const c = new CoordinateClient({ maxPeers: 3, rng: createRng(2) });
    expect(c.observe('a', -1, newCoordinate())).toBe(false);
    expect(c.observe('a', 20_000, newCoordinate())).toBe(false);
    expect(c.observe('a', 10, { ...newCoordinate(), vec: [NaN] })).toBe(false);
    expect(c.stats.rejected).toBe(3);
    const remote = { ...newCoordinate(), vec: [0.01, 0, 0, 0, 0, 0, 0, 0], error: 0.2 };
    for (let i = 0; i < 50; i++) c.observe('a', 10, remote);
    const before = c.estimateRttTo('a')!;
    c.observe('a', 5000, remote); // a single outlier: the median of 3 ignores it
    expect(Math.abs(c.estimateRttTo('a')! - before)).toBeLessThan(2);
    expect(c.observe('b', 5)).toBe(true); // RTT without coordinate: only the filter is fed
    expect(c.coordinateOf('b')).toBeUndefined();
    c.setPeerCoordinate('c', remote);
    c.setPeerCoordinate('d', remote);
    expect(c.size).toBe(3);
    expect(c.coordinateOf('a')).toBeUndefined(); // least recently touched, evicted
    c.forget('d');
    expect(c.size).toBe(2);
  });
});
