// The piece scheduler: rarest first, a byte window per peer, no chunk asked of two peers at once,
// failures and departures put requests back, and a spared peer (the origin across the WAN) is
// asked only for what nobody else has.
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../../edge-sites/images/bitfield.js';
import { PieceScheduler, REBUILD_EVERY_MS } from '../../../edge-sites/images/scheduler.js';
import { createRng } from '../../sim/rng.js';

const KiB = 1024;

function bits(size: number, indexes: Iterable<number>): Bitfield {
  const b = new Bitfield(size);
  for (const i of indexes) b.set(i);
  return b;
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, k) => from + k);

/** A scheduler over n chunks of 64 KiB, with a hand-driven clock and a fixed RNG. */
function make(n: number, have: Iterable<number> = []) {
  const clock = { t: 0 };
  const s = new PieceScheduler(
    new Array<number>(n).fill(64 * KiB),
    bits(n, have),
    () => 0.25,
    () => clock.t,
  );
  return { s, clock };
}

describe('PieceScheduler', () => {
  it('asks first for the chunks the fewest peers hold, and never for chunks it has', () => {
    const { s } = make(8, [0]);
    s.addPeer('a', bits(8, range(8)));
    s.addPeer('b', bits(8, range(4))); // 0..3 at both, 4..7 only at a
    const fromA = s.next('a', 4 * 64 * KiB);
    expect(fromA.sort()).toEqual([4, 5, 6, 7]);
    expect(s.next('b', 4 * 64 * KiB).sort()).toEqual([1, 2, 3]);
  });

  it('keeps each peer under its byte window and refills only once half of it drained', () => {
    const { s } = make(20);
    s.addPeer('a', bits(20, range(20)));
    const first = s.next('a', 4 * 64 * KiB);
    expect(first).toHaveLength(4);
    s.received('a', first[0]);
    expect(s.next('a', 4 * 64 * KiB)).toEqual([]); // 3 of 4 still in flight
    s.received('a', first[1]);
    expect(s.next('a', 4 * 64 * KiB)).toHaveLength(2);
    expect(s.peer('a')!.inflightBytes).toBe(4 * 64 * KiB);
  });

  it('does not ask two peers for one chunk; a failure or a departure frees it for another', () => {
    const { s } = make(2);
    s.addPeer('a', bits(2, [0, 1]));
    s.addPeer('b', bits(2, [0, 1]));
    expect(s.next('a', 64 * KiB)).toHaveLength(1);
    const toB = s.next('b', 1024 * KiB);
    expect(toB).toHaveLength(1);
    s.failed('b', toB[0]);
    s.removePeer('a');
    expect(s.next('b', 1024 * KiB).sort()).toEqual([0, 1]);
    s.received('b', 0);
    s.received('b', 1);
    expect(s.complete).toBe(true);
  });

  it('asks a spared peer only for chunks no other peer holds', () => {
    const { s, clock } = make(6);
    s.addPeer('origin', bits(6, range(6)), { spared: true });
    s.addPeer('p', bits(6, [0, 1, 2]));
    expect(s.next('origin', 1024 * KiB).sort()).toEqual([3, 4, 5]);
    expect(s.next('p', 1024 * KiB).sort()).toEqual([0, 1, 2]);
    // p got 3 too, and is gone before serving anything: the origin is asked for all of 0..3
    s.failed('origin', 3);
    s.peerHas('p', [3]);
    clock.t += REBUILD_EVERY_MS;
    expect(s.next('origin', 1024 * KiB)).toEqual([]);
    s.removePeer('p');
    expect(s.next('origin', 1024 * KiB).sort()).toEqual([0, 1, 2, 3]);
  });

  it('a peer whose scan found nothing is asked for what it announces later, and again after a failure', () => {
    const { s } = make(8);
    s.addPeer('q', bits(8, range(8)));
    s.addPeer('p', bits(8, []));
    expect(s.next('q', 2 * 64 * KiB)).toHaveLength(2); // q's window is full
    expect(s.next('p', 4 * 64 * KiB)).toEqual([]); // p holds nothing: its scan went to the end
    const asked = new Set(s.peer('q')!.inflight);
    const free = range(8).filter((i) => !asked.has(i));
    s.peerHas('p', [free[0], free[1]]);
    expect(s.next('p', 4 * 64 * KiB).sort()).toEqual([free[0], free[1]].sort());
    // p gets every chunk; q's requests fail: p is asked for them though its scan had passed them
    s.peerHas('p', range(8));
    for (const i of asked) s.failed('q', i);
    expect(s.next('p', 8 * 64 * KiB).sort()).toEqual(
      range(8).filter((i) => i !== free[0] && i !== free[1]),
    );
  });

  it('a connected peer made spared is asked only for what no unspared peer holds, and back', () => {
    // a site-mate's whole copy became known after the WAN source connected
    const { s } = make(6);
    s.addPeer('wan', bits(6, range(6)));
    s.addPeer('mate', bits(6, [0, 1, 2, 3]));
    s.setSpared('wan', true);
    expect(s.unspared()).toBe(1);
    expect(s.next('wan', 1024 * KiB).sort()).toEqual([4, 5]);
    expect(s.next('mate', 1024 * KiB).sort()).toEqual([0, 1, 2, 3]);
    // and the other way: no longer spared, it is asked for what the site-mate holds too
    const { s: t } = make(6);
    t.addPeer('wan', bits(6, range(6)), { spared: true });
    t.addPeer('mate', bits(6, [0, 1, 2, 3]));
    t.setSpared('wan', false);
    expect(t.unspared()).toBe(2);
    expect(t.next('wan', 1024 * KiB).sort()).toEqual(range(6));
  });

  it("counts the unspared peers (a puller splits a spared peer's window with them)", () => {
    const { s } = make(4);
    s.addPeer('origin', bits(4, range(4)), { spared: true });
    expect(s.unspared()).toBe(0);
    s.addPeer('p', bits(4, []));
    s.addPeer('q', bits(4, [1]));
    expect(s.unspared()).toBe(2);
    s.removePeer('p');
    expect(s.unspared()).toBe(1);
  });

  it('a peer that answers "miss" stops counting as a holder: the spared peer is asked instead', () => {
    const { s } = make(2);
    s.addPeer('origin', bits(2, [0, 1]), { spared: true });
    s.addPeer('p', bits(2, [0, 1]));
    expect(s.next('origin', 1024 * KiB)).toEqual([]);
    expect(s.next('p', 1024 * KiB).sort()).toEqual([0, 1]);
    s.missing('p', 1); // p found its copy of 1 corrupt
    s.received('p', 0);
    expect(s.next('p', 1024 * KiB)).toEqual([]); // not asked again
    expect(s.next('origin', 1024 * KiB)).toEqual([1]);
    s.peerHas('p', [1]); // p got it back: it is a holder again
    expect(s.peer('p')!.bits.has(1)).toBe(true);
  });

  it('asks a spared peer for urgent chunks even when others hold them', () => {
    const { s } = make(4);
    s.addPeer('origin', bits(4, range(4)), { spared: true });
    s.addPeer('p', bits(4, range(4)));
    expect(s.next('origin', 1024 * KiB)).toEqual([]);
    s.urgent([2]);
    expect(s.next('origin', 1024 * KiB)).toEqual([2]);
  });

  it('reports chunks no connected peer holds', () => {
    const { s } = make(4, [0]);
    s.addPeer('a', bits(4, [1]));
    expect(s.unavailable()).toBe(2);
    s.lost(0);
    expect(s.unavailable()).toBe(3);
  });

  // Proves the shuffle within a rarity class: pullers with different RNGs ask the same holders for
  // different chunks among equally rare ones (so a new image spreads from its first holder at
  // once instead of every puller taking the same first chunks), while rarer chunks still come
  // first whatever the RNG.
  it('breaks ties in rarity at random: pullers with different RNGs start on different chunks', () => {
    const n = 64;
    const rare = range(32, 32); // held by a only; 0..31 are held by a and b
    const firsts: number[][] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const s = new PieceScheduler(
        new Array<number>(n).fill(64 * KiB),
        bits(n, []),
        createRng(seed),
      );
      s.addPeer('a', bits(n, range(n)));
      s.addPeer('b', bits(n, range(32)));
      const first = s.next('a', 4 * 64 * KiB);
      expect(first).toHaveLength(4);
      // rarest first holds whatever the RNG: every first pick is one only a holds
      for (const i of first) expect(rare).toContain(i);
      firsts.push(first);
      // the rest of the order is still rare chunks, then common ones, each exactly once
      const rest = s.next('a', n * 64 * KiB);
      expect([...first, ...rest].slice(0, 32).sort((x, y) => x - y)).toEqual(rare);
      expect([...first, ...rest].slice(32).sort((x, y) => x - y)).toEqual(range(32));
    }
    // the 8 pullers did not all pick the same chunks, nor the lowest indexes: together their first
    // requests cover many of the 32 equally rare chunks (8 identical picks would cover 4)
    const distinct = new Set(firsts.flat());
    expect(distinct.size).toBeGreaterThanOrEqual(16);
    expect(new Set(firsts.map((f) => f.join(','))).size).toBe(firsts.length);
  });
});
