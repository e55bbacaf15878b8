// Chunks arriving at this agent, told to whoever waits for them: the chunk servers of connected
// pullers (which pass them on as `have` messages) and readers of an image's content waiting for a
// chunk (who are also told when the pull that would bring it failed on this agent's own store).
import type { Bitfield } from './bitfield.js';
import { HAVE_BATCH_MS } from './options.js';

export class ChunkEvents {
  readonly #subs = new Map<string, Set<(i: number[]) => void>>();
  readonly #readerFailures = new Map<string, Set<(err: Error) => void>>();
  readonly #pending = new Map<string, number[]>();
  #timer: NodeJS.Timeout | undefined;

  /** Chunk `i` of image `digest` is held now: listeners hear of it within HAVE_BATCH_MS. */
  got(digest: string, i: number): void {
    let list = this.#pending.get(digest);
    if (!list) this.#pending.set(digest, (list = []));
    list.push(i);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      for (const [d, idx] of this.#pending)
        for (const fn of [...(this.#subs.get(d) ?? [])]) fn(idx);
      this.#pending.clear();
    }, HAVE_BATCH_MS);
  }

  /** Calls `onHave` with each batch of new chunks of `digest`; returns the unsubscribe. */
  subscribe(digest: string, onHave: (i: number[]) => void): () => void {
    let set = this.#subs.get(digest);
    if (!set) this.#subs.set(digest, (set = new Set()));
    set.add(onHave);
    return () => set.delete(onHave);
  }

  /** The pull of `digest` failed on our own store (a full disk): its readers stop waiting. */
  failReaders(digest: string, err: Error): void {
    for (const fail of [...(this.#readerFailures.get(digest) ?? [])]) fail(err);
  }

  /** Resolves when chunk `i` is set in `bits`; rejects on abort or failReaders. */
  waitFor(digest: string, bits: Bitfield, i: number, signal?: AbortSignal): Promise<void> {
    if (bits.has(i)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = () => {
        unsubscribe();
        this.#readerFailures.get(digest)?.delete(onFailure);
        signal?.removeEventListener('abort', onAbort);
      };
      const unsubscribe = this.subscribe(digest, () => {
        if (bits.has(i)) {
          done();
          resolve();
        }
      });
      const onAbort = () => {
        done();
        reject(signal?.reason);
      };
      const onFailure = (err: Error) => {
        done();
        reject(err);
      };
      let failures = this.#readerFailures.get(digest);
      if (!failures) this.#readerFailures.set(digest, (failures = new Set()));
      failures.add(onFailure);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
