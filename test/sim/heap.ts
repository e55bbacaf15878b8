// A binary min-heap of timed events for the simulators: ordered by time, then by insertion order
// (so events at the same instant run first-in first-out, which keeps runs deterministic).

export interface Timed {
  /** When the event happens, simulated ms. */
  t: number;
  /** Insertion counter, set by the heap: the tie-breaker. */
  seq: number;
}

export class EventHeap<E extends Timed> {
  private readonly items: E[] = [];
  private counter = 0;

  get size(): number {
    return this.items.length;
  }

  push(e: E): void {
    e.seq = this.counter++;
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, a[p])) break;
      a[i] = a[p];
      i = p;
    }
    a[i] = e;
  }

  peek(): E | undefined {
    return this.items[0];
  }

  pop(): E | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      let i = 0;
      const n = a.length;
      while (true) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(a[r], a[l]) ? r : l;
        if (!before(a[c], last)) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

function before(x: Timed, y: Timed): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq);
}
