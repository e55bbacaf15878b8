// Lifeguard dynamic suspicion timeout (memberlist `suspicion.go`). A suspicion starts with the
// longest timeout `max` and shrinks toward `min` as independent confirmations (suspect messages
// about the same member from other members) arrive:
//   timeout(C) = max(min, max - (max - min) * log(C + 1) / log(K + 1))
// with K the confirmations expected. With K = 0 the timeout is `min` from the start. The deadline
// is measured from when this member started suspecting, so a late confirmation can make the
// suspicion expire at once.

/** The suspicion timeout after `c` confirmations, ms. */
export function suspicionTimeout(c: number, k: number, min: number, max: number): number {
  if (k < 1) return min;
  const frac = Math.log(c + 1) / Math.log(k + 1);
  const raw = max - frac * (max - min);
  return Math.max(min, Math.floor(raw));
}

export class Suspicion {
  /** Who suspected first and who confirmed since (each counted once). */
  private readonly seen = new Set<string>();
  private confirmed = 0;
  /** When it expires (`now` units). */
  deadline: number;
  /** When we last told the suspect directly (-Infinity: never). See SwimProber/SwimCore. */
  noticedAt = -Infinity;

  constructor(
    from: string,
    /** Incarnation the suspicion is about; the dead verdict carries it. */
    public incarnation: number,
    public startedAt: number,
    /** K: confirmations expected. */
    readonly k: number,
    readonly min: number,
    readonly max: number,
  ) {
    this.seen.add(from);
    this.deadline = startedAt + suspicionTimeout(0, k, min, max);
  }

  /**
   * Starts the timeout again from `now` (keeping the confirmations): used when there is fresh
   * evidence that the suspect may be fine (it answered us, or a partition just healed), to give
   * its refutation time to arrive.
   */
  restart(now: number): void {
    this.startedAt = now;
    this.deadline = now + suspicionTimeout(this.confirmed, this.k, this.min, this.max);
  }

  /** Independent confirmations so far (the first suspector not counted). */
  get confirmations(): number {
    return this.confirmed;
  }

  /**
   * Records a suspect message from `from`. Returns true if it is a new independent confirmation
   * (then the deadline moved earlier and the suspect message should be gossiped on); false if
   * `from` was already counted or K confirmations were already reached.
   */
  confirm(from: string): boolean {
    if (this.confirmed >= this.k) return false;
    if (this.seen.has(from)) return false;
    this.seen.add(from);
    this.confirmed++;
    this.deadline = this.startedAt + suspicionTimeout(this.confirmed, this.k, this.min, this.max);
    return true;
  }
}
