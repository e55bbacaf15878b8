// The simulated network: one-way latency per site pair plus jitter, random loss (dropped like UDP,
// or delayed by retransmissions like TCP), and partitions (groups of nodes that cannot reach each
// other until healed).
import type { Rng } from './rng.js';

export interface NetworkOptions {
  /** Number of sites; node i is in site i % sites. Default 1. */
  sites: number;
  /** One-way latency inside a site, ms. Default 0.25. */
  intraSiteMs: number;
  /** One-way latency between two sites, drawn once uniformly in this range, ms. [2.5, 40]. */
  interSiteMs: [number, number];
  /** Mean of an exponentially distributed extra delay per message, ms. Default 0.2. */
  jitterMs: number;
  /** Probability that a message is lost (per transmission attempt). Default 0. */
  loss: number;
  /**
   * 'drop': a lost message is gone (UDP). 'delay': it arrives after retransmissions, the first
   * after rtoMs, each further one after twice the previous wait (TCP); give up after 5 attempts.
   */
  lossMode: 'drop' | 'delay';
  /** First retransmission timeout for lossMode 'delay', ms. Default 200 (Linux minimum RTO). */
  rtoMs: number;
}

export const DEFAULT_NETWORK: NetworkOptions = {
  sites: 1,
  intraSiteMs: 0.25,
  interSiteMs: [2.5, 40],
  jitterMs: 0.2,
  loss: 0,
  lossMode: 'drop',
  rtoMs: 200,
};

export class Network {
  readonly opts: NetworkOptions;
  private readonly siteLatency: Float64Array;
  /** Partition group per node, or -1 when not partitioned. */
  private readonly group: Int32Array;
  private partitioned = false;
  /** When reachability last changed (partition or heal), simulated ms. */
  topologyChangedAt = 0;

  constructor(
    readonly nodes: number,
    opts: Partial<NetworkOptions>,
    private readonly rng: Rng,
  ) {
    this.opts = { ...DEFAULT_NETWORK, ...opts };
    const s = this.opts.sites;
    this.siteLatency = new Float64Array(s * s);
    const [lo, hi] = this.opts.interSiteMs;
    for (let a = 0; a < s; a++) {
      this.siteLatency[a * s + a] = this.opts.intraSiteMs;
      for (let b = a + 1; b < s; b++) {
        const l = lo + rng() * (hi - lo);
        this.siteLatency[a * s + b] = l;
        this.siteLatency[b * s + a] = l;
      }
    }
    this.group = new Int32Array(nodes).fill(-1);
  }

  siteOf(node: number): number {
    return node % this.opts.sites;
  }

  /** Base one-way latency between two nodes, ms. */
  latency(a: number, b: number): number {
    return this.siteLatency[this.siteOf(a) * this.opts.sites + this.siteOf(b)];
  }

  canReach(a: number, b: number): boolean {
    return !this.partitioned || this.group[a] === this.group[b];
  }

  /**
   * Splits the nodes: each listed group can only reach itself; unlisted nodes form one more group.
   */
  partition(groups: number[][], now: number): void {
    this.group.fill(groups.length);
    groups.forEach((g, i) => {
      for (const n of g) this.group[n] = i;
    });
    this.partitioned = true;
    this.topologyChangedAt = now;
  }

  heal(now: number): void {
    this.partitioned = false;
    this.group.fill(-1);
    this.topologyChangedAt = now;
  }

  get isPartitioned(): boolean {
    return this.partitioned;
  }

  setLoss(p: number): void {
    this.opts.loss = p;
  }

  /** The delay of one message from a to b, ms, or undefined if it is lost. */
  delay(a: number, b: number): number | undefined {
    if (!this.canReach(a, b)) return undefined;
    const o = this.opts;
    let d = this.latency(a, b) + (o.jitterMs > 0 ? -Math.log(1 - this.rng()) * o.jitterMs : 0);
    if (o.loss > 0 && this.rng() < o.loss) {
      if (o.lossMode === 'drop') return undefined;
      let rto = o.rtoMs;
      let attempts = 1;
      do {
        d += rto;
        rto *= 2;
        if (++attempts > 5) return undefined;
      } while (this.rng() < o.loss);
    }
    return d;
  }
}
