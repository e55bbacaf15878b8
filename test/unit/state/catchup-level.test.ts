// Catch-up on real disks (LevelStore, fsync per batch): an agent that missed 10,000 changed keys.
// The target is <= 10 s and bytes exchanged <= 1.2x the changed keys + values; the lead's
// benchmark measures it between real agents, this checks the state core's share of it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { LevelStore } from '../../../storage/index.js';
import { StateStore, syncOneWay } from '../../../storage/state/index.js';

it('catches up 10,000 changed keys (100 B values) from LevelStore to LevelStore', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'es-state-catchup-'));
  const dbA = await LevelStore.open(join(dir, 'a'));
  const dbB = await LevelStore.open(join(dir, 'b'));
  try {
    const a = await StateStore.open({ store: dbA.namespace('kv'), nodeId: 'A' });
    const b = await StateStore.open({ store: dbB.namespace('kv'), nodeId: 'B' });
    const base = [];
    for (let i = 0; i < 5_000; i++) base.push(a.write(`base/${i}`, new Uint8Array(100).fill(7)));
    await Promise.all(base);
    await syncOneWay(a, b);
    // B misses 10,000 writes: 8,000 new keys and 2,000 overwrites of keys it has.
    let changed = 0;
    const writes = [];
    for (let i = 0; i < 10_000; i++) {
      const key = i < 8_000 ? `svc/${i}` : `base/${i - 8_000}`;
      const value = new Uint8Array(100).map((_, j) => (i * 31 + j) & 0xff);
      changed += key.length + value.length;
      writes.push(a.write(key, value));
    }
    await Promise.all(writes);
    const t0 = performance.now();
    const r = await syncOneWay(a, b);
    const ms = performance.now() - t0;
    const bytes = r.summaryBytes + r.batchBytes;
    console.log(
      `LevelStore catch-up: ${r.records} records, ${r.batches} batches, ${bytes} B for ${changed} B ` +
        `changed (ratio ${(bytes / changed).toFixed(4)}), ${ms.toFixed(0)} ms`,
    );
    expect(r.records).toBe(10_000);
    expect(bytes / changed).toBeLessThanOrEqual(1.2);
    expect(ms).toBeLessThan(10_000);
    expect(b.summary().equals(a.summary())).toBe(true);
    expect(b.stats().liveKeys).toBe(13_000);
  } finally {
    await dbA.close();
    await dbB.close();
    await rm(dir, { recursive: true, force: true });
  }
});
