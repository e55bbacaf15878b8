// Group commit of the chunk index. Index updates (put/del of entries) join the open batch; a
// commit makes the pack bytes durable (fdatasync of the packs written since the last sync, fsync
// of packs/ if a pack was created), then writes the whole batch to level in one atomic, synced
// write. Level writes happen strictly in batch order, so an update never overtakes an earlier one.
//
// Commits are pipelined in two stages: the fsync of batch N+1 runs while the level write of
// batch N does (the two fsyncs of a commit cost about the same), but the level write of N+1
// waits for both its own fsync and the level write of N.
//
// When a batch starts:
//   - at once (next turn of the event loop) if someone waits for it (put with flush, flush());
//   - else after `delayMs` (writes with { flush: false } become durable within about that), or
//     when it holds `maxOps` updates;
//   - never while another batch is in its fsync stage: updates arriving meanwhile form the next
//     batch, so under load every commit carries many updates and the fsync cost is shared.
//
// A failed commit (fsync or level error) fails that batch and every later one (running or open):
// the store is told (`failed`) so it forgets every entry that was not durable, as a crash would,
// and everyone waiting gets a ChunkStoreFailedError. The failure is sticky (like LevelDB's own
// write errors, and because after a failed fsync nobody knows what the page cache still holds):
// enqueue(), wait() and flush() throw it from then on, until the store is reopened.
import { ChunkStoreFailedError } from '../errors.js';
import type { IndexDb, IndexOp } from './index-db.js';

export interface Batch {
  readonly seq: number;
  readonly ops: IndexOp[];
  /** Resolves once the batch is durable; rejects if its commit failed. */
  readonly done: Promise<void>;
}

interface OpenBatch extends Batch {
  resolve: () => void;
  reject: (err: unknown) => void;
  /** Someone waits: commit as soon as possible. */
  urgent: boolean;
  /** Its delay ran out or it is full: commit as soon as the fsync stage is free. */
  due: boolean;
}

export interface CommitterDeps {
  db: Pick<IndexDb, 'batch'>;
  /** fsync pack data and level writes. False: no fsync at all (tests and benchmarks). */
  sync: boolean;
  /** Unit: ms. */
  delayMs: number;
  maxOps: number;
  /** Makes every pack write finished so far durable. First stage of a commit (sync only). */
  syncFiles: () => Promise<void>;
  /** A commit failed: batches after `committedSeq` fail. Called before their waiters see it. */
  failed: (committedSeq: number, err: unknown) => void;
}

export class Committer {
  readonly #d: CommitterDeps;
  /** Batches not settled yet: the open one and the running ones. */
  readonly #batches = new Map<number, OpenBatch>();
  #pending: OpenBatch | undefined;
  /** The batch in its fsync stage. */
  #syncing: OpenBatch | undefined;
  /** Settles when the level write of the last started batch has settled: true if it committed. */
  #levelTail: Promise<boolean> = Promise.resolve(true);
  /** Batches up to this one fail (a commit failed while they were running or open). */
  #failedThrough = 0;
  #failure: ChunkStoreFailedError | undefined;
  #timer: NodeJS.Timeout | undefined;
  #kickScheduled = false;
  #lastSeq = 0;
  #committed = 0;

  constructor(deps: CommitterDeps) {
    this.#d = deps;
  }

  /** The last batch that committed; entries of batches up to it are durable. */
  get committedSeq(): number {
    return this.#committed;
  }

  /** A commit failed (see the header). */
  get failed(): boolean {
    return this.#failure !== undefined;
  }

  /** Throws the failure of an earlier commit, if there was one. */
  check(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Adds an update to the open batch (opening one if needed) and returns that batch. */
  enqueue(op: IndexOp): Batch {
    this.check();
    let b = this.#pending;
    if (b === undefined) {
      b = this.#open();
      this.#pending = b;
    }
    b.ops.push(op);
    if (b.ops.length >= this.#d.maxOps && !b.due) {
      b.due = true;
      this.#kick();
    }
    return b;
  }

  /** Waits until batch `seq` is durable (at once if it is not open or running any more). */
  wait(seq: number): Promise<void> {
    const b = this.#batches.get(seq);
    if (b === undefined)
      return this.#failure === undefined ? Promise.resolve() : Promise.reject(this.#failure);
    this.#urge(b);
    return b.done;
  }

  /** Waits until every update enqueued so far is durable. */
  flush(): Promise<void> {
    return this.wait(this.#lastSeq);
  }

  /**
   * Runs a whole commit, even with no update pending, and waits for it: every pack write
   * finished before the call is synced (and retired packs are closed) when this resolves.
   */
  barrier(): Promise<void> {
    this.check();
    this.#pending ??= this.#open();
    return this.wait(this.#pending.seq);
  }

  /** Flushes and stops the timer. */
  async close(): Promise<void> {
    try {
      while (this.#batches.size > 0) await this.flush();
    } finally {
      clearTimeout(this.#timer);
    }
  }

  #open(): OpenBatch {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // rejections reach whoever awaits; none is unhandled
    const b: OpenBatch = {
      seq: ++this.#lastSeq,
      ops: [],
      done,
      resolve,
      reject,
      urgent: false,
      due: false,
    };
    this.#batches.set(b.seq, b);
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      b.due = true;
      this.#kick();
    }, this.#d.delayMs);
    this.#timer.unref();
    return b;
  }

  /** Marks a batch as waited for; a running one needs nothing, an open one starts soon. */
  #urge(b: OpenBatch): void {
    if (b.urgent) return;
    b.urgent = true;
    if (this.#kickScheduled) return;
    // next turn: write completions of the same poll phase join this batch
    this.#kickScheduled = true;
    setImmediate(() => {
      this.#kickScheduled = false;
      this.#kick();
    });
  }

  /** Starts the open batch if it should go and the fsync stage is free. */
  #kick(): void {
    const b = this.#pending;
    if (this.#syncing !== undefined || b === undefined || !(b.urgent || b.due)) return;
    this.#pending = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    void this.#run(b);
  }

  async #run(b: OpenBatch): Promise<void> {
    this.#syncing = b;
    let err: { e: unknown } | undefined;
    try {
      if (this.#d.sync) await this.#d.syncFiles();
    } catch (e) {
      err = { e };
    }
    this.#syncing = undefined;
    const prev = this.#levelTail;
    let release!: (ok: boolean) => void;
    this.#levelTail = new Promise((r) => (release = r));
    this.#kick(); // the next batch's fsync overlaps our level write
    const prevOk = await prev;
    if (err === undefined && (!prevOk || b.seq <= this.#failedThrough))
      err = { e: this.#failure ?? new ChunkStoreFailedError('an earlier commit failed') };
    if (err === undefined) {
      try {
        await this.#d.db.batch(b.ops, { sync: this.#d.sync });
      } catch (e) {
        err = { e };
      }
    }
    this.#batches.delete(b.seq);
    if (err === undefined) {
      this.#committed = b.seq;
      release(true);
      b.resolve();
      return;
    }
    if (b.seq > this.#failedThrough) this.#fail(err.e);
    release(false);
    b.reject(this.#failure);
  }

  /** A commit failed: it and every batch started or opened so far fail. */
  #fail(cause: unknown): void {
    const e = cause instanceof ChunkStoreFailedError ? cause : new ChunkStoreFailedError(cause);
    this.#failedThrough = this.#lastSeq;
    this.#failure = e;
    const open = this.#pending;
    this.#pending = undefined;
    if (open !== undefined) this.#batches.delete(open.seq);
    try {
      this.#d.failed(this.#committed, e);
    } finally {
      open?.reject(e);
    }
  }
}
