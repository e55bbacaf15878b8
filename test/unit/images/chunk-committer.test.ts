// The group commit of the chunk index (storage/chunks/committer.ts) against a fake database.
import { describe, expect, it } from 'vitest';
import { Committer, type CommitterDeps } from '../../../storage/chunks/committer.js';
import type { IndexOp } from '../../../storage/chunks/index-db.js';
import { ChunkStoreFailedError } from '../../../storage/errors.js';
import { waitFor } from '../../helpers/wait.js';

const op = (n: number): IndexOp => ({ type: 'del', key: Buffer.from([n]) });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function harness(over: Partial<CommitterDeps> & { batchMs?: number; syncMs?: number } = {}) {
  const log: string[] = [];
  const batches: number[][] = [];
  /** When each level write began (performance.now()). */
  const batchAt: number[] = [];
  let writing = 0;
  const failedCalls: number[] = [];
  const c = new Committer({
    db: {
      batch: async (ops) => {
        expect(writing).toBe(0); // level writes never overlap
        writing++;
        batchAt.push(performance.now());
        log.push('batch');
        await sleep(over.batchMs ?? 1);
        writing--;
        batches.push(ops.map((o) => o.key[0]));
      },
    },
    sync: true,
    delayMs: 5,
    maxOps: 1000,
    syncFiles: async () => {
      log.push('sync');
      await sleep(over.syncMs ?? 1);
    },
    failed: (committed) => failedCalls.push(committed),
    ...over,
  });
  return { c, log, batches, batchAt, failedCalls };
}

describe('Committer', () => {
  it('commits updates in order, in few batches, fsync before every level write', async () => {
    const { c, log, batches } = harness();
    const waits: Array<Promise<void>> = [];
    for (let i = 0; i < 100; i++) {
      const b = c.enqueue(op(i));
      if (i % 10 === 0) waits.push(c.wait(b.seq));
      if (i % 25 === 0) await sleep(0);
    }
    await Promise.all(waits);
    await c.flush();
    expect(batches.flat()).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(batches.length).toBeLessThan(10);
    // every level write comes after its own fsync
    let syncs = 0;
    let writes = 0;
    for (const e of log) {
      if (e === 'sync') syncs++;
      else expect(++writes).toBeLessThanOrEqual(syncs);
    }
    expect(c.committedSeq).toBeGreaterThan(0);
    await c.close();
  });

  it('commits a batch nobody waits for after its delay, or when it is full', async () => {
    // event order, not fixed sleeps: a stalled test worker must not make this fail
    const delayed = harness({ delayMs: 30, maxOps: 3 });
    const enqueuedAt = performance.now();
    delayed.c.enqueue(op(1));
    await waitFor(() => delayed.batches.length === 1, { timeout: 5000 });
    expect(delayed.batches).toEqual([[1]]);
    // its write began no sooner than its delay (timers never fire early; 1 ms for rounding)
    expect(delayed.batchAt[0] - enqueuedAt).toBeGreaterThanOrEqual(29);
    await delayed.c.close();
    // a delay no test waits out: only being full can commit these
    const full = harness({ delayMs: 60_000, maxOps: 3 });
    for (let i = 2; i <= 4; i++) full.c.enqueue(op(i)); // full at 3
    await waitFor(() => full.batches.length === 1, { timeout: 5000 });
    expect(full.batches).toEqual([[2, 3, 4]]);
    await full.c.close();
  });

  it('overlaps the fsync of a batch with the level write of the one before', async () => {
    // each fsync and level write is held until the test lets it go
    const held: Array<{ what: string; go: () => void }> = [];
    const hold = (what: string) =>
      new Promise<void>((go) => {
        held.push({ what, go });
      });
    const { c, log } = harness({
      db: { batch: () => (log.push('batch'), hold('batch')) },
      syncFiles: () => (log.push('sync'), hold('sync')),
    });
    const release = async (what: string) => {
      await waitFor(() => held.some((h) => h.what === what), { timeout: 5000 });
      const i = held.findIndex((h) => h.what === what);
      held.splice(i, 1)[0].go();
    };
    const p1 = c.wait(c.enqueue(op(1)).seq);
    await release('sync'); // first synced; its level write starts and is held
    await waitFor(() => log.length === 2, { timeout: 5000 });
    const p2 = c.wait(c.enqueue(op(2)).seq);
    // the second is synced while the first's level write is still held
    await waitFor(() => log.length === 3, { timeout: 5000 });
    expect(log).toEqual(['sync', 'batch', 'sync']);
    await release('batch');
    await release('sync');
    await release('batch');
    await Promise.all([p1, p2]);
    expect(log).toEqual(['sync', 'batch', 'sync', 'batch']);
    await c.close();
  });

  it('skips fsync without sync', async () => {
    const { c, log } = harness({ sync: false });
    await c.wait(c.enqueue(op(1)).seq);
    expect(log).toEqual(['batch']);
    await c.barrier(); // an empty commit still runs
    await c.close();
  });

  it('a failed commit fails its batch and every later one, once, and sticks', async () => {
    let calls = 0;
    const { c, failedCalls } = harness({
      db: {
        batch: async () => {
          calls++;
          await sleep(calls === 2 ? 30 : 1);
          if (calls === 2) throw new Error('EIO');
        },
      },
    });
    await c.wait(c.enqueue(op(1)).seq);
    const committed = c.committedSeq;
    const bad = c.wait(c.enqueue(op(2)).seq);
    await sleep(7); // bad is in its level write
    const later = c.wait(c.enqueue(op(3)).seq);
    const [e1, e2] = await Promise.all([bad.catch((e) => e), later.catch((e) => e)]);
    expect(e1).toBeInstanceOf(ChunkStoreFailedError);
    expect(e2).toBe(e1);
    expect((e1 as Error).message).toMatch(/EIO/);
    expect(failedCalls).toEqual([committed]);
    expect(c.failed).toBe(true);
    expect(() => c.enqueue(op(4))).toThrow(ChunkStoreFailedError);
    await expect(c.flush()).rejects.toBeInstanceOf(ChunkStoreFailedError);
    await c.close(); // nothing left to commit
    expect(calls).toBe(2); // nothing after the failure reached the database
  });

  it('a failed fsync fails the batch before its level write', async () => {
    let writes = 0;
    const { c, failedCalls } = harness({
      db: {
        batch: async () => {
          writes++;
        },
      },
      syncFiles: async () => {
        throw new Error('fsync EIO');
      },
    });
    await expect(c.wait(c.enqueue(op(1)).seq)).rejects.toBeInstanceOf(ChunkStoreFailedError);
    expect(writes).toBe(0);
    expect(failedCalls).toEqual([0]);
  });
});
