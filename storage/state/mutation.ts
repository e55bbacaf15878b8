// One atomic change of the state store: the KvStore operations of a batch, and the matching changes
// to the in-memory bookkeeping (versions had and held, counters), applied only after the batch is
// durable. Until then readers (get, changesSince) see the state before it.
import type { BatchOp } from '../kv/index.js';
import { hlcToBytes, type Hlc } from './hlc.js';
import {
  encodeKeyBytes,
  encodeOwnFloor,
  encodeStoredRecord,
  encodeTombstoneEntry,
  hadKey,
  heldKey,
  HLC_KEY,
  OWN_FLOOR_KEY,
  recordKey,
  tombstoneKey,
} from './layout.js';
import type { StateRecord } from './merge.js';
import { RangeSet } from './range-set.js';
import type { VersionVector } from './versions.js';

/** The in-memory state a mutation edits on commit. */
export interface Bookkeeping {
  had: VersionVector;
  held: VersionVector;
  liveKeys: number;
  tombstones: number;
  /**
   * The highest version of this node's own origin that a peer claimed to have (0 if none above
   * what it had): its next write takes a version above this and above every one it had.
   */
  ownFloor: number;
}

export class Mutation {
  readonly ops: BatchOp[] = [];
  readonly #base: Bookkeeping;
  readonly #had = new Map<string, RangeSet>();
  readonly #heldOps: Array<[add: boolean, origin: string, seq: number]> = [];
  readonly #current = new Map<string, StateRecord | undefined>();
  #live = 0;
  #tombs = 0;
  #ownFloor: number | undefined;

  constructor(base: Bookkeeping) {
    this.#base = base;
  }

  /** True if nothing is to be written. */
  get isEmpty(): boolean {
    return this.ops.length === 0 && this.#had.size === 0 && this.#ownFloor === undefined;
  }

  #hadSet(origin: string): RangeSet {
    let s = this.#had.get(origin);
    if (s === undefined) {
      s = this.#base.had.get(origin)?.clone() ?? new RangeSet();
      this.#had.set(origin, s);
    }
    return s;
  }

  hasVersion(origin: string, seq: number): boolean {
    return (this.#had.get(origin) ?? this.#base.had.get(origin))?.has(seq) ?? false;
  }

  /** The versions of `origin` had, counting this mutation. Do not modify the returned set. */
  had(origin: string): RangeSet | undefined {
    return this.#had.get(origin) ?? this.#base.had.get(origin);
  }

  /** Whether this mutation raises the own-version floor (then its batch must be synced). */
  get raisesOwnFloor(): boolean {
    return this.#ownFloor !== undefined;
  }

  /** The largest version of `origin` had, counting this mutation. */
  maxVersion(origin: string): number {
    return (this.#had.get(origin) ?? this.#base.had.get(origin))?.max ?? 0;
  }

  /** The highest version of `origin` (this node's own) taken: had or claimed by a peer. */
  lastOwnVersion(origin: string): number {
    return Math.max(this.maxVersion(origin), this.#ownFloor ?? this.#base.ownFloor);
  }

  /** Raises the own-version floor to `seq` (a peer's claim); returns by how much. */
  raiseOwnFloor(origin: string, seq: number): number {
    const last = this.lastOwnVersion(origin);
    if (seq <= last) return 0;
    this.#ownFloor = seq;
    return seq - last;
  }

  markHad(origin: string, seq: number): void {
    this.#hadSet(origin).add(seq);
  }

  /** Marks versions as had; returns how many were new. */
  markHadRanges(origin: string, set: RangeSet): number {
    const before = this.#had.get(origin) ?? this.#base.had.get(origin);
    const fresh = before === undefined ? set.size : set.difference(before).size;
    if (fresh > 0) {
      const s = this.#hadSet(origin);
      for (const [a, b] of set.ranges()) s.addRange(a, b);
    }
    return fresh;
  }

  /** Whether this mutation already decided the record of `key` (then current() is authoritative). */
  knows(key: string): boolean {
    return this.#current.has(key);
  }

  current(key: string): StateRecord | undefined {
    return this.#current.get(key);
  }

  /** Seeds the record of `key` as read from the store. */
  setStored(key: string, rec: StateRecord | undefined): void {
    if (!this.#current.has(key)) this.#current.set(key, rec);
  }

  /** Makes `rec` the record of its key, replacing `cur` (the record it wins over, if any). */
  replace(cur: StateRecord | undefined, rec: StateRecord): void {
    const key = rec.key;
    this.ops.push({ type: 'put', key: recordKey(key), value: encodeStoredRecord(rec) });
    this.ops.push({ type: 'put', key: heldKey(rec.origin, rec.seq), value: encodeKeyBytes(key) });
    this.#heldOps.push([true, rec.origin, rec.seq]);
    if (rec.value === null) {
      const entry = encodeTombstoneEntry(rec.hlc.wall, key);
      this.ops.push({ type: 'put', key: tombstoneKey(rec.origin, rec.seq), value: entry });
      this.#tombs++;
    } else this.#live++;
    if (cur !== undefined) this.#drop(cur);
    this.#current.set(key, rec);
  }

  #drop(cur: StateRecord): void {
    this.ops.push({ type: 'del', key: heldKey(cur.origin, cur.seq) });
    this.#heldOps.push([false, cur.origin, cur.seq]);
    if (cur.value === null) {
      this.ops.push({ type: 'del', key: tombstoneKey(cur.origin, cur.seq) });
      this.#tombs--;
    } else this.#live--;
  }

  /** Removes a tombstone for good (garbage collection); its version stays had, as cleared. */
  collect(origin: string, seq: number, key: string): void {
    this.ops.push({ type: 'del', key: recordKey(key) });
    this.ops.push({ type: 'del', key: heldKey(origin, seq) });
    this.ops.push({ type: 'del', key: tombstoneKey(origin, seq) });
    this.#heldOps.push([false, origin, seq]);
    this.#tombs--;
  }

  /** Adds the writes of the changed version sets and of the HLC high-water mark. */
  finish(hlcMark: Hlc | undefined): BatchOp[] {
    for (const [origin, set] of this.#had) {
      this.ops.push({ type: 'put', key: hadKey(origin), value: set.encode() });
    }
    if (hlcMark !== undefined)
      this.ops.push({ type: 'put', key: HLC_KEY, value: hlcToBytes(hlcMark) });
    if (this.#ownFloor !== undefined)
      this.ops.push({ type: 'put', key: OWN_FLOOR_KEY, value: encodeOwnFloor(this.#ownFloor) });
    return this.ops;
  }

  /** Applies the in-memory side; call once the batch is durable. */
  commit(): void {
    const b = this.#base;
    for (const [origin, set] of this.#had) b.had.set(origin, set);
    for (const [add, origin, seq] of this.#heldOps) {
      if (add) b.held.add(origin, seq);
      else b.held.delete(origin, seq);
    }
    b.liveKeys += this.#live;
    b.tombstones += this.#tombs;
    if (this.#ownFloor !== undefined) b.ownFloor = this.#ownFloor;
  }
}
