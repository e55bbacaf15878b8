// Difference computation for anti-entropy. Pure.
//
// A node's versions of each origin are split in two: "held" (the node stores that version's record,
// it is the current winner of its key) and "cleared" (had, but superseded by a later write to the
// same key, or a tombstone already collected). Given the peer's summary, the node sends the held
// versions the peer lacks as records and the cleared ones as ranges.
//
// Why the peer may mark a cleared version as had without its data: the version was superseded at
// the sender by a record the sender holds, and the peer either has that record (or a later one) or
// receives it in the same session. So the cleared ranges travel last, and only when every planned
// record was sent (nothing superseded mid-session); see StateStore.changesSince.
import { VersionVector } from './versions.js';
import type { StateRecord } from './merge.js';
import { utf8Length } from './varint.js';

export interface DiffPlan {
  /** Versions to send as records (the sender holds them). */
  readonly send: VersionVector;
  /** Versions to send as cleared ranges (the sender has them, superseded). */
  readonly cleared: VersionVector;
}

/**
 * What a node with versions `had`, of which it holds `held`, sends a peer whose summary is `peer`.
 * `held` must be a subset of `had`.
 */
export function planDiff(had: VersionVector, held: VersionVector, peer: VersionVector): DiffPlan {
  const send = new VersionVector();
  const cleared = new VersionVector();
  for (const [origin, missing] of had.difference(peer).entries()) {
    const h = held.get(origin);
    if (h === undefined) {
      cleared.set(origin, missing);
      continue;
    }
    send.set(origin, missing.intersect(h));
    cleared.set(origin, missing.difference(h));
  }
  return { send, cleared };
}

/** Bytes a record counts for against a batch's byte budget: its key and value. */
export function recordPayloadBytes(r: StateRecord): number {
  return utf8Length(r.key) + (r.value?.length ?? 0);
}

export interface BatchLimits {
  /** See DEFAULT_BATCH_MAX_BYTES. */
  maxBytes: number;
  /** See DEFAULT_BATCH_MAX_RECORDS. */
  maxRecords: number;
}

/** Accumulates records and says when a batch is full. */
export class BatchBuilder {
  readonly #limits: BatchLimits;
  #records: StateRecord[] = [];
  #bytes = 0;

  constructor(limits: BatchLimits) {
    this.#limits = limits;
  }

  get count(): number {
    return this.#records.length;
  }

  /** Adds a record; returns true when the batch is now full and should be taken. */
  add(r: StateRecord): boolean {
    this.#records.push(r);
    this.#bytes += recordPayloadBytes(r);
    return this.#bytes >= this.#limits.maxBytes || this.#records.length >= this.#limits.maxRecords;
  }

  take(): StateRecord[] {
    const out = this.#records;
    this.#records = [];
    this.#bytes = 0;
    return out;
  }
}
