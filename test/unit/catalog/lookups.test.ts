// DHT lookups of unknown names are shared per name, capped, and a miss is remembered for a while.
import { describe, expect, it } from 'vitest';
import {
  CATALOG_DHT_MAX_LOOKUPS,
  CATALOG_DHT_MISS_TTL_MS,
  NameLookups,
} from '../../../membership/catalog/lookups.js';

function setup() {
  const known = new Set<string>();
  const calls: string[] = [];
  const pending = new Map<string, () => void>();
  let now = 1_000_000;
  const lookups = new NameLookups({
    knows: (n) => known.has(n),
    lookup: (n) => {
      calls.push(n);
      return new Promise<void>((resolve) => pending.set(n, resolve));
    },
    now: () => now,
  });
  /** Ends the lookup of `n`, having found it or not. */
  const finish = async (n: string, found: boolean) => {
    if (found) known.add(n);
    pending.get(n)!();
    pending.delete(n);
    await new Promise((r) => setImmediate(r));
  };
  return { lookups, known, calls, finish, advance: (ms: number) => (now += ms) };
}

describe('NameLookups', () => {
  it('looks up a known name never, and an unknown one once for all who ask at the same time', async () => {
    const { lookups, known, calls, finish } = setup();
    known.add('web');
    await lookups.find('web');
    const waiters = [lookups.find('rare'), lookups.find('rare'), lookups.find('rare')];
    expect(calls).toEqual(['rare']);
    await finish('rare', true);
    await Promise.all(waiters);
    await lookups.find('rare'); // known now
    expect(calls).toEqual(['rare']);
  });

  it('remembers a miss for CATALOG_DHT_MISS_TTL_MS', async () => {
    const { lookups, calls, finish, advance } = setup();
    const p = lookups.find('nope');
    await finish('nope', false);
    await p;
    await lookups.find('nope');
    expect(calls).toEqual(['nope']);
    advance(CATALOG_DHT_MISS_TTL_MS + 1);
    void lookups.find('nope');
    expect(calls).toEqual(['nope', 'nope']);
  });

  it(`runs at most ${CATALOG_DHT_MAX_LOOKUPS} lookups at once; more names are answered as they are`, async () => {
    const { lookups, calls, finish } = setup();
    const names = Array.from({ length: CATALOG_DHT_MAX_LOOKUPS + 2 }, (_, i) => `n${i}`);
    const ps = names.map((n) => lookups.find(n));
    expect(calls).toEqual(names.slice(0, CATALOG_DHT_MAX_LOOKUPS));
    expect(lookups.running).toBe(CATALOG_DHT_MAX_LOOKUPS);
    // the ones over the cap resolved at once
    await Promise.all(ps.slice(CATALOG_DHT_MAX_LOOKUPS));
    await finish('n0', false);
    void lookups.find('late');
    expect(calls.at(-1)).toBe('late');
  });

  it("a caller's signal ends its wait, not the lookup others wait on", async () => {
    const { lookups, calls, finish } = setup();
    const ac = new AbortController();
    let mineDone = false;
    let otherDone = false;
    const mine = lookups.find('x', ac.signal).then(() => (mineDone = true));
    const other = lookups.find('x').then(() => (otherDone = true));
    ac.abort();
    await mine;
    expect(mineDone).toBe(true);
    expect(otherDone).toBe(false);
    expect(lookups.running).toBe(1);
    await finish('x', true);
    await other;
    expect(calls).toEqual(['x']);
  });
});
