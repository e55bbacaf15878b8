// Every tunable of the SWIM + Lifeguard core: unit, default (lan / wan) and the formula it feeds.
// Modelled on hashicorp/memberlist `config.go`. Durations are milliseconds.
//
// How the lan numbers were chosen (targets: SIGKILL -> dead everywhere <= 3 s at N=50; no false
// dead at 10% loss; 99% dissemination to 10,000 nodes within 1.5 s at 5% loss; constant messages
// per member per second):
//   detection ~= time to the first probe of the dead node (most often < 1 probeInterval: n - 1
//                members each probe one member per interval)
//              + probeInterval (direct, then indirect probe) + suspicion timeout
//              + dissemination of `dead` (a few gossip rounds).
//   At N=50 the suspicion timeout shrinks to min = 4 * log10(50) * 200 ms = 1.36 s once two other
//   members confirm, so detection is ~2 s (simulated: p50 1.9 s, max 2.1-2.7 s with stalls).
//   Memberlist's 1 s probe interval gives ~6-10 s. probeTimeout = probeInterval / 2 leaves half
//   the interval for the indirect round; Lifeguard awareness stretches both under event-loop lag.
//   gossipInterval = probeInterval: with 3 targets per round plus piggybacking on pings and acks,
//   an update reaches 99% of 10,000 nodes in ~0.5 s (simulated, 5% loss).
// The wan preset is memberlist's DefaultWANConfig, plus reconnect and reaping settings.

import { z } from 'zod';
import { SwimConfigError } from '../errors.js';

export interface SwimConfig {
  /**
   * Time between two probes (one member probed per interval, round-robin over a shuffled list).
   * Scaled by the awareness score: a failed probe waits probeInterval * (score + 1) for indirect
   * acks. Also the unit of the suspicion timeout. lan 200 ms, wan 5 s.
   */
  probeInterval: number;
  /**
   * How long to wait for the ack of a direct ping before asking `indirectChecks` members to probe
   * (ping-req). Scaled by (awareness score + 1). Should exceed the 99th percentile RTT plus the
   * event-loop lag of both ends. lan 100 ms, wan 3 s. Must be < probeInterval.
   */
  probeTimeout: number;
  /** k: members asked to probe indirectly after a direct ping times out. lan/wan 3. */
  indirectChecks: number;
  /**
   * Failed probe rounds (direct ping, fallback ping and k relays each) before a member nobody
   * suspects is suspected; the rounds run back to back. A closed connection to the member (it
   * is then probed out of turn) counts as one failed round, so a crashed process, whose peers see
   * their connections close, is suspected no later than with 1; a silent failure (power loss, a
   * cut cable) is suspected (confirmRounds - 1) * probeInterval later. 1 is memberlist's
   * behaviour. Per round, loss l alone fails it with ~ l^2 * (1 - (1 - l)^4)^k (6e-5 at l = 5%,
   * k = 3); rounds multiply. lan/wan 2.
   */
  confirmRounds: number;
  /**
   * Suspicion timeout multiplier. The minimum suspicion timeout is
   *   min = suspicionMult * max(1, log10(n)) * probeInterval      (n = live members incl. self)
   * and the number of independent confirmations that shrink the timeout to min is
   *   K = suspicionMult - 2   (0 if n - 2 < K: too few members to confirm).
   * lan 4, wan 6.
   */
  suspicionMult: number;
  /**
   * The suspicion timeout starts at max = suspicionMaxTimeoutMult * min and falls with each new
   * confirmation C (Lifeguard): timeout = max(min, max - (max - min) * log(C + 1) / log(K + 1)).
   * lan/wan 6.
   */
  suspicionMaxTimeoutMult: number;
  /**
   * Lifeguard local health: the awareness score runs 0 .. awarenessMaxMultiplier - 1; probe
   * timeout and interval are multiplied by (score + 1). +1 per missed nack (or per failed probe
   * when no nack was expected), +1 per refutation, -1 per successful probe. lan/wan 8.
   */
  awarenessMaxMultiplier: number;
  /**
   * Each update is sent at most retransmitMult * ceil(log10(n + 1)) times by each member
   * (n = live members incl. self). lan/wan 4 (16 sends at n=1,000; 20 at n=10,000).
   */
  retransmitMult: number;
  /**
   * Time between two gossip rounds. Each round sends queued updates to `gossipNodes` random live
   * (or recently dead) members. With the queue empty there is no round and no timer for it; news
   * queued then goes out at once and the rounds go on at the next slots. lan 200 ms, wan 500 ms.
   */
  gossipInterval: number;
  /** Members gossiped to per round. lan 3, wan 4. */
  gossipNodes: number;
  /**
   * Dead members stay gossip targets this long after their death, so a falsely declared member
   * learns of it and refutes. lan 30 s, wan 60 s.
   */
  gossipToTheDeadTime: number;
  /** Most updates piggybacked on one message (ping, ack, ping-req, gossip). lan/wan 64. */
  maxUpdatesPerMessage: number;
  /**
   * Most bytes of updates in one message (estimated encoded size). Must stay well under the
   * codec's MAX_PACKET_BYTES (64 KiB). lan/wan 16 KiB.
   */
  maxUpdateBytesPerMessage: number;
  /**
   * Most updates waiting in the broadcast queue; beyond it the most-sent oldest are dropped (push-
   * pull repairs what they carried). lan/wan 8192.
   */
  maxQueuedUpdates: number;
  /**
   * Time between two full-state exchanges with one random alive member, for n <= 32. Above, it
   * grows with log2(n) to keep the load constant (memberlist pushPullScale):
   *   interval(n) = pushPullInterval * (ceil(log2(n) - log2(32)) + 1).
   * 0 disables periodic push-pull (join and reconnect still use it). lan 30 s, wan 60 s.
   */
  pushPullInterval: number;
  /**
   * Time between two reconnect rounds. Each round, with probability min(1, dead / alive), pings
   * one random `dead` member that died less than reconnectTimeout ago, the ping carrying its death
   * verdict, so that a member that is back refutes at once; the whole cluster thus tries each dead
   * member about once per interval (Serf's rule). Heals partitions without operator action. It is
   * a ping (two small messages), not Serf's full push-pull, so it can run often. lan and wan 2 s.
   * 0 disables.
   */
  reconnectInterval: number;
  /** Dead members are kept (and reconnected to) this long, then reaped. lan/wan 7 days. */
  reconnectTimeout: number;
  /**
   * Left members are kept this long (so a late `alive` cannot resurrect them), then reaped. 24 h.
   */
  tombstoneTimeout: number;
  /** Most ping-req relays in flight at once; further ping-reqs are dropped. lan/wan 1024. */
  maxPendingRelays: number;
}

