// Refinements that keep false suspicions short and let a healed partition converge: direct
// accusation and refutation, late acks, verdicts from members we hold dead, dead notices in acks,
// catch-up push-pull.
import { describe, expect, it } from 'vitest';
import {
  MAX_INCARNATION,
  MAX_INCARNATION_JUMP,
  SwimCore,
  type Update,
} from '../../../membership/swim/index.js';
import { createRng } from '../../sim/rng.js';
import { Harness, metaFor } from './harness.js';

const gossip = (...updates: Update[]) => ({ type: 'gossip' as const, updates });

describe('accusation and refutation', () => {
  it('a failed probe tells the suspect at once; the suspect answers its accuser directly', () => {
    const h = new Harness(['a', 'b', 'c'], { confirmRounds: 1 });
    const a = h.core('a');
    a.probeSoon('b');
    h.tick('a', 0);
    h.inflight.length = 0;
    h.tick('a', 100);
    h.inflight.length = 0; // the probe fails entirely
    const sent = h.tick('a', 200);
    const notice = sent.find((e) => e.to === 'b' && e.msg.type === 'gossip');
    expect(notice?.msg).toEqual(gossip({ kind: 'suspect', id: 'b', incarnation: 0, from: 'a' }));
    h.inflight.length = 0;
    const fx = h.absorb('b', h.core('b').handle('a', notice!.msg, 201));
    expect(fx.map((e) => [e.to, e.msg])).toContainEqual([
      'a',
      gossip({ kind: 'alive', id: 'b', incarnation: 1, meta: metaFor('b') }),
    ]);
    h.deliver();
    expect(a.stateOf('b')).toBe('alive');
  });

  it('a stale accusation (already refuted) gets our current incarnation back, rate-limited', () => {
    const h = new Harness(['a', 'b'], {}, { initialIncarnation: { b: 3 } });
    const b = h.core('b');
    const stale = gossip({ kind: 'dead', id: 'b', incarnation: 1, from: 'a' });
    const first = b.handle('a', stale, 0);
    expect(first).toEqual([
      {
        type: 'send',
        to: 'a',
        msg: gossip({ kind: 'alive', id: 'b', incarnation: 3, meta: metaFor('b') }),
      },
    ]);
    expect(b.handle('a', stale, 10)).toEqual([]);
    expect(b.incarnation).toBe(3);
  });

  it('an ack that arrives after the probe failed raises the awareness score', () => {
    const h = new Harness(['a', 'b', 'c'], { confirmRounds: 1 });
    const a = h.core('a');
    a.probeSoon('b');
    const [ping] = h.tick('a', 0).filter((e) => e.msg.type === 'ping');
    h.inflight.length = 0;
    h.tick('a', 100);
    h.deliver((e) => e.from === 'a'); // nothing a sends arrives, but the relay's nack...
    h.tick('c', 300);
    h.deliver();
    h.tick('a', 200);
    h.inflight.length = 0;
    const before = a.healthScore;
    const late = h.core('b').handle('a', ping.msg, 250);
    const ack = late.find((e) => e.type === 'send' && e.msg.type === 'ack');
    if (ack?.type !== 'send' || ack.msg.type !== 'ack') throw new Error('no ack');
    a.handle('b', ack.msg, 260);
    expect(a.stats.lateAcks).toBe(1);
    expect(a.healthScore).toBe(before + 1);
  });

  it('an ack from a member we suspect holds off our suspicion until its refutation arrives', () => {
    const h = new Harness(['a', 'b', 'c', 'd', 'e']);
    const a = h.core('a');
    a.handle('c', gossip({ kind: 'suspect', id: 'b', incarnation: 0, from: 'c' }), 0);
    // max suspicion timeout here is 4800 ms; b answers a probe at 4700 (its refutation is lost)
    a.probeSoon('b');
    h.tick('a', 4700);
    const ping = h.inflight.splice(0).find((e) => e.msg.type === 'ping')!;
    const fx = h.core('b').handle('a', ping.msg, 4701);
    const ack = fx.find((e) => e.type === 'send' && e.msg.type === 'ack');
    if (ack?.type !== 'send' || ack.msg.type !== 'ack') throw new Error('no ack');
    expect(ack.msg.updates.length).toBeGreaterThan(0); // the refutation, which we lose
    a.handle('b', { ...ack.msg, updates: [] }, 4702);
    h.tick('a', 4800);
    expect(a.stateOf('b')).toBe('suspect');
  });
});

