// Probing, indirect probing, suspicion and Lifeguard, driven by hand (no sleeps).
import { describe, expect, it } from 'vitest';
import { suspicionTimeout } from '../../../membership/swim/index.js';
import { Harness } from './harness.js';

const dropTo = (id: string) => (e: { to: string }) => e.to === id;

/**
 * Ticks `id` at t, t + step and t + 2 step (a probe's start, indirect stage and end at the lan
 * preset's 100/200 ms, times `step / 100`), losing everything it sends.
 */
function loseRound(h: Harness, id: string, t: number, step = 100): void {
  for (const at of [t, t + step, t + 2 * step]) {
    h.tick(id, at);
    h.inflight.length = 0;
  }
}

/** Gossip from `from` saying it suspects `id` (incarnation 0). */
const suspicionOf = (id: string, from: string) => ({
  type: 'gossip' as const,
  updates: [{ kind: 'suspect' as const, id, incarnation: 0, from }],
});

/**
 * Ticks `id` each millisecond from `from` (delivering what it sends) until its round-robin probe
 * pings `target`; that ping is left in flight. Returns the time.
 */
function untilPing(h: Harness, id: string, target: string, from: number): number {
  for (let t = from; t < from + 10_000; t++) {
    h.tick(id, t);
    if (h.inflight.some((e) => e.to === target && e.msg.type === 'ping')) return t;
    h.deliver();
  }
  throw new Error(`${id} never probed ${target}`);
}

