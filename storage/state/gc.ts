// Tombstone garbage collection for the state store.
//
// A tombstone can go once no node can still hold an older value of its key without also having the
// tombstone's version: then nobody will offer that older value again (anti-entropy sends only
// versions the receiver lacks, and every member has the older value's version, held or cleared).
// That is the case when every member has the tombstone's version (the "stable" vector, the
// intersection of the members' summaries). After tombstoneHorizonMs it goes regardless: a member
// cut off for longer than that must rejoin with empty data (see DEFAULT_TOMBSTONE_HORIZON_MS).
//
// A collected tombstone's version stays had; it is reported to peers as cleared.
import type { KvStore } from '../kv/index.js';
import { GC_BATCH } from './config.js';
import { decodeTombstoneEntry, parseVersionKey, TOMBSTONE_PREFIX } from './layout.js';
import { Mutation, type Bookkeeping } from './mutation.js';
import type { Serial } from './serial.js';
import type { VersionVector } from './versions.js';

export interface GcResult {
  /** Tombstones removed. */
  collected: number;
  /** Of those, removed because every member had them. */
  byStable: number;
  /** Of those, removed because they were older than the horizon (and not stable). */
  byHorizon: number;
  /** Tombstones left. */
  remaining: number;
}

export interface GcInput {
  kv: KvStore;
  book: Bookkeeping;
  serial: Serial;
  /** Current time, ms since the epoch. */
  now: number;
  horizonMs: number;
  stable?: VersionVector;
}

interface Candidate {
  origin: string;
  seq: number;
  key: string;
  stable: boolean;
}

/**
 * Scans the tombstone index without blocking writers, then deletes in batches of GC_BATCH, each
 * under the store's mutation lock, skipping tombstones superseded meanwhile (no longer held).
 * Deletions are not fsynced: if a crash loses them, the tombstones are simply collected again.
 */
export async function collectGarbage(input: GcInput): Promise<GcResult> {
  const { kv, book, serial, now, horizonMs, stable } = input;
  const res: GcResult = { collected: 0, byStable: 0, byHorizon: 0, remaining: 0 };
  let batch: Candidate[] = [];
  const flush = async (): Promise<void> => {
    const todo = batch;
    batch = [];
    await serial.run(async () => {
      const m = new Mutation(book);
      let n = 0;
      for (const c of todo) {
        if (!book.held.has(c.origin, c.seq)) continue;
        m.collect(c.origin, c.seq, c.key);
        n++;
        if (c.stable) res.byStable++;
        else res.byHorizon++;
      }
      if (n === 0) return;
      await kv.batch(m.finish(undefined), { sync: false });
      m.commit();
      res.collected += n;
    });
  };
  for await (const [k, v] of kv.entries({ prefix: TOMBSTONE_PREFIX })) {
    const { origin, seq } = parseVersionKey(k, TOMBSTONE_PREFIX);
    const { wall, key } = decodeTombstoneEntry(v);
    const isStable = stable?.has(origin, seq) ?? false;
    if (!isStable && now - wall < horizonMs) continue;
    batch.push({ origin, seq, key, stable: isStable });
    if (batch.length >= GC_BATCH) await flush();
  }
  if (batch.length > 0) await flush();
  res.remaining = book.tombstones;
  return res;
}