export type SwimPresetName = 'lan' | 'wan';

const HOUR = 3_600_000;

export const SWIM_PRESETS: Readonly<Record<SwimPresetName, Readonly<SwimConfig>>> = Object.freeze({
  lan: Object.freeze({
    probeInterval: 200,
    probeTimeout: 100,
    indirectChecks: 3,
    confirmRounds: 2,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    awarenessMaxMultiplier: 8,
    retransmitMult: 4,
    gossipInterval: 200,
    gossipNodes: 3,
    gossipToTheDeadTime: 30_000,
    maxUpdatesPerMessage: 64,
    maxUpdateBytesPerMessage: 16 * 1024,
    maxQueuedUpdates: 8192,
    pushPullInterval: 30_000,
    reconnectInterval: 2_000,
    reconnectTimeout: 7 * 24 * HOUR,
    tombstoneTimeout: 24 * HOUR,
    maxPendingRelays: 1024,
  }),
  wan: Object.freeze({
    probeInterval: 5_000,
    probeTimeout: 3_000,
    indirectChecks: 3,
    confirmRounds: 2,
    suspicionMult: 6,
    suspicionMaxTimeoutMult: 6,
    awarenessMaxMultiplier: 8,
    retransmitMult: 4,
    gossipInterval: 500,
    gossipNodes: 4,
    gossipToTheDeadTime: 60_000,
    maxUpdatesPerMessage: 64,
    maxUpdateBytesPerMessage: 16 * 1024,
    maxQueuedUpdates: 8192,
    pushPullInterval: 60_000,
    reconnectInterval: 2_000,
    reconnectTimeout: 7 * 24 * HOUR,
    tombstoneTimeout: 24 * HOUR,
    maxPendingRelays: 1024,
  }),
});

