// The CRDT of the key/value state: a last-writer-wins register per key. Pure, no I/O.
//
// Each record carries an HLC timestamp, the node that wrote it (origin) and that node's version
// number for the write (seq). The winner for a key is the record with the largest HLC; equal HLCs
// (two nodes writing in the same ms with the same counter) are broken by origin, so every node
// picks the same winner. seq and the value bytes break any remaining tie, which only a buggy or
// hostile peer can produce (an origin never issues the same HLC twice), so that compareRecords is a
// total order and merge is commutative, associative and idempotent on any input.
import { compareHlc, type Hlc } from './hlc.js';

export interface StateRecord {
  readonly key: string;
  /** The value bytes, or null for a tombstone (the key was deleted). */
  readonly value: Uint8Array | null;
  readonly hlc: Hlc;
  /** The node id of the writer. */
  readonly origin: string;
  /** The writer's version number for this write: 1, 2, 3 ... per origin. */
  readonly seq: number;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareValues(a: Uint8Array | null, b: Uint8Array | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? -1 : 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/**
 * Orders two records of the same key: negative if `a` loses to `b`, positive if it wins, 0 if they
 * are the same write. By HLC, then origin, then seq, then value (tombstone lowest).
 */
export function compareRecords(a: StateRecord, b: StateRecord): number {
  return (
    compareHlc(a.hlc, b.hlc) ||
    compareStrings(a.origin, b.origin) ||
    a.seq - b.seq ||
    compareValues(a.value, b.value)
  );
}

/** The winner of two records of the same key. Throws TypeError for different keys. */
export function merge(a: StateRecord, b: StateRecord): StateRecord {
  if (a.key !== b.key) throw new TypeError('merge of records of different keys');
  return compareRecords(a, b) >= 0 ? a : b;
}

/** Folds many records of one key (in any order) into the winner; undefined for none. */
export function mergeAll(records: Iterable<StateRecord>): StateRecord | undefined {
  let best: StateRecord | undefined;
  for (const r of records) best = best === undefined ? r : merge(best, r);
  return best;
}

export function isTombstone(r: StateRecord): boolean {
  return r.value === null;
}

/** Same write: equal in every field. */
export function sameRecord(a: StateRecord, b: StateRecord): boolean {
  return a.key === b.key && compareRecords(a, b) === 0;
}
