// The durable replicated key/value state of one node, on a KvStore namespace.
//
// Local writes get an HLC timestamp and the next local version number and are on disk (sync) before
// write() resolves; concurrent writes share one fsync (group commit). Remote records are merged
// (last writer wins, see merge.ts) and persisted the same way. The store tracks, per origin, the
// versions it has and the subset it holds, so anti-entropy can send a peer exactly what it lacks
// (changesSince) and the peer can mark superseded versions as cleared without their data.
//
// Mutations run one at a time; reads (get, list, summary, changesSince) never wait for them and see
// the last committed state. In memory: the version sets (O(origins x gaps) had, O(held ranges)
// held) and two counters; they are rebuilt at open by scanning the version and tombstone indexes.
import { CorruptDataError, StoreClosedError, ValueTooLargeError } from '../errors.js';
import type { KvStore } from '../kv/index.js';
import { isValidOrigin, type ChangeBatch } from './codec.js';
import {
  DEFAULT_MAX_DRIFT_MS,
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_MAX_VALUE_BYTES,
  MAX_VALUE_BYTES_LIMIT,
  DEFAULT_TOMBSTONE_HORIZON_MS,
  MAX_OWN_CLAIM_AHEAD,
  MAX_OWN_CLEARED_NEW_RANGES,
  WRITE_GROUP_MAX,
} from './config.js';
import { streamChanges, type ChangesOptions } from './changes.js';
import type { ApplyResult, ListEntry, StateChange, StateEntry, StateStats } from './types.js';
import { collectGarbage, type GcResult } from './gc.js';
import { HybridClock, hlcToString, type Hlc } from './hlc.js';
import {
  decodeHlcMark,
  decodeStoredHeader,
  decodeStoredRecord,
  HAD_PREFIX,
  HELD_PREFIX,
  HLC_KEY,
  OWN_FLOOR_KEY,
  decodeOwnFloor,
  parseVersionKey,
  RECORD_PREFIX,
  recordKey,
  TOMBSTONE_PREFIX,
} from './layout.js';
import { compareRecords, type StateRecord } from './merge.js';
import { Mutation, type Bookkeeping } from './mutation.js';
import { RangeSet } from './range-set.js';
import { Serial } from './serial.js';
import { checkKey, isValidRecord } from './validate.js';
import { VersionVector } from './versions.js';

export interface StateStoreOptions {
  /** Where the state lives: a namespace of the agent's store, e.g. `root.namespace('kv')`. */
  store: KvStore;
  /** This node's id: the origin of its writes. Stable across restarts (the libp2p peer id). */
  nodeId: string;
  /** Physical clock, ms since the epoch. Default Date.now. */
  now?: () => number;
  /** See DEFAULT_MAX_DRIFT_MS. */
  maxDriftMs?: number;
  /** See DEFAULT_TOMBSTONE_HORIZON_MS. */
  tombstoneHorizonMs?: number;
  /** See DEFAULT_MAX_VALUE_BYTES. */
  maxValueBytes?: number;
  /** See DEFAULT_MAX_KEY_BYTES. */
  maxKeyBytes?: number;
}

export type { ApplyResult, ChangesOptions, ListEntry, StateChange, StateEntry, StateStats };

export interface ApplyOptions {
  /**
   * The authenticated sender, when every record must be its own (a gossip message: its publisher
   * signed it). Records of another origin are refused and counted as `forged`.
   */
  from?: string;
}

