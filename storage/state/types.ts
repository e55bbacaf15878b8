// Result and entry types of the state store.
import type { StateRecord } from './merge.js';

/** A change of a key's current record, for watches. value null = the key was deleted. */
export interface StateChange {
  key: string;
  value: Uint8Array | null;
  /** The new record's version string (see StateEntry.version). */
  version: string;
  record: StateRecord;
}

export interface ApplyResult {
  /** Keys whose current record changed, in the order applied. */
  changes: StateChange[];
  /** Records that became the current record of their key. */
  applied: number;
  /** New versions that lost to the current record (kept only as cleared versions). */
  superseded: number;
  /** Versions already had (e.g. a broadcast that also came by anti-entropy). */
  duplicates: number;
  /** Records refused: invalid, or stamped too far ahead (clockDrift). Not marked as had. */
  rejected: number;
  /** Of `rejected`, those refused for clock drift. */
  clockDrift: number;
  /** Versions newly marked as cleared. */
  cleared: number;
  /** Of `rejected`, records whose origin was not the authenticated sender (ApplyOptions.from). */
  forged: number;
  /**
   * How far the versions of this node's own origin the sender claimed (records or cleared
   * versions in this node's name) moved its next write's version up: they are above its last,
   * and its next writes skip them (see MAX_OWN_CLAIM_AHEAD).
   */
  ownClaimed: number;
}

export interface StateEntry {
  key: string;
  value: Uint8Array;
  /**
   * The record's HLC as 16 hex digits: a later write to the key has a larger version, and string
   * comparison is version order. (Two nodes writing one key in the same ms with the same counter
   * get equal versions; the node id decides which wins.)
   */
  version: string;
  record: StateRecord;
}

export interface ListEntry {
  key: string;
  size: number;
  version: string;
}

export interface StateStats {
  liveKeys: number;
  tombstones: number;
  origins: number;
  /** Ranges in the summary (its size on the wire is ~3 bytes per range plus origin ids). */
  summaryRanges: number;
  localSeq: number;
  hlc: string;
}
