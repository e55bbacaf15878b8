// Lifeguard local health awareness (memberlist `awareness.go`). A score 0..max-1 that rises when
// this member shows signs of being the slow one (nacks it expected did not arrive, it had to refute
// a suspicion about itself, a probe failed with no nack to tell) and falls with each successful
// probe. Probe timeouts and intervals are multiplied by (score + 1), so a member whose own event
// loop or network is struggling waits longer before accusing others.

export class Awareness {
  private current = 0;

  /** @param max awarenessMaxMultiplier: the score stays in 0..max-1. */
  constructor(readonly max: number) {}

  /** Adds `delta` (may be negative), clamped to 0..max-1. */
  applyDelta(delta: number): void {
    this.current = Math.min(this.max - 1, Math.max(0, this.current + delta));
  }

  get score(): number {
    return this.current;
  }

  /** `timeout * (score + 1)`. */
  scale(timeout: number): number {
    return timeout * (this.current + 1);
  }
}
