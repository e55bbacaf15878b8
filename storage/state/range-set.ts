// A set of non-negative integers kept as sorted, disjoint, non-adjacent inclusive ranges: the
// versions of one origin that a node has. Pure. Membership is a binary search; adding at the end
// (the usual case: versions arrive mostly in order) is O(1); other edits splice the arrays.
// The encoding is canonical: count, then per range the gap from the previous range and its length.
import { StateDecodeError } from '../errors.js';
import { ByteReader, ByteWriter } from './varint.js';

export type Range = readonly [start: number, end: number];

function checkInt(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`not a version number: ${n}`);
}

export class RangeSet {
  // starts[i] <= ends[i] < starts[i+1] - 1
  #s: number[] = [];
  #e: number[] = [];

  static of(...values: number[]): RangeSet {
    const r = new RangeSet();
    for (const v of values) r.add(v);
    return r;
  }

  static fromRanges(ranges: Iterable<Range>): RangeSet {
    const r = new RangeSet();
    for (const [a, b] of ranges) r.addRange(a, b);
    return r;
  }

  /** Number of ranges. */
  get rangeCount(): number {
    return this.#s.length;
  }

  /** Number of integers in the set. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.#s.length; i++) n += this.#e[i] - this.#s[i] + 1;
    return n;
  }

  get isEmpty(): boolean {
    return this.#s.length === 0;
  }

  /** Smallest member, or undefined when empty. */
  get min(): number | undefined {
    return this.#s[0];
  }

  /** Largest member, or undefined when empty. */
  get max(): number | undefined {
    return this.#e.length === 0 ? undefined : this.#e[this.#e.length - 1];
  }