describe('healing', () => {
  it('verdicts from a member we hold dead are ignored', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    a.handle('x', gossip({ kind: 'dead', id: 'c', incarnation: 0, from: 'x' }), 0);
    a.handle('b', gossip({ kind: 'dead', id: 'b', incarnation: 0, from: 'c' }), 0);
    a.handle('b', gossip({ kind: 'suspect', id: 'b', incarnation: 0, from: 'c' }), 0);
    expect(a.stateOf('b')).toBe('alive');
  });

  it('death verdicts from a member just back from dead count as suspicions', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    a.handle('x', gossip({ kind: 'dead', id: 'c', incarnation: 0, from: 'x' }), 0);
    a.handle('c', gossip({ kind: 'alive', id: 'c', incarnation: 1, meta: metaFor('c') }), 100);
    a.handle('c', gossip({ kind: 'dead', id: 'b', incarnation: 0, from: 'c' }), 200);
    expect(a.stateOf('b')).toBe('suspect');
    // later (after gossipToTheDeadTime) its verdicts are taken at face value again
    a.handle('c', gossip({ kind: 'dead', id: 'b', incarnation: 0, from: 'c' }), 40_000);
    expect(a.stateOf('b')).toBe('dead');
  });

  it('an ack to a member we hold dead tells it so, and it refutes', () => {
    const h = new Harness(['a', 'b']);
    const a = h.core('a');
    const b = h.core('b');
    a.handle('x', gossip({ kind: 'dead', id: 'b', incarnation: 0, from: 'x' }), 0);
    const fx = a.handle('b', { type: 'ping', seq: 9, target: 'a', updates: [] }, 10);
    const ack = fx.find((e) => e.type === 'send')!;
    expect(ack.type === 'send' && ack.msg.type === 'ack' && ack.msg.updates[0]).toEqual({
      kind: 'dead',
      id: 'b',
      incarnation: 0,
      from: 'a',
    });
    if (ack.type !== 'send') throw new Error('no ack');
    h.absorb('b', b.handle('a', ack.msg, 11));
    expect(b.incarnation).toBe(1);
    h.deliver();
    expect(a.stateOf('b')).toBe('alive');
  });

  it('after a revival, a catch-up push-pull fetches what was missed', () => {
    const h = new Harness(['b', 'c'], { pushPullInterval: 0, gossipToTheDeadTime: 0 });
    // a knows only b (say, it missed c's arrival while others held it dead)
    const a = new SwimCore({
      self: { id: 'a', meta: metaFor('a') },
      config: h.config,
      rng: createRng(5),
      now: 0,
      announce: false,
      initialMembers: [{ id: 'b', incarnation: 0, state: 'alive', meta: metaFor('b') }],
    });
    h.cores.set('a', a);
    a.handle('x', gossip({ kind: 'dead', id: 'a', incarnation: 0, from: 'x' }), 0); // refutes
    expect(a.incarnation).toBe(1);
    h.run(900, (e) => e.msg.type === 'gossip');
    expect(a.stateOf('c')).toBeUndefined();
    h.run(4000, (e) => e.msg.type === 'gossip');
    expect(a.stateOf('c')).toBe('alive');
    expect(a.stats.pushPulls).toBe(1);
  });
});

