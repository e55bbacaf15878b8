// Id interner: maps member id strings to small integers so that a member table can keep its state
// in typed arrays indexed by that integer. A runtime uses one private interner per core (indices of
// reaped members are reused). The simulator shares one interner between all its cores, so 10,000
// cores x 10,000 members cost a few bytes per entry instead of an object each; a shared interner
// never reuses indices (another core may still use them).

import type { MemberMeta } from './types.js';

export class IdInterner {
  /** Metadata objects referenced by the tables that use this interner. */
  readonly metas = new MetaPool<MemberMeta>();
  private readonly byId = new Map<string, number>();
  private readonly ids: Array<string | undefined> = [];
  private readonly freeList: number[] = [];
  /** True when several cores share it: release() is then a no-op. */
  readonly shared: boolean;

  constructor(opts: { shared?: boolean } = {}) {
    this.shared = opts.shared ?? false;
  }

  /** The index of `id`, allocating one if new. */
  intern(id: string): number {
    const found = this.byId.get(id);
    if (found !== undefined) return found;
    const idx = this.freeList.length > 0 ? this.freeList.pop()! : this.ids.length;
    this.ids[idx] = id;
    this.byId.set(id, idx);
    return idx;
  }

  /** The index of `id`, or -1 if it was never interned (or was released). */
  lookup(id: string): number {
    return this.byId.get(id) ?? -1;
  }

  /** The id at `idx`. */
  idOf(idx: number): string {
    const id = this.ids[idx];
    if (id === undefined) throw new RangeError(`no id interned at ${idx}`);
    return id;
  }

  /** Forgets `idx` so it can be reused (private interners only). */
  release(idx: number): void {
    if (this.shared) return;
    const id = this.ids[idx];
    if (id === undefined) return;
    this.byId.delete(id);
    this.ids[idx] = undefined;
    this.freeList.push(idx);
  }

  /** One more than the largest index handed out: the size a table indexed by it needs. */
  get capacity(): number {
    return this.ids.length;
  }
}

/**
 * Reference-counted store of metadata objects, so a member table keeps a 4-byte reference per
 * member instead of a pointer (a pointer array per core would also cost the garbage collector a
 * scan of 10,000 x 10,000 slots in the simulator). The same object is stored once however many
 * tables refer to it. Reference 0 means "none".
 */
export class MetaPool<T extends object> {
  private readonly items: Array<T | undefined> = [undefined];
  private readonly refs: number[] = [0];
  private readonly byObject = new Map<T, number>();
  private readonly freeList: number[] = [];

  /** A reference to `item` (counted): store it, and release it when no longer used. */
  acquire(item: T): number {
    let r = this.byObject.get(item);
    if (r === undefined) {
      r = this.freeList.length > 0 ? this.freeList.pop()! : this.items.length;
      this.items[r] = item;
      this.refs[r] = 0;
      this.byObject.set(item, r);
    }
    this.refs[r]++;
    return r;
  }

  /** Adds `count` references to an existing reference (bulk loading). */
  addRefs(r: number, count: number): void {
    if (r !== 0) this.refs[r] += count;
  }

  release(r: number): void {
    if (r === 0 || --this.refs[r] > 0) return;
    const item = this.items[r];
    if (item !== undefined) this.byObject.delete(item);
    this.items[r] = undefined;
    this.freeList.push(r);
  }

  get(r: number): T | undefined {
    return this.items[r];
  }

  /** Distinct objects stored. */
  get size(): number {
    return this.byObject.size;
  }
}