describe('SwimCore probing', () => {
  it('pings a member and gets an ack; reports the RTT and the responder coordinate', () => {
    const h = new Harness(['a', 'b']);
    const coord = { vec: [0.001, 0, 0, 0, 0, 0, 0, 0], error: 0.5, adjustment: 0, height: 1e-5 };
    h.core('b').setLocalCoordinate(coord);
    const sent = h.tick('a', 199);
    const ping = sent.find((e) => e.msg.type === 'ping');
    expect(ping?.to).toBe('b');
    h.now = 204;
    h.deliver();
    expect(h.rtts).toEqual([{ at: 'a', id: 'b', rttMs: 5 }]);
    expect(h.eventsOf('member:suspect')).toHaveLength(0);
    expect(h.core('a').stats.probes).toBe(1);
  });

  it('acks carry the coordinate to the rtt effect', () => {
    const h = new Harness(['a', 'b']);
    const coord = { vec: [0.001, 0, 0, 0, 0, 0, 0, 0], error: 0.5, adjustment: 0, height: 1e-5 };
    h.core('b').setLocalCoordinate(coord);
    h.tick('a', 199);
    const [ping] = h.inflight.splice(0);
    const fx = h.core('b').handle('a', ping.msg, 201);
    const ack = fx.find((e) => e.type === 'send');
    if (ack?.type !== 'send' || ack.msg.type !== 'ack') throw new Error('expected an ack');
    expect(ack.msg.coordinate).toEqual(coord);
    const back = h.core('a').handle('b', ack.msg, 203);
    expect(back).toContainEqual({ type: 'rtt', id: 'b', rttMs: 4, coordinate: coord });
  });

  it('after the probe timeout asks others to ping (ping-req) and accepts the relayed ack', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    a.probeSoon('b');
    const [ping] = h.tick('a', 0).filter((e) => e.msg.type === 'ping');
    expect(ping.to).toBe('b');
    h.inflight.length = 0; // the direct ping is lost
    h.tick('a', 99);
    expect(h.inflight.filter((e) => e.msg.type === 'ping-req')).toHaveLength(0);
    const sent = h.tick('a', 100);
    const reqs = sent.filter((e) => e.msg.type === 'ping-req');
    expect(reqs.map((e) => e.to)).toEqual(['c']);
    // ...and pings b directly once more, with the same seq (fallback probe)
    const again = sent.filter((e) => e.msg.type === 'ping');
    expect(again.map((e) => [e.to, (e.msg as { seq: number }).seq])).toEqual([
      ['b', (ping.msg as { seq: number }).seq],
    ]);
    expect(reqs[0].msg).toMatchObject({ type: 'ping-req', target: 'b', nack: true });
    expect((reqs[0].msg as { targetAddrs: string[] }).targetAddrs[0]).toContain('/p2p/b');
    // c pings b, b acks c, c relays the ack to a (a's own second ping to b is lost too)
    h.deliver((e) => e.from === 'a' && e.to === 'b');
    expect(a.stats.indirectProbes).toBe(1);
    h.tick('a', 200);
    expect(a.stateOf('b')).toBe('alive');
    expect(a.stats.probeFailures).toBe(0);
    expect(h.rtts).toHaveLength(0); // no RTT from an indirect ack
  });

  it('suspects after two failed rounds back to back, then declares dead after min timeout', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    const t0 = untilPing(h, 'a', 'b', 0); // in turn: the round-robin reached b
    const round = (t: number) => {
      h.deliver(dropTo('b'));
      h.tick('a', t + 100); // ping-req to c
      h.deliver(dropTo('b'));
      h.tick('c', t + 200); // c's relay nacks
      h.deliver(dropTo('b'));
      return h.tick('a', t + 200).filter((e) => e.to === 'b' && e.msg.type === 'ping');
    };
    // the first round fails: no suspicion yet, a second round starts at once
    expect(round(t0)).toHaveLength(1);
    expect(a.stats.probeRetries).toBe(1);
    expect(a.stateOf('b')).toBe('alive');
    expect(round(t0 + 200)).toHaveLength(0);
    expect(a.stats.nacksReceived).toBe(2);
    expect(a.stateOf('b')).toBe('suspect');
    expect(a.stats.probeFailures).toBe(1);
    expect(h.eventsOf('member:suspect', 'b').map((e) => e.at)).toEqual(['a']);
    expect(a.healthScore).toBe(0); // the nacks came: not our fault
    // n = 3: K = 0 (too few to confirm), timeout = min = 4 * max(1, log10 3) * 200 ms = 800 ms
    h.tick('a', t0 + 1199);
    expect(a.stateOf('b')).toBe('suspect');
    h.tick('a', t0 + 1200);
    expect(a.stateOf('b')).toBe('dead');
    const down = h.eventsOf('member:down', 'b');
    expect(down).toHaveLength(1);
    expect(down[0].event.previous).toBe('suspect');
    expect(a.stats.deathsDeclared).toBe(1);
  });

  it('a member probed out of turn (its connection closed) is suspected after one failed round', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    a.probeSoon('b');
    loseRound(h, 'a', 0);
    expect(a.stats.probeRetries).toBe(0);
    expect(a.stateOf('b')).toBe('suspect');
  });

  it('an unhealthy prober (awareness score > 0) gives even an out-of-turn probe two rounds', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    // a refutes a suspicion of itself: its score rises to 1, so its probes run twice as long
    a.handle('c', suspicionOf('a', 'c'), 0);
    h.inflight.length = 0;
    expect(a.healthScore).toBe(1);
    a.probeSoon('b');
    loseRound(h, 'a', 1, 200); // round one fails (timeouts x 2)
    expect(a.stats.probeRetries).toBe(1);
    expect(a.stateOf('b')).toBe('alive');
  });

  it('independent confirmations shorten the suspicion timeout (Lifeguard)', () => {
    const ids = ['a', 'b', 'c', 'd', 'e'];
    const h = new Harness(ids);
    const a = h.core('a');
    const suspect = (from: string, at: number) =>
      h.absorb('a', a.handle(from, suspicionOf('b', from), at));
    // n = 5: K = 2, min = 800 ms, max = 6 * 800 = 4800 ms
    suspect('c', 0);
    expect(a.stateOf('b')).toBe('suspect');
    expect(a.nextDeadline()).toBeLessThanOrEqual(4800);
    h.tick('a', 2000);
    expect(a.stateOf('b')).toBe('suspect');
    suspect('c', 2100); // the same suspector again: not a confirmation
    suspect('d', 2100); // 1st confirmation: timeout 4800 - 4000 * log 2 / log 3
    const t1 = suspicionTimeout(1, 2, 800, 4800);
    expect(t1).toBe(2276);
    h.tick('a', t1 - 1);
    expect(a.stateOf('b')).toBe('suspect');
    suspect('e', 2200); // 2nd confirmation: timeout falls to min, already past
    // a heard of the suspicion only through gossip: a last call goes to b directly, and the
    // verdict waits one more probe timeout (100 ms, stretched by a's own failed probes of b)
    const lastCall = h.tick('a', 2200);
    expect(a.stateOf('b')).toBe('suspect');
    expect(lastCall.some((e) => e.to === 'b' && e.msg.type === 'gossip')).toBe(true);
    h.inflight.length = 0; // b is gone: the notice is lost
    h.tick('a', 2200 + 100 * 9);
    expect(a.stateOf('b')).toBe('dead');
  });

  it('without confirmations the suspicion lasts max', () => {
    const h = new Harness(['a', 'b', 'c', 'd', 'e']);
    const a = h.core('a');
    a.handle('c', suspicionOf('b', 'c'), 0);
    h.tick('a', 4799);
    expect(a.stateOf('b')).toBe('suspect');
    h.tick('a', 4800); // the last call to b (see above)
    expect(a.stateOf('b')).toBe('suspect');
    h.inflight.length = 0;
    h.tick('a', 4900);
    expect(a.stateOf('b')).toBe('dead');
  });

  it('a suspected member refutes with a higher incarnation; others see it alive again', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    const b = h.core('b');
    const sus = { kind: 'suspect' as const, id: 'b', incarnation: 0, from: 'c' };
    h.absorb('a', a.handle('c', { type: 'gossip', updates: [sus] }, 0));
    h.absorb('b', b.handle('c', { type: 'gossip', updates: [sus] }, 0));
    expect(a.stateOf('b')).toBe('suspect');
    expect(b.incarnation).toBe(1);
    expect(b.healthScore).toBe(1); // refuting costs health
    expect(b.stats.refutations).toBe(1);
    // b's next gossip round carries alive(b, 1)
    h.tick('b', 250);
    h.deliver();
    expect(a.stateOf('b')).toBe('alive');
    expect(a.incarnationOf('b')).toBe(1);
    expect(h.eventsOf('member:alive', 'b').map((e) => e.at)).toContain('a');
    h.tick('a', 10_000);
    expect(a.stateOf('b')).toBe('alive');
  });

  it('buddy system: a ping to a suspected member carries the suspicion, the ack the refutation', () => {
    const h = new Harness(['a', 'b', 'c', 'd', 'e']);
    const a = h.core('a');
    a.handle('c', suspicionOf('b', 'c'), 0);
    a.probeSoon('b');
    const [ping] = h.tick('a', 1).filter((e) => e.msg.type === 'ping');
    expect(ping.to).toBe('b');
    expect(ping.msg.type === 'ping' && ping.msg.updates[0]).toEqual({
      kind: 'suspect',
      id: 'b',
      incarnation: 0,
      from: 'a',
    });
    h.deliver((e) => e.to !== 'a' && e.to !== 'b');
    expect(h.core('b').incarnation).toBe(1);
    expect(a.stateOf('b')).toBe('alive');
    expect(a.incarnationOf('b')).toBe(1);
  });

  it('probeSoon makes a member the next probe target, out of turn, without changing state', () => {
    const h = new Harness(['a', 'b', 'c', 'd', 'e', 'f']);
    const a = h.core('a');
    h.tick('a', 199);
    h.deliver();
    a.probeSoon('e');
    expect(a.stateOf('e')).toBe('alive');
    const sent = h.tick('a', 250).filter((e) => e.msg.type === 'ping');
    expect(sent.map((e) => e.to)).toEqual(['e']);
  });

  it('probes every live member once per pass, skipping dead and left ones', () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const h = new Harness(ids);
    const a = h.core('a');
    a.handle('b', { type: 'gossip', updates: [{ kind: 'left', id: 'g', incarnation: 1 }] }, 0);
    a.handle(
      'b',
      { type: 'gossip', updates: [{ kind: 'dead', id: 'f', incarnation: 0, from: 'b' }] },
      0,
    );
    const targets: string[] = [];
    for (let t = 200; t <= 200 * 8; t += 200) {
      targets.push(
        ...h
          .tick('a', t)
          .filter((e) => e.msg.type === 'ping')
          .map((e) => e.to),
      );
      h.deliver((e) => e.to === 'f' || e.to === 'g');
    }
    expect(targets.slice(0, 4).sort()).toEqual(['b', 'c', 'd', 'e']);
    expect(targets.slice(4, 8).sort()).toEqual(['b', 'c', 'd', 'e']);
  });

  it('ignores a ping meant for another member', () => {
    const h = new Harness(['a', 'b']);
    const fx = h.core('b').handle('a', { type: 'ping', seq: 1, target: 'zz', updates: [] }, 0);
    expect(fx).toHaveLength(0);
    expect(h.core('b').stats.misroutedPings).toBe(1);
  });
});

