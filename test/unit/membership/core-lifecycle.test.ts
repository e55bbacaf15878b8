// Join, leave, rejoin, push-pull, reconnect, metadata, dissemination limits and reaping.
import { describe, expect, it } from 'vitest';
import { InvalidMetaError } from '../../../membership/errors.js';
import {
  LEAVE_DIRECT_MAX,
  type SwimMessage,
  SwimCore,
  resolveSwimConfig,
  retransmitLimit,
} from '../../../membership/swim/index.js';
import { createRng } from '../../sim/rng.js';
import { Harness, metaFor } from './harness.js';

function lone(id: string, now = 0, initialIncarnation?: number): SwimCore {
  return new SwimCore({
    self: { id, meta: metaFor(id) },
    config: resolveSwimConfig('lan'),
    rng: createRng(id.charCodeAt(0)),
    now,
    initialIncarnation,
  });
}

describe('join and push-pull', () => {
  it('a joiner and its seed learn each other and the seed’s members', () => {
    const h = new Harness(['a', 'c']);
    const b = lone('b');
    h.cores.set('b', b);
    h.absorb('b', b.join(['a', 'b'], 0));
    expect(h.inflight.map((e) => [e.to, e.msg.type])).toEqual([['a', 'push-pull']]);
    expect(b.joined).toBe(false);
    h.deliver();
    expect(b.joined).toBe(true);
    expect(b.stateOf('a')).toBe('alive');
    expect(b.stateOf('c')).toBe('alive');
    expect(h.core('a').stateOf('b')).toBe('alive');
    expect(h.eventsOf('member:up', 'b').map((e) => e.at)).toEqual(['a']);
    expect(h.eventsOf('member:up').filter((e) => e.at === 'b').length).toBe(2);
    // The seed spreads the joiner's alive; c learns it by gossip.
    h.run(1000);
    expect(h.core('c').stateOf('b')).toBe('alive');
    expect(b.counts()).toEqual({ alive: 3, suspect: 0, dead: 0, left: 0 });
  });

  it('periodic push-pull repairs a missed update', () => {
    const h = new Harness(['a', 'b'], { pushPullInterval: 1000 });
    const a = h.core('a');
    // b learns of x from a push-pull with some q: third-party news from a push-pull is not
    // gossiped on, so a can only learn it from a push-pull of its own.
    h.core('b').handle(
      'q',
      {
        type: 'push-pull-reply',
        seq: 1,
        members: [{ id: 'x', incarnation: 3, state: 'alive', meta: metaFor('x') }],
      },
      0,
    );
    expect(h.core('b').stateOf('x')).toBe('alive');
    expect(h.core('b').pendingBroadcasts).toBe(0);
    let learnt = -1;
    for (let t = 0; t <= 2500 && learnt < 0; t += 10) {
      h.run(t);
      if (a.stateOf('x') !== undefined) learnt = t;
    }
    expect(learnt).toBeGreaterThanOrEqual(0);
    expect(a.incarnationOf('x')).toBe(3); // (x does not exist: it is suspected soon after)
    expect(a.stats.pushPulls + h.core('b').stats.pushPulls).toBeGreaterThan(0);
  });

  it('push-pull from a peer with stale dead verdicts does not make us suspect anyone else', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    const stale: SwimMessage = {
      type: 'push-pull',
      seq: 1,
      join: false,
      members: [
        { id: 'b', incarnation: 0, state: 'alive', meta: metaFor('b') },
        { id: 'c', incarnation: 0, state: 'dead', meta: metaFor('c') },
        { id: 'a', incarnation: 0, state: 'dead', meta: metaFor('a') },
      ],
    };
    const fx = a.handle('b', stale, 0);
    expect(a.stateOf('c')).toBe('alive');
    expect(a.incarnation).toBe(1); // but we refute our own death
    const reply = fx.find((e) => e.type === 'send');
    expect(reply?.type === 'send' && reply.msg.type).toBe('push-pull-reply');
    const self = (
      reply as { msg: { members: Array<{ id: string; incarnation: number }> } }
    ).msg.members.find((m) => m.id === 'a');
    expect(self?.incarnation).toBe(1); // the reply already carries the refutation
  });
});