export class StateStore {
  readonly nodeId: string;
  readonly maxValueBytes: number;
  readonly maxKeyBytes: number;
  readonly tombstoneHorizonMs: number;
  readonly #kv: KvStore;
  readonly #now: () => number;
  readonly #clock: HybridClock;
  readonly #book: Bookkeeping;
  readonly #serial = new Serial();
  #pending: Array<{
    key: string;
    value: Uint8Array | null;
    resolve: (r: StateRecord) => void;
    reject: (e: unknown) => void;
  }> = [];
  #closed = false;
  /**
   * Stable GC's pending snapshot of the members' summaries: the versions all had (`stable`) and
   * those any had (`seen`). In memory only: after a restart the first collectGarbage takes one.
   */
  #gcSnapshot: { stable: VersionVector; seen: VersionVector } | undefined;

  private constructor(opts: StateStoreOptions, clock: HybridClock, book: Bookkeeping) {
    this.nodeId = opts.nodeId;
    this.#kv = opts.store;
    this.#now = opts.now ?? Date.now;
    this.maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.maxKeyBytes = opts.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
    this.tombstoneHorizonMs = opts.tombstoneHorizonMs ?? DEFAULT_TOMBSTONE_HORIZON_MS;
    this.#clock = clock;
    this.#book = book;
  }

  /** Opens the state in `opts.store`, restoring everything a previous run persisted. */
  static async open(opts: StateStoreOptions): Promise<StateStore> {
    if (!isValidOrigin(opts.nodeId)) throw new TypeError(`invalid node id ${opts.nodeId}`);
    const kv = opts.store;
    const mark = await kv.get(HLC_KEY);
    const clock = new HybridClock({
      now: opts.now,
      maxDriftMs: opts.maxDriftMs ?? DEFAULT_MAX_DRIFT_MS,
      last: mark === undefined ? undefined : decodeHlcMark(mark),
    });
    const floor = await kv.get(OWN_FLOOR_KEY);
    const book: Bookkeeping = {
      had: new VersionVector(),
      held: new VersionVector(),
      liveKeys: 0,
      tombstones: 0,
      ownFloor: floor === undefined ? 0 : decodeOwnFloor(floor),
    };
    for await (const [k, v] of kv.entries({ prefix: HAD_PREFIX })) {
      try {
        book.had.set(k.slice(HAD_PREFIX.length), RangeSet.decode(v));
      } catch (err) {
        throw new CorruptDataError(`version set ${JSON.stringify(k)}: ${(err as Error).message}`);
      }
    }
    let held = 0;
    for await (const k of kv.keys({ prefix: HELD_PREFIX })) {
      const { origin, seq } = parseVersionKey(k, HELD_PREFIX);
      book.held.add(origin, seq);
      held++;
    }
    for await (const _k of kv.keys({ prefix: TOMBSTONE_PREFIX })) book.tombstones++;
    book.liveKeys = held - book.tombstones;
    return new StateStore(opts, clock, book);
  }

  #checkOpen(): void {
    if (this.#closed) throw new StoreClosedError();
  }

  /** Throws InvalidKeyError unless `key` is non-empty, well-formed Unicode, within maxKeyBytes. */
  validateKey(key: string): void {
    checkKey(key, this.maxKeyBytes);
  }

  /**
   * Writes `value` (null deletes) as a local change. Resolves with the record, to broadcast, once
   * it is on disk. Rejects with InvalidKeyError / ValueTooLargeError for bad input.
   */
  write(key: string, value: Uint8Array | null): Promise<StateRecord> {
    try {
      this.#checkOpen();
      this.validateKey(key);
      if (value !== null && value.length > this.maxValueBytes) {
        throw new ValueTooLargeError(value.length, this.maxValueBytes);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    const copy = value === null ? null : value.slice();
    return new Promise((resolve, reject) => {
      this.#pending.push({ key, value: copy, resolve, reject });
      if (this.#pending.length === 1) void this.#serial.run(() => this.#flushWrites());
    });
  }

  async #flushWrites(): Promise<void> {
    const group = this.#pending.splice(0, WRITE_GROUP_MAX);
    if (this.#pending.length > 0) void this.#serial.run(() => this.#flushWrites());
    if (group.length === 0) return;
    try {
      const m = new Mutation(this.#book);
      await this.#load(
        m,
        group.map((w) => w.key),
      );
      const out: StateRecord[] = [];
      for (const w of group) {
        const cur = m.current(w.key);
        // The new write must win over what this node has for the key, whatever the wall clock says.
        if (cur !== undefined) this.#clock.observe(cur.hlc);
        const seq = m.lastOwnVersion(this.nodeId) + 1;
        const rec: StateRecord = {
          key: w.key,
          value: w.value,
          hlc: this.#clock.now(),
          origin: this.nodeId,
          seq,
        };
        m.markHad(this.nodeId, seq);
        m.replace(cur, rec);
        out.push(rec);
      }
      await this.#kv.batch(m.finish(this.#clock.last), { sync: true });
      m.commit();
      group.forEach((w, i) => w.resolve(out[i]));
    } catch (err) {
      for (const w of group) w.reject(err);
    }
  }

  /** Reads the current records of `keys` (not yet known to `m`) into `m`. */
  async #load(m: Mutation, keys: readonly string[]): Promise<void> {
    const wanted = [...new Set(keys)].filter((k) => !m.knows(k));
    const vals = await this.#kv.getMany(wanted.map(recordKey));
    wanted.forEach((k, i) => {
      const v = vals[i];
      m.setStored(k, v === undefined ? undefined : decodeStoredRecord(k, v));
    });
  }

  /**
   * Merges remote records (a broadcast, or a batch from anti-entropy) and then marks `cleared`
   * versions as had, in one durable batch. Invalid records and records stamped more than
   * maxDriftMs ahead are refused and counted; they are not marked as had, so they come again, and
   * if any is refused the cleared versions are ignored too (see SyncReceiver for a session).
   */
  apply(
    records: readonly StateRecord[],
    cleared?: VersionVector,
    opts: ApplyOptions = {},
  ): Promise<ApplyResult> {
    this.#checkOpen();
    return this.#serial.run(async () => {
      const res: ApplyResult = {
        changes: [],
        applied: 0,
        superseded: 0,
        duplicates: 0,
        rejected: 0,
        clockDrift: 0,
        cleared: 0,
        forged: 0,
        ownClaimed: 0,
      };
      const m = new Mutation(this.#book);
      const fresh: StateRecord[] = [];
      const claims = new RangeSet();
      // fixed for the whole batch: records accepted in it do not move the bound
      const ownWindow = this.#ownWindow(m);
      const ownBefore = m.lastOwnVersion(this.nodeId);
      for (const r of records) {
        if (!isValidRecord(r, this.maxKeyBytes, MAX_VALUE_BYTES_LIMIT)) {
          res.rejected++;
          continue;
        }
        if (opts.from !== undefined && r.origin !== opts.from) {
          res.rejected++;
          res.forged++;
          continue;
        }
        // A version of this node's own origin that it does not have is taken like any other:
        // it was issued after the copy this data directory was restored from, or it is someone
        // else's record in this node's name, which every other member takes too. Only versions
        // beyond MAX_OWN_CLAIM_AHEAD are not (they would use up this node's versions).
        if (r.origin === this.nodeId) {
          if (!ownWindow.has(r.seq)) {
            res.duplicates++;
            continue;
          }
          claims.add(r.seq);
        }
        if (m.hasVersion(r.origin, r.seq)) {
          res.duplicates++;
          continue;
        }
        try {
          this.#clock.check(r.hlc);
        } catch {
          res.rejected++;
          res.clockDrift++;
          continue;
        }
        m.markHad(r.origin, r.seq);
        fresh.push(r);
      }
      await this.#load(
        m,
        fresh.map((r) => r.key),
      );
      for (const r of fresh) {
        this.#clock.observe(r.hlc);
        const cur = m.current(r.key);
        if (cur !== undefined && compareRecords(r, cur) <= 0) {
          res.superseded++;
          continue;
        }
        const rec: StateRecord = {
          key: r.key,
          value: r.value === null ? null : r.value.slice(),
          hlc: { wall: r.hlc.wall, counter: r.hlc.counter },
          origin: r.origin,
          seq: r.seq,
        };
        m.replace(cur, rec);
        res.applied++;
        res.changes.push({
          key: rec.key,
          value: rec.value,
          version: hlcToString(rec.hlc),
          record: rec,
        });
      }
      const own = cleared?.get(this.nodeId)?.intersect(ownWindow);
      this.#skipClaimed(m, own === undefined ? claims : claims.union(own), ownWindow);
      // A refused record may be the one that cleared those versions: keep them missing for now.
      if (res.rejected === 0) {
        for (const [origin, set] of cleared?.entries() ?? []) {
          if (origin === this.nodeId) {
            if (own !== undefined && this.#fillsOwnHoles(m, own))
              res.cleared += m.markHadRanges(origin, own);
          } else if (isValidOrigin(origin)) {
            res.cleared += m.markHadRanges(origin, set);
          }
        }
      }
      res.ownClaimed = m.lastOwnVersion(this.nodeId) - ownBefore;
      if (m.isEmpty) return res;
      // Records must be durable before they are acknowledged as had, and so must a raised
      // own-version floor (lost, a write before the next session could reuse a version a peer
      // holds); cleared marks alone may be lost in a crash (they are offered again), so they do
      // not pay for an fsync.
      await this.#kv.batch(m.finish(this.#clock.last), {
        sync: fresh.length > 0 || m.raisesOwnFloor,
      });
      m.commit();
      return res;
    });
  }

  /**
   * Takes note of the versions of this node's own origin that a peer claims to have (its
   * summary): this node's next writes take versions above the highest of them (up to
   * MAX_OWN_CLAIM_AHEAD above its last), which the peer does not believe it has. The claimed
   * versions are not marked as had: those this node lacks (written after the copy its data
   * directory was restored from, or in its name by someone else) it fetches like any other.
   * Returns how far the next version moved.
   */
  noteClaims(peerSummary: VersionVector): Promise<number> {
    this.#checkOpen();
    const claimed = peerSummary.get(this.nodeId);
    if (claimed === undefined || (claimed.max ?? 0) <= this.#lastOwnVersion())
      return Promise.resolve(0);
    return this.#serial.run(async () => {
      const m = new Mutation(this.#book);
      const n = this.#skipClaimed(m, claimed);
      if (m.isEmpty) return n;
      await this.#kv.batch(m.finish(undefined), { sync: true });
      m.commit();
      return n;
    });
  }

  /** The highest version of this node's own origin taken: had, or claimed by a peer. */
  #lastOwnVersion(): number {
    return Math.max(this.#book.had.get(this.nodeId)?.max ?? 0, this.#book.ownFloor);
  }

  /** Whether marking `own` (cleared versions of this node's origin) keeps its own set compact. */
  #fillsOwnHoles(m: Mutation, own: RangeSet): boolean {
    const had = m.had(this.nodeId) ?? new RangeSet();
    return had.union(own).rangeCount <= had.rangeCount + MAX_OWN_CLEARED_NEW_RANGES;
  }

  /**
   * The versions of this node's own origin it takes claims and records of: 1 to MAX_OWN_CLAIM_AHEAD
   * above its last (had or claimed) version.
   */
  #ownWindow(m: Mutation): RangeSet {
    return RangeSet.fromRanges([[1, m.lastOwnVersion(this.nodeId) + MAX_OWN_CLAIM_AHEAD]]);
  }

  /**
   * Raises the version this node's next write starts from to the highest claim of its own origin
   * (up to MAX_OWN_CLAIM_AHEAD above its last): a claim there is a record of this node's origin
   * that this node does not have, and its next write must not take a version the claimant
   * believes it has. Returns how far the next version moved.
   */
  #skipClaimed(m: Mutation, claimed: RangeSet, window = this.#ownWindow(m)): number {
    const ahead = claimed.intersect(window);
    if (ahead.isEmpty) return 0;
    return m.raiseOwnFloor(this.nodeId, ahead.max!);
  }

  /** Marks versions a peer reported as cleared (see apply). */
  applyCleared(cleared: VersionVector): Promise<ApplyResult> {
    return this.apply([], cleared);
  }

  /** Applies one batch received from anti-entropy: its records, then its cleared versions. */
  applyBatch(batch: ChangeBatch): Promise<ApplyResult> {
    return this.apply(batch.records, batch.cleared);
  }

  /** The current record of `key`, tombstones included. */
  async getRecord(key: string): Promise<StateRecord | undefined> {
    this.#checkOpen();
    const v = await this.#kv.get(recordKey(key));
    return v === undefined ? undefined : decodeStoredRecord(key, v);
  }

  /** The live value of `key`, or undefined if it is absent or deleted. */
  async get(key: string): Promise<StateEntry | undefined> {
    const r = await this.getRecord(key);
    if (r === undefined || r.value === null) return undefined;
    return { key, value: r.value, version: hlcToString(r.hlc), record: r };
  }

  /** Live keys starting with `prefix`, in key order (UTF-8), after `after`, at most `limit`. */
  async list(prefix = '', opts: { limit?: number; after?: string } = {}): Promise<ListEntry[]> {
    this.#checkOpen();
    const out: ListEntry[] = [];
    if (opts.limit !== undefined && opts.limit <= 0) return out;
    const range = opts.after === undefined ? {} : { gt: recordKey(opts.after) };
    for await (const [k, v] of this.#kv.entries({ prefix: recordKey(prefix), ...range })) {
      const h = decodeStoredHeader(v);
      if (h.size < 0) continue;
      out.push({ key: k.slice(RECORD_PREFIX.length), size: h.size, version: hlcToString(h.hlc) });
      if (opts.limit !== undefined && out.length >= opts.limit) break;
    }
    return out;
  }

  /** Live entries starting with `prefix`, in key order (for the initial state of a watch). */
  async *entries(prefix = ''): AsyncIterable<StateEntry> {
    for await (const r of this.records(prefix)) {
      if (r.value !== null)
        yield { key: r.key, value: r.value, version: hlcToString(r.hlc), record: r };
    }
  }

  /** Every current record starting with `prefix`, tombstones included. */
  async *records(prefix = ''): AsyncIterable<StateRecord> {
    this.#checkOpen();
    for await (const [k, v] of this.#kv.entries({ prefix: recordKey(prefix) })) {
      yield decodeStoredRecord(k.slice(RECORD_PREFIX.length), v);
    }
  }

  /** Per origin, the versions this node has (held or cleared). A copy. */
  summary(): VersionVector {
    return this.#book.had.clone();
  }

  /**
   * What a peer with summary `peer` lacks: batches of records, the last one also carrying the
   * cleared versions (see streamChanges for when those are left out).
   */
  changesSince(peer: VersionVector, opts: ChangesOptions = {}): AsyncGenerator<ChangeBatch> {
    this.#checkOpen();
    return streamChanges(this.#kv, this.#book, peer, opts);
  }

  /**
   * Drops tombstones older than tombstoneHorizonMs at `now`, and tombstones every member has, in
   * two steps (see gc.ts): `members` are the members' summaries, this node's included (the latest
   * known; a down member's last one). A call takes a snapshot of them unless one is pending; a later
   * call, once this node has every version some member had in the snapshot, collects the
   * tombstones that every member had in it, and takes the next snapshot.
   */
  collectGarbage(now: number = this.#now(), members?: readonly VersionVector[]): Promise<GcResult> {
    this.#checkOpen();
    let stable: VersionVector | undefined;
    if (members !== undefined) {
      const snap = this.#gcSnapshot;
      if (snap === undefined || this.#book.had.containsAll(snap.seen)) {
        stable = snap?.stable;
        this.#gcSnapshot = {
          stable: VersionVector.intersectAll(members),
          seen: VersionVector.unionAll(members),
        };
      }
    }
    return collectGarbage({
      kv: this.#kv,
      book: this.#book,
      serial: this.#serial,
      now,
      horizonMs: this.tombstoneHorizonMs,
      stable,
    });
  }

  stats(): StateStats {
    return {
      liveKeys: this.#book.liveKeys,
      tombstones: this.#book.tombstones,
      origins: this.#book.had.originCount,
      summaryRanges: this.#book.had.rangeCount,
      localSeq: this.#lastOwnVersion(),
      hlc: hlcToString(this.#clock.last),
    };
  }

  /** The HLC high-water mark: every timestamp issued or accepted so far is at most this. */
  get lastHlc(): Hlc {
    return this.#clock.last;
  }

  /** Waits for pending mutations, then refuses further use. Does not close the KvStore. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#serial.idle();
  }
}