  /** Index of the first range whose end is >= n (rangeCount if none). */
  #firstEndAtLeast(n: number): number {
    let lo = 0;
    let hi = this.#e.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#e[mid] < n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first range whose start is > n (rangeCount if none). */
  #firstStartAbove(n: number): number {
    let lo = 0;
    let hi = this.#s.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#s[mid] <= n) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  has(n: number): boolean {
    const i = this.#firstEndAtLeast(n);
    return i < this.#s.length && this.#s[i] <= n;
  }

  /** True if every integer in a..b is in the set. */
  hasRange(a: number, b: number): boolean {
    const i = this.#firstEndAtLeast(b);
    return i < this.#s.length && this.#s[i] <= a;
  }

  add(n: number): void {
    this.addRange(n, n);
  }

  addRange(a: number, b: number): void {
    checkInt(a);
    checkInt(b);
    if (a > b) throw new RangeError(`empty range ${a}..${b}`);
    const last = this.#e.length - 1;
    if (last < 0 || a > this.#e[last] + 1) {
      this.#s.push(a);
      this.#e.push(b);
      return;
    }
    if (a >= this.#s[last]) {
      if (b > this.#e[last]) this.#e[last] = b;
      return;
    }
    const i = this.#firstEndAtLeast(a - 1);
    const j = this.#firstStartAbove(b + 1);
    if (i === j) {
      this.#s.splice(i, 0, a);
      this.#e.splice(i, 0, b);
      return;
    }
    const start = Math.min(a, this.#s[i]);
    const end = Math.max(b, this.#e[j - 1]);
    this.#s.splice(i, j - i, start);
    this.#e.splice(i, j - i, end);
  }

  /** Removes n; returns whether it was there. */
  delete(n: number): boolean {
    return this.deleteRange(n, n) > 0;
  }

  /** Removes a..b; returns how many members were removed. */
  deleteRange(a: number, b: number): number {
    if (a > b) return 0;
    const i = this.#firstEndAtLeast(a);
    const j = this.#firstStartAbove(b);
    if (i >= j) return 0;
    let removed = 0;
    for (let k = i; k < j; k++) {
      removed += Math.min(b, this.#e[k]) - Math.max(a, this.#s[k]) + 1;
    }
    const starts: number[] = [];
    const ends: number[] = [];
    if (this.#s[i] < a) {
      starts.push(this.#s[i]);
      ends.push(a - 1);
    }
    if (this.#e[j - 1] > b) {
      starts.push(b + 1);
      ends.push(this.#e[j - 1]);
    }
    this.#s.splice(i, j - i, ...starts);
    this.#e.splice(i, j - i, ...ends);
    return removed;
  }

  *ranges(): IterableIterator<Range> {
    for (let i = 0; i < this.#s.length; i++) yield [this.#s[i], this.#e[i]];
  }

  *values(): IterableIterator<number> {
    for (let i = 0; i < this.#s.length; i++) {
      for (let v = this.#s[i]; v <= this.#e[i]; v++) yield v;
    }
  }

  [Symbol.iterator](): IterableIterator<number> {
    return this.values();
  }

  clone(): RangeSet {
    const r = new RangeSet();
    r.#s = this.#s.slice();
    r.#e = this.#e.slice();
    return r;
  }

  equals(other: RangeSet): boolean {
    if (other.#s.length !== this.#s.length) return false;
    for (let i = 0; i < this.#s.length; i++) {
      if (this.#s[i] !== other.#s[i] || this.#e[i] !== other.#e[i]) return false;
    }
    return true;
  }

  /** Appends a range known to lie above every member (internal: results of the walks below). */
  #push(a: number, b: number): void {
    const last = this.#e.length - 1;
    if (last >= 0 && a <= this.#e[last] + 1) {
      if (b > this.#e[last]) this.#e[last] = b;
    } else {
      this.#s.push(a);
      this.#e.push(b);
    }
  }

  union(other: RangeSet): RangeSet {
    const out = new RangeSet();
    let i = 0;
    let j = 0;
    while (i < this.#s.length || j < other.#s.length) {
      if (j >= other.#s.length || (i < this.#s.length && this.#s[i] <= other.#s[j])) {
        out.#push(this.#s[i], this.#e[i]);
        i++;
      } else {
        out.#push(other.#s[j], other.#e[j]);
        j++;
      }
    }
    return out;
  }

  /** The members of this set that are not in `other`. */
  difference(other: RangeSet): RangeSet {
    const out = new RangeSet();
    let j = 0;
    for (let i = 0; i < this.#s.length; i++) {
      let cur = this.#s[i];
      const end = this.#e[i];
      while (j < other.#s.length && other.#e[j] < cur) j++;
      let k = j;
      while (k < other.#s.length && other.#s[k] <= end) {
        if (other.#s[k] > cur) out.#push(cur, other.#s[k] - 1);
        cur = Math.max(cur, other.#e[k] + 1);
        if (cur > end) break;
        k++;
      }
      if (cur <= end) out.#push(cur, end);
      j = k;
    }
    return out;
  }

  intersect(other: RangeSet): RangeSet {
    const out = new RangeSet();
    let i = 0;
    let j = 0;
    while (i < this.#s.length && j < other.#s.length) {
      const lo = Math.max(this.#s[i], other.#s[j]);
      const hi = Math.min(this.#e[i], other.#e[j]);
      if (lo <= hi) out.#push(lo, hi);
      if (this.#e[i] < other.#e[j]) i++;
      else j++;
    }
    return out;
  }

  /** True if every member of `other` is in this set. */
  containsAll(other: RangeSet): boolean {
    for (let k = 0; k < other.#s.length; k++) {
      if (!this.hasRange(other.#s[k], other.#e[k])) return false;
    }
    return true;
  }

  toString(): string {
    return `{${[...this.ranges()].map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',')}}`;
  }

  /** Appends the canonical encoding: count, then per range (gap, length - 1). */
  write(w: ByteWriter): void {
    w.uint(this.#s.length);
    let prevEnd = -2;
    for (let i = 0; i < this.#s.length; i++) {
      w.uint(this.#s[i] - prevEnd - 2);
      w.uint(this.#e[i] - this.#s[i]);
      prevEnd = this.#e[i];
    }
  }

  /** Reads what write() wrote; at most `maxRanges` ranges. Throws StateDecodeError. */
  static read(r: ByteReader, maxRanges: number): RangeSet {
    const count = r.uintMax(maxRanges, 'range count');
    const out = new RangeSet();
    let prevEnd = -2;
    for (let i = 0; i < count; i++) {
      const start = prevEnd + 2 + r.uint();
      const end = start + r.uint();
      if (!Number.isSafeInteger(end)) throw new StateDecodeError('range out of bounds');
      out.#s.push(start);
      out.#e.push(end);
      prevEnd = end;
    }
    return out;
  }

  encode(): Uint8Array {
    const w = new ByteWriter(8 + this.#s.length * 4);
    this.write(w);
    return w.finish();
  }

  static decode(bytes: Uint8Array, maxRanges = Number.MAX_SAFE_INTEGER): RangeSet {
    const r = new ByteReader(bytes);
    const out = RangeSet.read(r, maxRanges);
    r.end();
    return out;
  }
}
