// Tombstone garbage collection for the state store.
//
// A tombstone T can go once no record of its key older than T can reach this node again except as
// a duplicate (a version it has). Older records come (1) by anti-entropy from a node that holds one
// and (2) in messages already under way: a broadcast sent when the write was made, an anti-entropy
// batch read before its sender had T. Once every member has T, (1) is over: no member holds an
// older record of the key or writes one (its clock has passed T, its writes are stamped above it).
// (2) is not: a member that wrote an older value just before it got T may have a broadcast of it
// still under way to a node that never had that version, which would then hold the value again.
// But every such message carries a version its sender had before it had T. So stable GC takes two
// steps (StateStore.collectGarbage): a snapshot of the members' summaries, with `stable` (what all
// of them had) and `seen` (what any of them had); then, once this node has every version in
// `seen`, the tombstones in that `stable` can go: a message sent before its sender's snapshot
// carries a version this node has; one sent after it carries a record above T. After
// tombstoneHorizonMs a tombstone goes regardless: a member cut off for longer than that must rejoin
// with empty data (see DEFAULT_TOMBSTONE_HORIZON_MS).
//
// This relies on each summary being a state its member really had, and on records being durable
// (they are synced): a crash loses only cleared marks, of versions superseded by a record the
// member keeps.
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
  /** Tombstones in it may be collected (see the top of this file for what it must be). */
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
