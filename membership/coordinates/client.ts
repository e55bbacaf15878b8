// CoordinateClient: the local node's Vivaldi coordinate plus a bounded cache of the coordinates
// other members reported (most recent wins; acks carry the responder's coordinate). Pure state,
// no I/O. The runtime feeds it the `rtt` effects of the SWIM core and hands `local` back to the
// core with setLocalCoordinate() so that our acks carry it.

import {
  type AdjustmentWindow,
  type Coordinate,
  type VivaldiConfig,
  DEFAULT_VIVALDI_CONFIG,
  cloneCoordinate,
  estimateRtt,
  isValidCoordinate,
  newAdjustmentWindow,
  newCoordinate,
  updateCoordinate,
} from './vivaldi.js';

export interface CoordinateClientOptions {
  config?: Partial<VivaldiConfig>;
  /**
   * Most peers whose coordinate and RTT filter are kept; least recently updated go first. Default
   * 10,000.
   */
  maxPeers?: number;
  /** Randomness for separating coincident points (optional). */
  rng?: () => number;
}

interface PeerEntry {
  coordinate: Coordinate | undefined;
  /** The last `latencyFilterSize` RTT samples, ms. */
  samples: number[];
}

export class CoordinateClient {
  readonly config: VivaldiConfig;
  private coord: Coordinate;
  private readonly adjustment: AdjustmentWindow;
  private readonly peers = new Map<string, PeerEntry>();
  private readonly maxPeers: number;
  private readonly rng: (() => number) | undefined;
  /** Samples that moved the coordinate, and samples rejected (bad coordinate or RTT). */
  readonly stats = { updates: 0, rejected: 0 };

  constructor(opts: CoordinateClientOptions = {}) {
    this.config = { ...DEFAULT_VIVALDI_CONFIG, ...opts.config };
    this.coord = newCoordinate(this.config);
    this.adjustment = newAdjustmentWindow(this.config);
    this.maxPeers = opts.maxPeers ?? 10_000;
    this.rng = opts.rng;
  }

  /** Our coordinate (a copy). */
  get local(): Coordinate {
    return cloneCoordinate(this.coord);
  }

  /**
   * Records a round-trip time to `id`, whose coordinate is `remote` (if it sent one), and updates
   * the local coordinate. Returns false if the sample was rejected (RTT negative, not finite or
   * above maxRttMs; remote coordinate invalid). Without a remote coordinate only the RTT filter is
   * fed. The median of the last `latencyFilterSize` samples is what moves the coordinate.
   */
  observe(id: string, rttMs: number, remote?: Coordinate): boolean {
    if (!Number.isFinite(rttMs) || rttMs < 0 || rttMs > this.config.maxRttMs) {
      this.stats.rejected++;
      return false;
    }
    if (remote !== undefined && !isValidCoordinate(remote, this.config)) {
      this.stats.rejected++;
      return false;
    }
    const entry = this.touch(id);
    entry.samples.push(rttMs);
    if (entry.samples.length > this.config.latencyFilterSize) entry.samples.shift();
    if (remote === undefined) return true;
    entry.coordinate = cloneCoordinate(remote);
    const sorted = [...entry.samples].sort((a, b) => a - b);
    const filtered = sorted[sorted.length >> 1];
    this.coord = updateCoordinate(this.coord, remote, filtered, this.config, {
      rng: this.rng,
      adjustment: this.adjustment,
    });
    this.stats.updates++;
    return true;
  }

  /** Remembers a peer's coordinate without an RTT sample (e.g. learned from gossip). */
  setPeerCoordinate(id: string, remote: Coordinate): boolean {
    if (!isValidCoordinate(remote, this.config)) {
      this.stats.rejected++;
      return false;
    }
    this.touch(id).coordinate = cloneCoordinate(remote);
    return true;
  }

  /** The last coordinate seen for `id`. */
  coordinateOf(id: string): Coordinate | undefined {
    const c = this.peers.get(id)?.coordinate;
    return c === undefined ? undefined : cloneCoordinate(c);
  }

  /** Estimated RTT from us to `id` in ms, or undefined if we have no coordinate for it. */
  estimateRttTo(id: string): number | undefined {
    const c = this.peers.get(id)?.coordinate;
    return c === undefined ? undefined : estimateRtt(this.coord, c);
  }

  /** Drops everything about a peer (call on member:reap). */
  forget(id: string): void {
    this.peers.delete(id);
  }

  get size(): number {
    return this.peers.size;
  }

  private touch(id: string): PeerEntry {
    let e = this.peers.get(id);
    if (e === undefined) {
      e = { coordinate: undefined, samples: [] };
      if (this.peers.size >= this.maxPeers) {
        const oldest = this.peers.keys().next();
        if (oldest.done !== true) this.peers.delete(oldest.value);
      }
    } else {
      this.peers.delete(id); // re-insert: Map order is the recency order
    }
    this.peers.set(id, e);
    return e;
  }
}