describe('leave and rejoin', () => {
  it('a member that leaves is `left` everywhere, not dead, and is not probed', () => {
    const h = new Harness(['a', 'b', 'c', 'd']);
    const b = h.core('b');
    h.absorb('b', b.leave(100));
    expect(b.left).toBe(true);
    expect(b.stateOf('b')).toBe('left');
    h.run(2000);
    for (const id of ['a', 'c', 'd']) expect(h.core(id).stateOf('b')).toBe('left');
    expect(h.eventsOf('member:left', 'b')).toHaveLength(3);
    expect(h.eventsOf('member:down', 'b')).toHaveLength(0);
    expect(b.pendingBroadcasts).toBe(0);
    // Nobody probes b any more, and b probes nobody.
    h.inflight.length = 0;
    const pings: string[] = [];
    for (let t = 2000; t < 4000; t += 10) {
      h.tickAll(t);
      for (const e of h.inflight) if (e.msg.type === 'ping') pings.push(`${e.from}->${e.to}`);
      h.deliver();
    }
    expect(pings.filter((p) => p.includes('b'))).toEqual([]);
  });

  it('a leaving member tells every live member directly, up to LEAVE_DIRECT_MAX', () => {
    /** Members b's leave() sends its `left` to in a message carrying only that. */
    const direct = (h: Harness) =>
      h.inflight
        .filter(
          (e) =>
            e.from === 'b' &&
            e.msg.type === 'gossip' &&
            e.msg.updates.length === 1 &&
            e.msg.updates[0].kind === 'left' &&
            e.msg.updates[0].id === 'b',
        )
        .map((e) => e.to);
    const small = new Harness(['a', 'b', 'c', 'd', 'e', 'f', 'g']);
    small.inflight.length = 0;
    small.absorb('b', small.core('b').leave(100));
    // before any gossip round has run anywhere: each of the 6 others, once
    expect(direct(small).sort()).toEqual(['a', 'c', 'd', 'e', 'f', 'g']);
    small.deliver();
    for (const id of ['a', 'c', 'd', 'e', 'f', 'g'])
      expect(small.core(id).stateOf('b')).toBe('left');

    const ids = Array.from({ length: LEAVE_DIRECT_MAX + 20 }, (_, i) => `m${i}`);
    ids[1] = 'b';
    const big = new Harness(ids);
    big.inflight.length = 0;
    big.absorb('b', big.core('b').leave(100));
    const told = direct(big);
    expect(told).toHaveLength(LEAVE_DIRECT_MAX);
    expect(new Set(told).size).toBe(LEAVE_DIRECT_MAX);
    expect(told).not.toContain('b');
  });

  it('a left member that joins again comes back with a higher incarnation', () => {
    const h = new Harness(['a', 'b']);
    const b = h.core('b');
    h.absorb('b', b.leave(0));
    h.run(500);
    expect(h.core('a').stateOf('b')).toBe('left');
    h.absorb('b', b.join(['a'], 600));
    h.deliver();
    expect(b.incarnation).toBe(2);
    expect(h.core('a').stateOf('b')).toBe('alive');
    expect(h.eventsOf('member:up', 'b').length).toBe(1);
  });

  it('a restarted member with a persisted incarnation rejoins at once', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    a.handle(
      'c',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'b', incarnation: 4, from: 'c' }] },
      0,
    );
    expect(a.stateOf('b')).toBe('dead');
    const b2 = lone('b', 1000, 5);
    h.cores.set('b', b2);
    h.absorb('b', b2.join(['a'], 1000));
    h.now = 1000;
    h.deliver();
    expect(a.stateOf('b')).toBe('alive');
    expect(a.incarnationOf('b')).toBe(5);
    expect(b2.incarnation).toBe(5);
    expect(h.eventsOf('member:up', 'b').map((e) => e.event.previous)).toEqual(['dead']);
  });

  it('a restarted member without its incarnation refutes the verdict it learns of', () => {
    const h = new Harness(['a', 'c']);
    const a = h.core('a');
    a.handle(
      'c',
      { type: 'gossip', updates: [{ kind: 'alive', id: 'b', incarnation: 7, meta: metaFor('b') }] },
      0,
    );
    a.handle(
      'c',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'b', incarnation: 7, from: 'c' }] },
      0,
    );
    const b2 = lone('b', 1000);
    h.cores.set('b', b2);
    h.absorb('b', b2.join(['a'], 1000));
    h.now = 1000;
    h.deliver();
    expect(b2.incarnation).toBe(8); // dead at 7 >= 0: refute with 8
    h.run(2000);
    expect(a.stateOf('b')).toBe('alive');
    expect(a.incarnationOf('b')).toBe(8);
  });

  it('stale verdicts with a lower incarnation are ignored', () => {
    const h = new Harness(['a', 'b'], {}, { initialIncarnation: { a: 5 } });
    const a = h.core('a');
    a.handle(
      'b',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'a', incarnation: 4, from: 'b' }] },
      0,
    );
    a.handle(
      'b',
      { type: 'gossip', updates: [{ kind: 'suspect', id: 'a', incarnation: 4, from: 'b' }] },
      0,
    );
    expect(a.incarnation).toBe(5);
    a.handle('b', { type: 'gossip', updates: [{ kind: 'left', id: 'a', incarnation: 5 }] }, 0);
    expect(a.incarnation).toBe(6);
  });

  it('left is final at the same incarnation; only a higher alive brings the member back', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    const g = (u: object) => a.handle('c', { type: 'gossip', updates: [u as never] }, 0);
    g({ kind: 'left', id: 'b', incarnation: 1 });
    g({ kind: 'alive', id: 'b', incarnation: 1, meta: metaFor('b') });
    g({ kind: 'dead', id: 'b', incarnation: 1, from: 'c' });
    expect(a.stateOf('b')).toBe('left');
    g({ kind: 'alive', id: 'b', incarnation: 2, meta: metaFor('b') });
    expect(a.stateOf('b')).toBe('alive');
  });
});

