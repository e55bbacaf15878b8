// Per-origin version tracking (as in superfly/corrosion): every origin numbers its own writes
// 1, 2, 3 ...; a node keeps, per origin, the set of those versions it "has": it holds the record,
// or it knows the version was cleared (superseded by a later write to the same key). That map is
// the node's summary; two nodes exchange summaries and each sends the other exactly the versions
// it lacks. A summary is O(origins x gaps), not O(keys). Pure.
import { RangeSet, type Range } from './range-set.js';

export { RangeSet, type Range };

export class VersionVector {
  readonly #m = new Map<string, RangeSet>();

  static from(entries: Iterable<readonly [string, RangeSet]>): VersionVector {
    const v = new VersionVector();
    for (const [origin, set] of entries) if (!set.isEmpty) v.#m.set(origin, set.clone());
    return v;
  }

  /** The intersection of many vectors: the versions every one of them has (e.g. all members). */
  static intersectAll(vectors: readonly VersionVector[]): VersionVector {
    if (vectors.length === 0) return new VersionVector();
    let acc = vectors[0].clone();
    for (let i = 1; i < vectors.length; i++) acc = acc.intersect(vectors[i]);
    return acc;
  }

  /** The union of many vectors: the versions any of them has. */
  static unionAll(vectors: readonly VersionVector[]): VersionVector {
    let acc = new VersionVector();
    for (const v of vectors) acc = acc.union(v);
    return acc;
  }

  /** The versions of `origin`; undefined when there are none. Do not modify the returned set. */
  get(origin: string): RangeSet | undefined {
    return this.#m.get(origin);
  }

  /** The set for `origin`, created empty if missing (it is dropped again if left empty). */
  ensure(origin: string): RangeSet {
    let s = this.#m.get(origin);
    if (s === undefined) {
      s = new RangeSet();
      this.#m.set(origin, s);
    }
    return s;
  }

  /** Replaces the set of `origin` (removed when empty). */
  set(origin: string, set: RangeSet): void {
    if (set.isEmpty) this.#m.delete(origin);
    else this.#m.set(origin, set);
  }

  has(origin: string, seq: number): boolean {
    return this.#m.get(origin)?.has(seq) ?? false;
  }

  add(origin: string, seq: number): void {
    this.ensure(origin).add(seq);
  }

  addRange(origin: string, start: number, end: number): void {
    this.ensure(origin).addRange(start, end);
  }

  /** Removes one version; returns whether it was there. */
  delete(origin: string, seq: number): boolean {
    const s = this.#m.get(origin);
    if (s === undefined || !s.delete(seq)) return false;
    if (s.isEmpty) this.#m.delete(origin);
    return true;
  }

  /** Origins with at least one version (empty sets left by ensure() are skipped). */
  *origins(): IterableIterator<string> {
    for (const [o, s] of this.#m) if (!s.isEmpty) yield o;
  }

  *entries(): IterableIterator<[string, RangeSet]> {
    for (const [o, s] of this.#m) if (!s.isEmpty) yield [o, s];
  }

  /** Number of origins with at least one version. */
  get originCount(): number {
    let n = 0;
    for (const s of this.#m.values()) if (!s.isEmpty) n++;
    return n;
  }

  /** Number of ranges over all origins (the size of the summary on the wire). */
  get rangeCount(): number {
    let n = 0;
    for (const s of this.#m.values()) n += s.rangeCount;
    return n;
  }

  /** Number of versions over all origins. */
  get versionCount(): number {
    let n = 0;
    for (const s of this.#m.values()) n += s.size;
    return n;
  }

  get isEmpty(): boolean {
    return this.originCount === 0;
  }

  clone(): VersionVector {
    return VersionVector.from(this.#m);
  }

  equals(other: VersionVector): boolean {
    if (this.originCount !== other.originCount) return false;
    for (const [o, s] of this.entries()) {
      const t = other.get(o);
      if (t === undefined || !s.equals(t)) return false;
    }
    return true;
  }

  union(other: VersionVector): VersionVector {
    const out = this.clone();
    for (const [o, s] of other.entries()) {
      const mine = out.#m.get(o);
      out.#m.set(o, mine === undefined ? s.clone() : mine.union(s));
    }
    return out;
  }

  /** What this vector has and `other` lacks, per origin (origins with nothing missing left out). */
  difference(other: VersionVector): VersionVector {
    const out = new VersionVector();
    for (const [o, s] of this.entries()) {
      const t = other.get(o);
      out.set(o, t === undefined ? s.clone() : s.difference(t));
    }
    return out;
  }

  intersect(other: VersionVector): VersionVector {
    const out = new VersionVector();
    for (const [o, s] of this.entries()) {
      const t = other.get(o);
      if (t !== undefined) out.set(o, s.intersect(t));
    }
    return out;
  }

  /** True if this vector has every version `other` has. */
  containsAll(other: VersionVector): boolean {
    for (const [o, s] of other.entries()) {
      const mine = this.#m.get(o);
      if (mine === undefined || !mine.containsAll(s)) return false;
    }
    return true;
  }

  toString(): string {
    return [...this.entries()].map(([o, s]) => `${o}:${s.toString()}`).join(' ');
  }
}
