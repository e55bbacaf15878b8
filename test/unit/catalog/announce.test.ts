// DHT provider announcements of service names: one at a time, a name queued twice announced
// once, and nothing after stop().
import { describe, expect, it } from 'vitest';
import {
  CATALOG_ANNOUNCE_DELAY_MS,
  CatalogReplication,
  serviceKey,
  type ReplicationComponents,
} from '../../../membership/catalog/replication.js';
import type { CatalogState } from '../../../membership/catalog/state.js';

function fakeReplication(provideMs: number) {
  const calls: Array<{ key: string; start: number; end: number }> = [];
  let running = 0;
  let maxRunning = 0;
  const t0 = performance.now();
  const dht = {
    async *provide(key: { toString(): string }) {
      running++;
      maxRunning = Math.max(maxRunning, running);
      const start = performance.now() - t0;
      await new Promise((r) => setTimeout(r, provideMs));
      running--;
      calls.push({ key: key.toString(), start, end: performance.now() - t0 });
      yield* [];
    },
  };
  const logs: string[] = [];
  const components = {
    node: { services: { dht } },
    logger: { debug: (_o: object, m?: string) => void logs.push(m ?? '') },
  } as unknown as ReplicationComponents; // only the DHT and the logger are used by announce()
  const rep = new CatalogReplication(
    components,
    {},
    {
      state: {} as CatalogState,
      accept: async () => false,
      signed: () => undefined,
      localNames: () => [],
    },
  );
  return { rep, calls, maxRunning: () => maxRunning };
}

describe('catalog DHT announcements', () => {
  it('are made one at a time, once per queued name', async () => {
    const { rep, calls, maxRunning } = fakeReplication(100);
    rep.announce('web');
    rep.announce('db');
    rep.announce('web'); // still queued: not announced twice
    await new Promise((r) => setTimeout(r, 2 * CATALOG_ANNOUNCE_DELAY_MS + 600));
    expect(calls.map((c) => c.key)).toEqual([
      (await serviceKey('web')).toString(),
      (await serviceKey('db')).toString(),
    ]);
    expect(maxRunning()).toBe(1);
    expect(calls[0].start).toBeGreaterThanOrEqual(CATALOG_ANNOUNCE_DELAY_MS - 20);
    expect(calls[1].start).toBeGreaterThanOrEqual(calls[0].end + CATALOG_ANNOUNCE_DELAY_MS - 20);
  });

  it('stops announcing when stopped', async () => {
    const { rep, calls } = fakeReplication(10);
    rep.announce('web');
    await rep.stop(); // never started: stop() still ends what is queued
    await new Promise((r) => setTimeout(r, CATALOG_ANNOUNCE_DELAY_MS + 300));
    expect(calls).toEqual([]);
  });
});