const ms = () => z.number().finite().positive();
const msOrOff = () => z.number().finite().nonnegative();
const count = (max: number) => z.number().int().min(1).max(max);

/**
 * The optional `membership:` section of the agent's config: any subset of SwimConfig, durations
 * as numbers of milliseconds. Unknown keys are rejected.
 */
export const swimConfigOverridesSchema = z
  .object({
    probeInterval: ms(),
    probeTimeout: ms(),
    indirectChecks: z.number().int().min(0).max(16),
    confirmRounds: count(5),
    suspicionMult: count(100),
    suspicionMaxTimeoutMult: count(100),
    awarenessMaxMultiplier: count(64),
    retransmitMult: count(100),
    gossipInterval: ms(),
    gossipNodes: count(64),
    gossipToTheDeadTime: msOrOff(),
    maxUpdatesPerMessage: count(256),
    maxUpdateBytesPerMessage: z
      .number()
      .int()
      .min(1024)
      .max(48 * 1024),
    maxQueuedUpdates: count(1_000_000),
    pushPullInterval: msOrOff(),
    reconnectInterval: msOrOff(),
    reconnectTimeout: msOrOff(),
    tombstoneTimeout: msOrOff(),
    maxPendingRelays: count(1_000_000),
  })
  .partial()
  .strict();

export type SwimConfigOverrides = z.infer<typeof swimConfigOverridesSchema>;

/**
 * The preset with `overrides` applied, validated. Throws SwimConfigError naming the first bad key
 * (unknown key, wrong type, out of range, probeTimeout >= probeInterval).
 */
export function resolveSwimConfig(
  preset: SwimPresetName = 'lan',
  overrides: Partial<SwimConfig> = {},
): SwimConfig {
  const base = SWIM_PRESETS[preset];
  if (base === undefined) throw new SwimConfigError('preset', `unknown preset ${String(preset)}`);
  const parsed = swimConfigOverridesSchema.safeParse(overrides);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const key =
      issue.code === 'unrecognized_keys' ? issue.keys.join(',') : issue.path.join('.') || 'config';
    throw new SwimConfigError(key, issue.message);
  }
  const cfg: SwimConfig = { ...base, ...parsed.data };
  if (cfg.probeTimeout >= cfg.probeInterval)
    throw new SwimConfigError('probeTimeout', 'must be shorter than probeInterval');
  return cfg;
}

/** Below this many members push-pull runs every pushPullInterval (memberlist). */
export const PUSH_PULL_SCALE_THRESHOLD = 32;

/** Minimum suspicion timeout, ms: suspicionMult * max(1, log10(n)) * probeInterval. */
export function suspicionMinTimeout(cfg: SwimConfig, n: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.floor(cfg.suspicionMult * scale * cfg.probeInterval);
}

/** Maximum (initial) suspicion timeout, ms: suspicionMaxTimeoutMult * min. */
export function suspicionMaxTimeout(cfg: SwimConfig, n: number): number {
  return cfg.suspicionMaxTimeoutMult * suspicionMinTimeout(cfg, n);
}

/** K, the independent confirmations expected: suspicionMult - 2, or 0 if n - 2 < that. */
export function suspicionConfirmations(cfg: SwimConfig, n: number): number {
  const k = cfg.suspicionMult - 2;
  return n - 2 < k ? 0 : Math.max(0, k);
}

/** Sends per update per member: retransmitMult * ceil(log10(n + 1)). */
export function retransmitLimit(cfg: SwimConfig, n: number): number {
  return cfg.retransmitMult * Math.ceil(Math.log10(n + 1));
}

/** Push-pull interval for n members, ms (see pushPullInterval); 0 if disabled. */
export function pushPullIntervalFor(cfg: SwimConfig, n: number): number {
  if (cfg.pushPullInterval <= 0) return 0;
  if (n <= PUSH_PULL_SCALE_THRESHOLD) return cfg.pushPullInterval;
  const mult = Math.ceil(Math.log2(n) - Math.log2(PUSH_PULL_SCALE_THRESHOLD)) + 1;
  return cfg.pushPullInterval * mult;
}
