// The simulated cluster for the key/value state: replicas (a StateStore on a CrashStore "disk"),
// a simulated clock with per-replica skew, a lossy broadcast network with partitions, crashes and
// restarts, and anti-entropy rounds through the real wire encodings.
import type { Rng } from '../rng.js';
import {
  compareHlc,
  decodeBatch,
  encodeBatch,
  StateStore,
  syncPair,
  VersionVector,
  type StateRecord,
} from '../../../storage/state/index.js';
import { CrashStore } from './crash-store.js';

export interface SimConfig {
  replicas: number;
  keys: number;
  /** Probability a broadcast to one peer is lost. */
  loss: number;
  /** Largest broadcast delay, ms. */
  maxDelayMs: number;
  /** Largest clock skew of a replica, ms (either way). */
  maxSkewMs: number;
  maxDriftMs: number;
  tombstoneHorizonMs: number;
}

export interface Replica {
  readonly id: string;
  readonly disk: CrashStore;
  store: StateStore | undefined;
  /** Added to the simulated time to make this replica's physical clock. */
  skew: number;
  /** The last summary seen while it was up (what the runtime would know of a down member). */
  lastSummary: VersionVector;
}

interface Message {
  from: number;
  to: number;
  at: number;
  bytes: Uint8Array;
}

export interface Counters {
  writes: number;
  deletes: number;
  broadcastsSent: number;
  broadcastsLost: number;
  broadcastsDropped: number;
  broadcastApplied: number;
  aeRounds: number;
  aeBytes: number;
  aeRecords: number;
  crashes: number;
  restarts: number;
  partitions: number;
  gcCollected: number;
  driftRejected: number;
}

export class SimCluster {
  readonly cfg: SimConfig;
  readonly rng: Rng;
  readonly replicas: Replica[] = [];
  /** Every acknowledged write, by "origin\0seq". */
  readonly acked = new Map<string, StateRecord>();
  readonly counters: Counters = {
    writes: 0,
    deletes: 0,
    broadcastsSent: 0,
    broadcastsLost: 0,
    broadcastsDropped: 0,
    broadcastApplied: 0,
    aeRounds: 0,
    aeBytes: 0,
    aeRecords: 0,
    crashes: 0,
    restarts: 0,
    partitions: 0,
    gcCollected: 0,
    driftRejected: 0,
  };
  /** The recent events, printed when an invariant fails. */
  readonly log: string[] = [];
  time = 1_750_000_000_000;
  #queue: Message[] = [];
  #group: number[];

  constructor(cfg: SimConfig, rng: Rng) {
    this.cfg = cfg;
    this.rng = rng;
    this.#group = new Array<number>(cfg.replicas).fill(0);
  }