describe('reconnect', () => {
  it('after a partition, both sides find each other through a dead member', () => {
    // No gossip to the dead: only a reconnect can bring them together.
    const h = new Harness(['a', 'b'], { reconnectInterval: 1000, gossipToTheDeadTime: 0 });
    const a = h.core('a');
    const b = h.core('b');
    a.handle(
      'x',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'b', incarnation: 0, from: 'x' }] },
      0,
    );
    b.handle(
      'x',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'a', incarnation: 0, from: 'x' }] },
      0,
    );
    h.events.length = 0;
    h.run(5000);
    expect(a.stateOf('b')).toBe('alive');
    expect(b.stateOf('a')).toBe('alive');
    expect(a.stats.reconnectAttempts + b.stats.reconnectAttempts).toBeGreaterThan(0);
    expect(
      h
        .eventsOf('member:up')
        .map((e) => e.at)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('does not reconnect to left members or to dead ones past reconnectTimeout', () => {
    const h = new Harness(['a', 'b', 'c'], { reconnectInterval: 100, reconnectTimeout: 1000 });
    const a = h.core('a');
    a.handle('x', { type: 'gossip', updates: [{ kind: 'left', id: 'b', incarnation: 1 }] }, 0);
    a.handle(
      'x',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'c', incarnation: 0, from: 'x' }] },
      0,
    );
    const to: string[] = [];
    for (let t = 1100; t < 3000; t += 50) {
      for (const e of h.tick('a', t)) if (e.msg.type === 'push-pull') to.push(e.to);
      h.inflight.length = 0;
    }
    expect(to).toEqual([]);
  });
});