describe('Lifeguard local health awareness', () => {
  it('an ack of the first round that comes during the second ends the probe: no suspicion', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    const t0 = untilPing(h, 'a', 'b', 0);
    const ping = h.inflight.find((e) => e.to === 'b' && e.msg.type === 'ping')!;
    h.inflight.length = 0;
    h.tick('a', t0 + 100);
    h.inflight.length = 0;
    h.tick('a', t0 + 200); // round one failed (no nack either: +1), round two starts
    h.inflight.length = 0;
    expect(a.stats.probeRetries).toBe(1);
    const late = h.core('b').handle('a', ping.msg, t0 + 250);
    const ack = late.find((e) => e.type === 'send' && e.msg.type === 'ack');
    if (ack?.type !== 'send' || ack.msg.type !== 'ack') throw new Error('no ack');
    const score = a.healthScore;
    a.handle('b', ack.msg, t0 + 260);
    h.tick('a', t0 + 300); // nothing more of that probe
    expect(a.stateOf('b')).toBe('alive');
    expect(a.stats.probeFailures).toBe(0);
    expect(a.healthScore).toBe(score + 1); // a late ack: our first round was too short
    expect(a.stats.lateAcks).toBe(1);
    expect(h.rtts).toHaveLength(0); // no RTT sample from an ack of an earlier round
  });

  it('a member already suspected by others is suspected after one failed round', () => {
    const h = new Harness(['a', 'b', 'c', 'd', 'e']);
    const a = h.core('a');
    a.handle('c', suspicionOf('b', 'c'), 0);
    a.probeSoon('b');
    loseRound(h, 'a', 10);
    expect(a.stats.probeRetries).toBe(0);
    expect(a.stats.probeFailures).toBe(1);
  });

  it('a relay nacks early enough to reach the origin in time, and still relays a later ack', () => {
    const h = new Harness(['a', 'b', 'c']);
    const c = h.core('c');
    const req = (seq: number) => ({
      type: 'ping-req' as const,
      seq,
      target: 'b',
      targetAddrs: [],
      nack: true,
      updates: [],
    });
    const pingSeq = (fx: ReturnType<typeof c.tick>) => {
      const p = fx.find((e) => e.type === 'send' && e.to === 'b' && e.msg.type === 'ping');
      if (p?.type !== 'send' || p.msg.type !== 'ping') throw new Error('no ping');
      return p.msg.seq;
    };
    const nacks = (fx: ReturnType<typeof c.tick>) =>
      fx.filter((e) => e.type === 'send' && e.msg.type === 'nack');
    const seq = pingSeq(c.handle('a', req(7), 0));
    // lan: the origin leaves probeInterval - probeTimeout = 100 ms for indirect probes; nack at 60
    expect(nacks(c.tick(59))).toHaveLength(0);
    expect(nacks(c.tick(60))).toEqual([{ type: 'send', to: 'a', msg: { type: 'nack', seq: 7 } }]);
    const ack = (s: number) => ({ type: 'ack' as const, seq: s, updates: [] });
    expect(
      c.handle('b', ack(seq), 80).filter((e) => e.type === 'send' && e.to === 'a'),
    ).toMatchObject([{ msg: { type: 'ack', seq: 7 } }]);
    // once probeTimeout has passed the relay is forgotten
    const seq2 = pingSeq(c.handle('a', req(8), 100));
    expect(nacks(c.tick(160))).toHaveLength(1);
    c.tick(200);
    expect(c.handle('b', ack(seq2), 210).filter((e) => e.type === 'send' && e.to === 'a')).toEqual(
      [],
    );
  });

  it('missed nacks raise the score and stretch probe timeout and interval', () => {
    const h = new Harness(['a', 'b', 'c', 'd'], { confirmRounds: 1 });
    const a = h.core('a');
    a.probeSoon('b');
    h.tick('a', 0);
    h.inflight.length = 0;
    h.tick('a', 100); // ping-req to c and d: all lost, so no nacks either
    expect(h.inflight.filter((e) => e.msg.type === 'ping-req')).toHaveLength(2);
    h.inflight.length = 0;
    h.tick('a', 200); // fails: 2 nacks missed
    h.inflight.length = 0;
    expect(a.healthScore).toBe(2);
    expect(a.stateOf('b')).toBe('suspect');
    // The next probe (started at 200) waits 3 * probeTimeout before going indirect...
    h.tick('a', 201);
    h.inflight.length = 0;
    expect(h.tick('a', 300 + 99).filter((e) => e.msg.type === 'ping-req')).toHaveLength(0);
    expect(h.tick('a', 500).filter((e) => e.msg.type === 'ping-req').length).toBeGreaterThan(0);
    h.inflight.length = 0;
    // ...and 3 * probeInterval before concluding.
    const before = a.stats.probeFailures;
    h.tick('a', 799);
    expect(a.stats.probeFailures).toBe(before);
    h.tick('a', 800);
    expect(a.stats.probeFailures).toBe(before + 1);
  });

  it('successful probes lower the score again', () => {
    const h = new Harness(['a', 'b', 'c']);
    const a = h.core('a');
    const b = h.core('b');
    // b refutes a suspicion: +1
    b.handle('c', suspicionOf('b', 'c'), 0);
    expect(b.healthScore).toBe(1);
    h.run(1000);
    expect(b.healthScore).toBe(0);
    expect(a.healthScore).toBe(0);
  });

  it('the score is capped at awarenessMaxMultiplier - 1', () => {
    const h = new Harness(['a', 'b', 'c', 'd', 'e'], { awarenessMaxMultiplier: 3 });
    const a = h.core('a');
    for (let t = 0; t < 20_000; t += 10) {
      h.tick('a', t);
      h.inflight.length = 0; // a is cut off
    }
    expect(a.healthScore).toBe(2);
  });
});
