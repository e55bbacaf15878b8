// changesSince: streams what a peer lacks, per the plan of diff.ts, in bounded batches.
import type { KvStore } from '../kv/index.js';
import type { ChangeBatch } from './codec.js';
import { DEFAULT_BATCH_MAX_BYTES, DEFAULT_BATCH_MAX_RECORDS } from './config.js';
import { BatchBuilder, planDiff } from './diff.js';
import {
  decodeKeyBytes,
  decodeStoredRecord,
  HELD_PREFIX,
  heldKey,
  parseVersionKey,
  recordKey,
} from './layout.js';
import type { StateRecord } from './merge.js';
import type { Bookkeeping } from './mutation.js';
import { VersionVector } from './versions.js';

export interface ChangesOptions {
  /** See DEFAULT_BATCH_MAX_BYTES. */
  maxBytes?: number;
  /** See DEFAULT_BATCH_MAX_RECORDS. */
  maxRecords?: number;
  signal?: AbortSignal;
}

/** Index entries looked up per getMany while streaming. */
const LOOKUP_CHUNK = 512;

/**
 * The plan is fixed (synchronously, from the in-memory version sets) when the generator starts.
 * Records are read as the stream goes; a planned version that is no longer the current record of
 * its key when read (superseded meanwhile) is skipped, and then the cleared part is left out: the
 * peer could otherwise mark versions cleared without getting the record that cleared them. It is
 * offered again next round.
 */
export async function* streamChanges(
  kv: KvStore,
  book: Bookkeeping,
  peer: VersionVector,
  opts: ChangesOptions = {},
): AsyncGenerator<ChangeBatch> {
  const plan = planDiff(book.had, book.held, peer);
  const builder = new BatchBuilder({
    maxBytes: opts.maxBytes ?? DEFAULT_BATCH_MAX_BYTES,
    maxRecords: opts.maxRecords ?? DEFAULT_BATCH_MAX_RECORDS,
  });
  let complete = true;
  for (const [origin, set] of plan.send.entries()) {
    let sent = 0;
    let keys: string[] = [];
    let seqs: number[] = [];
    // Reads the records of the index entries gathered so far; keeps those still current.
    const lookup = async (): Promise<StateRecord[]> => {
      opts.signal?.throwIfAborted();
      const vals = await kv.getMany(keys.map(recordKey));
      const out: StateRecord[] = [];
      vals.forEach((v, i) => {
        if (v === undefined) return;
        const rec = decodeStoredRecord(keys[i], v);
        if (rec.origin === origin && rec.seq === seqs[i]) out.push(rec);
      });
      keys = [];
      seqs = [];
      sent += out.length;
      return out;
    };
    function* emit(recs: StateRecord[]): Generator<ChangeBatch> {
      for (const rec of recs) {
        if (builder.add(rec)) yield { records: builder.take(), cleared: new VersionVector() };
      }
    }
    for (const [a, b] of set.ranges()) {
      for await (const [k, v] of kv.entries({ gte: heldKey(origin, a), lte: heldKey(origin, b) })) {
        keys.push(decodeKeyBytes(v));
        seqs.push(parseVersionKey(k, HELD_PREFIX).seq);
        if (keys.length >= LOOKUP_CHUNK) yield* emit(await lookup());
      }
    }
    if (keys.length > 0) yield* emit(await lookup());
    if (sent !== set.size) complete = false;
  }
  const cleared = complete ? plan.cleared : new VersionVector();
  if (builder.count > 0 || !cleared.isEmpty) yield { records: builder.take(), cleared };
}
