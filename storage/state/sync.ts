// One anti-entropy session, as the runtime runs it over a libp2p stream (and the tests run it in
// process). For a round between A and B, each direction is:
//
//   receiver -> sender   encodeSummary(receiver.summary())            (small: O(origins x gaps))
//   sender               changesSince(decodeSummary(bytes))            (only what the receiver lacks)
//   sender -> receiver   encodeBatch(batch) for each batch, cleared versions in the last one
//   receiver             SyncReceiver.receive(decodeBatch(bytes)) for each, in order
//
// Both directions can run at once on one duplex stream. A decode error (StateDecodeError) ends
// the session: count it and drop the stream; what was applied so far stays applied.
import {
  decodeBatch,
  decodeSummary,
  encodeBatch,
  encodeSummary,
  type ChangeBatch,
  type DecodeLimits,
} from './codec.js';
import type { ApplyResult, ChangesOptions, StateStore } from './state-store.js';
import { VersionVector } from './versions.js';

/**
 * The receiving end of one session. Applies batches in order; once any record of the session has
 * been refused (clock drift, invalid), later cleared versions are ignored, since the refused record
 * may be the one that cleared them.
 */
export class SyncReceiver {
  readonly #store: StateStore;
  #refused = false;
  readonly totals = { applied: 0, superseded: 0, duplicates: 0, rejected: 0, cleared: 0 };

  constructor(store: StateStore) {
    this.#store = store;
  }

  async receive(batch: ChangeBatch): Promise<ApplyResult> {
    const cleared = this.#refused ? new VersionVector() : batch.cleared;
    const res = await this.#store.apply(batch.records, cleared);
    if (res.rejected > 0) this.#refused = true;
    this.totals.applied += res.applied;
    this.totals.superseded += res.superseded;
    this.totals.duplicates += res.duplicates;
    this.totals.rejected += res.rejected;
    this.totals.cleared += res.cleared;
    return res;
  }
}

export interface OneWayResult {
  /** Bytes of the receiver's summary (receiver -> sender). */
  summaryBytes: number;
  /** Bytes of the change batches (sender -> receiver). */
  batchBytes: number;
  batches: number;
  records: number;
  totals: SyncReceiver['totals'];
}

export interface SyncOptions extends ChangesOptions {
  limits?: DecodeLimits;
  /** Called after each batch is applied (the simulator interleaves other events there). */
  afterBatch?: () => Promise<void>;
}

/** One direction of a session, in process, through the wire encodings. */
export async function syncOneWay(
  from: StateStore,
  to: StateStore,
  opts: SyncOptions = {},
): Promise<OneWayResult> {
  const summary = encodeSummary(to.summary());
  const peer = decodeSummary(summary, opts.limits);
  const receiver = new SyncReceiver(to);
  const out: OneWayResult = {
    summaryBytes: summary.length,
    batchBytes: 0,
    batches: 0,
    records: 0,
    totals: receiver.totals,
  };
  for await (const batch of from.changesSince(peer, opts)) {
    const bytes = encodeBatch(batch);
    out.batchBytes += bytes.length;
    out.batches++;
    const decoded = decodeBatch(bytes, opts.limits);
    out.records += decoded.records.length;
    await receiver.receive(decoded);
    await opts.afterBatch?.();
  }
  return out;
}

/** A full round between a and b: b's changes to a, then a's to b. */
export async function syncPair(
  a: StateStore,
  b: StateStore,
  opts: SyncOptions = {},
): Promise<{ toA: OneWayResult; toB: OneWayResult }> {
  const toA = await syncOneWay(b, a, opts);
  const toB = await syncOneWay(a, b, opts);
  return { toA, toB };
}