  event(msg: string): void {
    this.log.push(`t+${this.time % 1_000_000} ${msg}`);
    if (this.log.length > 60) this.log.shift();
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.cfg.replicas; i++) {
      const r: Replica = {
        id: `node-${i.toString().padStart(2, '0')}`,
        disk: new CrashStore(),
        store: undefined,
        skew: Math.round((this.rng() * 2 - 1) * this.cfg.maxSkewMs),
        lastSummary: new VersionVector(),
      };
      this.replicas.push(r);
      await this.#open(r);
    }
  }

  async #open(r: Replica): Promise<void> {
    r.store = await StateStore.open({
      store: r.disk.namespace('kv'),
      nodeId: r.id,
      now: () => this.time + r.skew,
      maxDriftMs: this.cfg.maxDriftMs,
      tombstoneHorizonMs: this.cfg.tombstoneHorizonMs,
    });
    r.lastSummary = r.store.summary();
  }

  up(): number[] {
    return this.replicas.flatMap((r, i) => (r.store === undefined ? [] : [i]));
  }

  connected(a: number, b: number): boolean {
    return this.#group[a] === this.#group[b];
  }

  key(): string {
    return `k${this.rng.int(this.cfg.keys).toString().padStart(3, '0')}`;
  }

  /** A local write or delete at replica i, then its broadcast to every peer (lossy, delayed). */
  async write(i: number): Promise<void> {
    const r = this.replicas[i];
    if (r.store === undefined) return;
    const key = this.key();
    const del = this.rng.chance(0.2);
    const value = del ? null : new Uint8Array(1 + this.rng.int(40)).map(() => this.rng.int(256));
    const rec = await r.store.write(key, value);
    this.acked.set(`${rec.origin}\0${rec.seq}`, rec);
    if (del) this.counters.deletes++;
    else this.counters.writes++;
    this.event(`${r.id} ${del ? 'del' : 'put'} ${key} seq=${rec.seq}`);
    const bytes = encodeBatch({ records: [rec], cleared: new VersionVector() });
    for (let j = 0; j < this.replicas.length; j++) {
      if (j === i) continue;
      this.counters.broadcastsSent++;
      if (this.rng.chance(this.cfg.loss)) {
        this.counters.broadcastsLost++;
        continue;
      }
      this.#queue.push({
        from: i,
        to: j,
        at: this.time + this.rng.int(this.cfg.maxDelayMs),
        bytes,
      });
    }
  }

  /** Delivers the broadcasts that are due (all of them with `all`). */
  async deliver(all = false): Promise<void> {
    const due = all ? this.#queue : this.#queue.filter((m) => m.at <= this.time);
    this.#queue = all ? [] : this.#queue.filter((m) => m.at > this.time);
    for (const m of due) {
      const to = this.replicas[m.to].store;
      if (to === undefined || !this.connected(m.from, m.to)) {
        this.counters.broadcastsDropped++;
        continue;
      }
      const res = await to.apply(decodeBatch(m.bytes).records);
      this.counters.broadcastApplied += res.applied;
      this.counters.driftRejected += res.clockDrift;
    }
  }

  /** One anti-entropy round between i and a random reachable peer; maybe writes in between. */
  async antiEntropy(i: number, interleave: boolean): Promise<void> {
    const a = this.replicas[i];
    const peers = this.up().filter((j) => j !== i && this.connected(i, j));
    if (a.store === undefined || peers.length === 0) return;
    const j = this.rng.pick(peers);
    const b = this.replicas[j];
    const res = await syncPair(a.store, b.store!, {
      maxRecords: 1 + this.rng.int(8),
      afterBatch: interleave
        ? async () => {
            if (this.rng.chance(0.3)) await this.write(this.rng.chance(0.5) ? i : j);
          }
        : undefined,
    });
    this.counters.aeRounds++;
    for (const d of [res.toA, res.toB]) {
      this.counters.aeBytes += d.summaryBytes + d.batchBytes;
      this.counters.aeRecords += d.records;
      this.counters.driftRejected += d.totals.rejected;
    }
    this.event(`ae ${a.id}<->${b.id} toA=${res.toA.records}r toB=${res.toB.records}r`);
  }

  partition(): void {
    const groups = 2 + this.rng.int(2);
    this.#group = this.replicas.map(() => this.rng.int(groups));
    this.counters.partitions++;
    this.event(`partition ${this.#group.join('')}`);
  }

  heal(): void {
    this.#group.fill(0);
    this.event('heal');
  }

  /** Power loss at replica i: the process state is gone, the disk keeps what was durable. */
  async crash(i: number): Promise<void> {
    const r = this.replicas[i];
    if (r.store === undefined) return;
    r.lastSummary = r.store.summary();
    r.store = undefined;
    await r.disk.crash();
    this.counters.crashes++;
    this.event(`crash ${r.id}`);
  }

  async restart(i: number): Promise<void> {
    const r = this.replicas[i];
    if (r.store !== undefined) return;
    await this.#open(r);
    // The clock and the version counter never go back: above everything this node acknowledged.
    const store = r.store!;
    for (const w of this.acked.values()) {
      if (w.origin !== r.id) continue;
      if (compareHlc(store.lastHlc, w.hlc) < 0 || store.stats().localSeq < w.seq) {
        throw new Error(`${r.id} restarted below its acknowledged write ${w.seq}`);
      }
    }
    this.counters.restarts++;
    this.event(`restart ${r.id}`);
  }

  /** Tombstone GC at replica i, given every replica's (last known) summary. */
  async gc(i: number): Promise<void> {
    const r = this.replicas[i];
    if (r.store === undefined) return;
    const summaries = this.replicas.map((x) => x.store?.summary() ?? x.lastSummary);
    const res = await r.store.collectGarbage(undefined, summaries);
    this.counters.gcCollected += res.collected;
    if (res.collected > 0) this.event(`gc ${r.id} collected=${res.collected}`);
  }

  refreshSummaries(): void {
    for (const r of this.replicas) if (r.store !== undefined) r.lastSummary = r.store.summary();
  }

  /** Heals everything, restarts every replica, delivers everything, syncs until all agree. */
  async quiesce(): Promise<number> {
    this.heal();
    for (let i = 0; i < this.replicas.length; i++) await this.restart(i);
    // Let every clock pass every timestamp issued, so no change is refused for drift any more.
    this.time += 10 * this.cfg.maxDriftMs;
    await this.deliver(true);
    const n = this.replicas.length;
    let rounds = 0;
    for (let pass = 0; pass < 2; pass++) {
      for (let i = 0; i < n; i++) {
        await syncPair(this.replicas[i].store!, this.replicas[(i + 1) % n].store!);
        rounds++;
      }
    }
    return rounds;
  }
}
