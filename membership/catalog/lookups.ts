// DHT lookups of service names the local catalog does not know, kept cheap and bounded: one lookup
// per name at a time (every query for it waits on that one), at most CATALOG_DHT_MAX_LOOKUPS
// names at once (a query beyond that is answered from the local catalog), and a name the DHT did
// not find is not looked up again for CATALOG_DHT_MISS_TTL_MS. A DNS client can send names
// as fast as it likes, and from a forged address: without these, each one would start a DHT walk.

/** A name the DHT did not find is answered "unknown" without a new lookup for this long (ms). */
export const CATALOG_DHT_MISS_TTL_MS = 2_000;
/** Most names looked up in the DHT at once. */
export const CATALOG_DHT_MAX_LOOKUPS = 4;
/** Most names remembered as not found (the oldest are forgotten first). */
export const CATALOG_DHT_MAX_MISSES = 4096;

export interface NameLookupDeps {
  /** Whether the local catalog knows the name (checked before and after a lookup). */
  knows(name: string): boolean;
  /** Asks the DHT who provides `name` and fetches their catalogs (bounded by its own timeout). */
  lookup(name: string): Promise<void>;
  now(): number;
}

export class NameLookups {
  readonly #d: NameLookupDeps;
  readonly #running = new Map<string, Promise<void>>();
  /** Names not found, until when (ms). */
  readonly #missed = new Map<string, number>();

  constructor(deps: NameLookupDeps) {
    this.#d = deps;
  }

  /** Lookups under way. */
  get running(): number {
    return this.#running.size;
  }

  /**
   * Looks `name` up if the catalog does not know it, and resolves when that lookup ends or
   * `signal` aborts (the lookup itself goes on for the other callers waiting on it).
   */
  async find(name: string, signal?: AbortSignal): Promise<void> {
    if (this.#d.knows(name)) return;
    const until = this.#missed.get(name);
    if (until !== undefined) {
      if (until > this.#d.now()) return;
      this.#missed.delete(name);
    }
    let p = this.#running.get(name);
    if (p === undefined) {
      if (this.#running.size >= CATALOG_DHT_MAX_LOOKUPS) return;
      p = this.#d
        .lookup(name)
        .catch(() => {})
        .finally(() => {
          this.#running.delete(name);
          if (!this.#d.knows(name)) this.#miss(name);
        });
      this.#running.set(name, p);
    }
    if (!signal) return p;
    if (signal.aborted) return;
    let onAbort!: () => void;
    const aborted = new Promise<void>((resolve) => {
      onAbort = resolve;
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      await Promise.race([p, aborted]);
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  #miss(name: string): void {
    this.#missed.delete(name);
    this.#missed.set(name, this.#d.now() + CATALOG_DHT_MISS_TTL_MS);
    for (const k of this.#missed.keys()) {
      if (this.#missed.size <= CATALOG_DHT_MAX_MISSES) break;
      this.#missed.delete(k);
    }
  }
}