describe('metadata, dissemination and reaping', () => {
  it('updateMeta bumps the incarnation and spreads member:update', () => {
    const h = new Harness(['a', 'b', 'c']);
    h.core('a').updateMeta(metaFor('a', { tags: { role: 'storage' } }), 0);
    expect(h.core('a').incarnation).toBe(1);
    h.run(1000);
    const ups = h.eventsOf('member:update', 'a');
    expect(ups.map((e) => e.at).sort()).toEqual(['b', 'c']);
    expect(ups[0].event.member.meta.tags).toEqual({ role: 'storage' });
  });

  it('updateMeta rejects metadata over the limits', () => {
    const a = lone('a');
    expect(() =>
      a.updateMeta(metaFor('a', { tags: { big: 'x'.repeat(1024), b2: 'y'.repeat(1024) } }), 0),
    ).toThrow(InvalidMetaError);
    expect(() => a.updateMeta(metaFor('a', { name: '' }), 0)).toThrow(/name/);
    expect(a.incarnation).toBe(0);
  });

  it('sends each update at most retransmitMult * ceil(log10(n + 1)) times', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const h = new Harness(ids);
    const a = h.core('a');
    a.updateMeta(metaFor('a', { tags: { v: '2' } }), 0);
    let copies = 0;
    for (let t = 0; t < 10_000; t += 10) {
      for (const e of h.tick('a', t)) {
        const ups = 'updates' in e.msg ? e.msg.updates : [];
        copies += ups.filter((u) => u.id === 'a' && u.incarnation === 1).length;
      }
      h.deliver((e) => e.from === 'a' && e.msg.type === 'gossip'); // the others stay quiet
    }
    expect(copies).toBe(retransmitLimit(h.config, 10)); // 4 * ceil(log10 11) = 8
    expect(a.pendingBroadcasts).toBe(0);
  });

  it('a new load score alone rides on pings and acks: no gossip round, yet everyone learns it', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const h = new Harness(ids);
    h.run(1000);
    const before = h.sentOfType('gossip');
    h.core('a').updateMeta(metaFor('a', { load: 0.42 }), h.now);
    expect(h.core('a').pendingBroadcasts).toBe(0); // nothing for leave() to wait for
    h.run(h.now + 3000);
    expect(h.sentOfType('gossip')).toBe(before);
    for (const id of ids.slice(1)) expect(h.core(id).member('a')?.meta.load).toBe(0.42);
    // a tag is news: it is gossiped
    h.core('a').updateMeta(metaFor('a', { load: 0.42, tags: { role: 'edge' } }), h.now);
    expect(h.core('a').pendingBroadcasts).toBe(1);
    h.run(h.now + 1000);
    expect(h.sentOfType('gossip')).toBeGreaterThan(before);
  });

  it('a newer update about a member replaces the queued older one', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    a.handle(
      'c',
      { type: 'gossip', updates: [{ kind: 'suspect', id: 'b', incarnation: 0, from: 'c' }] },
      0,
    );
    a.handle(
      'b',
      { type: 'gossip', updates: [{ kind: 'alive', id: 'b', incarnation: 1, meta: metaFor('b') }] },
      0,
    );
    const sent = h.tick('a', 300).filter((e) => e.msg.type === 'gossip');
    const about = sent
      .flatMap((e) => (e.msg.type === 'gossip' ? e.msg.updates : []))
      .filter((u) => u.id === 'b');
    expect(new Set(about.map((u) => u.kind))).toEqual(new Set(['alive']));
  });

  it('reaps dead members after reconnectTimeout and left ones after tombstoneTimeout', () => {
    const h = new Harness(['a', 'b', 'c'], { reconnectTimeout: 5000, tombstoneTimeout: 2000 });
    const a = h.core('a');
    a.handle(
      'x',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'b', incarnation: 0, from: 'x' }] },
      0,
    );
    a.handle('x', { type: 'gossip', updates: [{ kind: 'left', id: 'c', incarnation: 1 }] }, 0);
    h.tick('a', 1900);
    expect(a.counts()).toEqual({ alive: 1, suspect: 0, dead: 1, left: 1 });
    h.tick('a', 3000);
    expect(a.stateOf('c')).toBeUndefined();
    expect(a.stateOf('b')).toBe('dead');
    h.tick('a', 6000);
    expect(a.stateOf('b')).toBeUndefined();
    expect(
      h
        .eventsOf('member:reap')
        .map((e) => e.event.member.id)
        .sort(),
    ).toEqual(['b', 'c']);
    expect(a.members().map((m) => m.id)).toEqual(['a']);
  });

  it('never emits events about itself', () => {
    const h = new Harness(['a', 'b', 'c']);
    h.core('a').handle(
      'b',
      { type: 'gossip', updates: [{ kind: 'suspect', id: 'a', incarnation: 0, from: 'b' }] },
      0,
    );
    h.core('a').updateMeta(metaFor('a', { load: 3 }), 0);
    h.run(3000);
    expect(h.events.filter((e) => e.at === e.event.member.id)).toEqual([]);
  });

  it('nextDeadline tells when tick has work; the clock never runs backwards', () => {
    const a = lone('a', 1000);
    const d = a.nextDeadline();
    expect(d).toBeGreaterThanOrEqual(1000);
    expect(Number.isFinite(d)).toBe(true);
    a.tick(d);
    expect(a.nextDeadline()).toBeGreaterThan(d);
    expect(() => a.tick(0)).not.toThrow();
  });

  it('an idle core wakes for its probes, not for empty gossip rounds; queued news goes out at once, then one round per interval', () => {
    // 10 members: an update is sent 8 times (retransmitLimit), so it takes more than one round
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    const h = new Harness(ids);
    const cfg = h.config;
    const gossipAt: number[] = [];
    const wakeups = new Map(ids.map((id) => [id, 0]));
    // event-driven, as the runtime is: each core is ticked only at its own deadline
    const runUntil = (until: number) => {
      for (;;) {
        // a deadline in the past fires now (the runtime's timer waits max(0, deadline - now))
        const t = Math.max(h.now, Math.min(...ids.map((id) => h.core(id).nextDeadline())));
        if (t > until) break;
        h.now = t;
        for (const id of ids) {
          if (Math.max(h.now, h.core(id).nextDeadline()) > t) continue;
          wakeups.set(id, wakeups.get(id)! + 1);
          for (const e of h.tick(id, t))
            if (id === 'a' && e.msg.type === 'gossip' && gossipAt.at(-1) !== t) gossipAt.push(t);
        }
        h.deliver(); // instant answers: every probe ends with its ack
      }
      h.now = until;
    };
    runUntil(2_000);
    for (const id of ids) wakeups.set(id, 0);
    runUntil(12_000);
    // 5 probes a second and a reconnect round every 2 s; with a wakeup per gossip slot it was 10.5
    for (const id of ids) expect(wakeups.get(id)! / 10).toBeLessThanOrEqual(6);
    expect(gossipAt).toEqual([]);
    // news (a tag change is gossiped; a load score alone only rides on pings and acks)
    const at = 12_345;
    h.now = at;
    h.absorb('a', h.core('a').updateMeta(metaFor('a', { tags: { role: 'db' } }), at));
    runUntil(15_000);
    expect(gossipAt.length).toBeGreaterThanOrEqual(2);
    expect(gossipAt[0]).toBe(at);
    // then the rounds keep their schedule: the next slot after now, one interval apart
    expect(gossipAt[1] - gossipAt[0]).toBeGreaterThan(0);
    expect(gossipAt[1] - gossipAt[0]).toBeLessThanOrEqual(cfg.gossipInterval);
    for (let i = 2; i < gossipAt.length; i++)
      expect(gossipAt[i] - gossipAt[i - 1]).toBeCloseTo(cfg.gossipInterval, 6);
    expect(h.core('d').member('a')?.meta.tags).toEqual({ role: 'db' });
  });
});
