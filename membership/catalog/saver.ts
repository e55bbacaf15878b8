// The disk copy of the catalogs received from other nodes: memory answers queries at once, and
// this writes what changed a moment later, in one batch, so that a restarted agent answers from
// the last known catalogs before anti-entropy brings newer ones.
import type { KvStore } from '../../storage/index.js';
import { Backoff } from '../net/backoff.js';

/**
 * Received catalogs are written to the store this long after the first change not yet written,
 * together with every other change in between (one batch; stop() writes at once). Memory is what
 * answers: the disk copy is only for answering at once after a restart, and a change a crash
 * loses before it is written comes back by anti-entropy (as it always could). Writing each
 * change as it came cost every agent a level batch and a wakeup from the disk thread per change
 * anywhere in the cluster. 10 agents, 120 changes at one agent 150 ms apart, CPU per change on
 * each receiving agent: 2.2 ms (1.58-3.00) writing each, 1.1 ms (0.52-1.48) with this delay,
 * three alternating pairs (docs/benchmarks.md, sixteenth session).
 */
export const CATALOG_SAVE_DELAY_MS = 1_000;

/** Longest wait before writing again after failed writes (ms); each failure doubles the wait. */
const SAVE_BACKOFF_MAX_MS = 60_000;

export interface CatalogSaverDeps {
  store: Pick<KvStore, 'batch'>;
  /** The signed bytes held now for `node`, undefined when it is forgotten. */
  signed(node: string): Uint8Array | undefined;
  logger: { info(o: object, m?: string): void; warn(o: object, m?: string): void };
  /** Default CATALOG_SAVE_DELAY_MS. */
  delayMs?: number;
}

export class CatalogSaver {
  readonly #d: CatalogSaverDeps;
  readonly #delayMs: number;
  /** Nodes whose catalog changed in memory and is not written yet. */
  readonly #unsaved = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #queued = false;
  #saving: Promise<void> = Promise.resolve();
  /** After failed writes (a full disk), the next waits longer. */
  readonly #backoff: Backoff;
  /** Until start(), as after stop(): nothing is written by timer. */
  #stopped = true;

  constructor(deps: CatalogSaverDeps) {
    this.#d = deps;
    this.#delayMs = deps.delayMs ?? CATALOG_SAVE_DELAY_MS;
    this.#backoff = new Backoff(2 * this.#delayMs, SAVE_BACKOFF_MAX_MS);
  }

  start(): void {
    this.#stopped = false;
  }

  /** No more timed writes: what is left is written by the next flush(). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Writes the current signed catalog of `node` (or its absence) to the store, the save delay
   * after the first change not yet written, with every change since (see the constant).
   */
  save(node: string): void {
    this.#unsaved.add(node);
    if (this.#timer !== undefined || this.#queued || this.#stopped) return;
    // after failed writes (a full disk), 2x longer per failure, up to a minute
    const failing = this.#backoff.failures > 0;
    this.#timer = setTimeout(
      () => void this.flush().catch(() => {}),
      failing ? this.#backoff.until - Date.now() : this.#delayMs,
    );
    this.#timer.unref?.();
  }

  /**
   * Writes what is not written yet, behind any write under way. Writes are one batch at a time,
   * each of the latest bytes of every node changed since the last, so the store never ends on an
   * older version than memory holds.
   */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#unsaved.size === 0 || this.#queued) return this.#saving;
    this.#queued = true;
    const run = async () => {
      this.#queued = false;
      const nodes = [...this.#unsaved];
      this.#unsaved.clear();
      if (nodes.length === 0) return;
      try {
        await this.#d.store.batch(
          nodes.map((n) => {
            const bytes = this.#d.signed(n);
            return bytes
              ? { type: 'put' as const, key: `node/${n}`, value: bytes }
              : { type: 'del' as const, key: `node/${n}` };
          }),
        );
        if (this.#backoff.failures > 0) this.#d.logger.info({}, 'received catalogs written again');
        this.#backoff.reset();
      } catch (err) {
        // not written: tried again after the delay (with their latest bytes then); said once
        this.#backoff.fail(Date.now());
        if (this.#backoff.failures === 1)
          this.#d.logger.warn(
            { err: (err as Error).message },
            'could not write received catalogs; retrying, less often while it fails',
          );
        for (const n of nodes) this.save(n);
        throw err;
      }
    };
    this.#saving = this.#saving.then(run, run);
    return this.#saving;
  }
}
