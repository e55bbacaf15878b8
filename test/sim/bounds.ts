// Time bounds the simulator's invariants use, derived from the SWIM config (not tuned to pass).
// Each is a generous worst case built from the protocol's own constants; the measured figures the
// tests print are far below them.
import {
  type SwimConfig,
  pushPullIntervalFor,
  suspicionMaxTimeout,
} from '../../membership/swim/index.js';

/**
 * Crash -> dead at every live member, ms:
 *   first probe of the dead member: each of the n-1 others probes one member per interval, so the
 *     chance that nobody has probed it after k intervals is ~e^-k; take k = min(15, 2n) (a full
 *     round-robin pass also bounds it at n intervals);
 *   + that probe failing at the worst awareness: probeInterval * awarenessMaxMultiplier;
 *   + the longest suspicion timeout (no confirmations): suspicionMaxTimeoutMult * min(n);
 *   + spreading `dead`: 25 gossip rounds (retransmit limit x fan-out covers n many times over).
 */
export function detectionBound(cfg: SwimConfig, n: number): number {
  const firstProbe = Math.min(15, 2 * n) * cfg.probeInterval;
  const conclude = cfg.probeInterval * cfg.awarenessMaxMultiplier;
  return firstProbe + conclude + suspicionMaxTimeout(cfg, n) + 25 * cfg.gossipInterval;
}

/**
 * An update reaches every live member, ms: 50 gossip rounds for the epidemic, plus three push-pull
 * periods for the unlucky member that every copy missed (push-pull repairs it).
 */
export function disseminationBound(cfg: SwimConfig, n: number): number {
  return 50 * cfg.gossipInterval + 3 * pushPullIntervalFor(cfg, n);
}

/**
 * A live member that another live member can reach is not held `dead` longer than this, ms
 * (counted from when they could reach each other again): the dead verdict is gossiped to the
 * member itself (gossip to the dead, acks to its probes) or found by a reconnect, which the cluster
 * attempts about once per reconnectInterval per dead member; allow ten of those, then a suspicion
 * and the spreading of the refutation.
 */
export function staleDeadBound(cfg: SwimConfig, n: number): number {
  return (
    10 * cfg.reconnectInterval +
    suspicionMaxTimeout(cfg, n) +
    3 * pushPullIntervalFor(cfg, n) +
    50 * cfg.gossipInterval
  );
}