describe('forged incarnations', () => {
  // A key holder gossiped `left` (or `dead`) about a live member at the top incarnation: every
  // member took it, and the member could not refute above the top, so it stayed out for good.
  const TOP = MAX_INCARNATION;

  it('a verdict far above what we know of a member is dropped, not applied', () => {
    const h = new Harness(['a', 'b', 'c', 'm']);
    const a = h.core('a');
    for (const kind of ['left', 'dead'] as const) {
      const forged: Update =
        kind === 'left'
          ? { kind, id: 'b', incarnation: TOP }
          : { kind, id: 'b', incarnation: TOP, from: 'm' };
      expect(a.handle('m', gossip(forged), 0)).toEqual([]);
      expect(a.stateOf('b')).toBe('alive');
    }
    a.handle('m', gossip({ kind: 'suspect', id: 'b', incarnation: TOP, from: 'm' }), 0);
    expect(a.stateOf('b')).toBe('alive');
    // nor an alive with someone else's addresses, nor a push-pull entry
    a.handle('m', gossip({ kind: 'alive', id: 'c', incarnation: TOP, meta: metaFor('m') }), 0);
    expect(a.member('c')?.meta).toEqual(metaFor('c'));
    a.handle(
      'm',
      {
        type: 'push-pull',
        seq: 1,
        join: false,
        members: [{ id: 'c', incarnation: TOP, state: 'left', meta: metaFor('c') }],
      },
      0,
    );
    expect(a.stateOf('c')).toBe('alive');
    expect(a.stats.implausibleUpdates).toBe(5);
  });

  it('a climb within the ceiling is news we missed; the member refutes as usual', () => {
    const h = new Harness(['a', 'b', 'm']);
    const a = h.core('a');
    const b = h.core('b');
    const forged = gossip({ kind: 'left', id: 'b', incarnation: 1000 });
    a.handle('m', forged, 0);
    expect(a.stateOf('b')).toBe('left');
    // b hears it too and refutes above it; a takes b back
    h.absorb('b', b.handle('m', forged, 0));
    expect(b.incarnation).toBe(1001);
    h.deliver();
    a.handle('b', gossip({ kind: 'alive', id: 'b', incarnation: 1001, meta: metaFor('b') }), 2);
    expect(a.stateOf('b')).toBe('alive');
    expect(a.stats.implausibleUpdates).toBe(0);
  });

  it('the ceiling holds across the updates of one message, across messages, and for the member itself', () => {
    const h = new Harness(['a', 'b', 'm']);
    const a = h.core('a');
    const J = MAX_INCARNATION_JUMP;
    const alive = (incarnation: number): Update => ({
      kind: 'alive',
      id: 'b',
      incarnation,
      meta: metaFor('m'),
    });
    // stepping up inside one message: the first step only
    a.handle('m', gossip(alive(J), alive(2 * J), alive(3 * J)), 0);
    expect(a.member('b')?.incarnation).toBe(J);
    // and in the next message, even in b's own name (b may have been made to refute a forgery)
    a.handle('b', gossip(alive(J + 1000)), 10);
    a.handle('m', gossip({ kind: 'left', id: 'b', incarnation: J + 1000 }), 20);
    expect(a.stateOf('b')).toBe('alive');
    expect(a.stats.implausibleUpdates).toBe(4);
    // the ceiling grows by MAX_INCARNATION_RATE a second: 100 s later, 2,000 more
    a.handle('m', gossip({ kind: 'left', id: 'b', incarnation: J + 1000 }), 100_000);
    expect(a.stateOf('b')).toBe('left');
  });

  it('a verdict about ourselves is refuted above it, unless it is near the top', () => {
    const h = new Harness(['a', 'b']);
    const a = h.core('a');
    // far above us but below the top: we may be behind (a restart that lost incarnations)
    a.handle(
      'b',
      gossip({ kind: 'dead', id: 'a', incarnation: 5 * MAX_INCARNATION_JUMP, from: 'b' }),
      1,
    );
    expect(a.incarnation).toBe(5 * MAX_INCARNATION_JUMP + 1);
    // near the top: a forgery; refuting above it would leave us at the top, unable to refute
    a.handle('b', gossip({ kind: 'left', id: 'a', incarnation: MAX_INCARNATION - 5 }), 2);
    expect(a.incarnation).toBe(5 * MAX_INCARNATION_JUMP + 2);
    expect(a.stats.implausibleUpdates).toBe(1);
  });
});
