// Prometheus metrics of one agent, on its own registry (so several agents can share a process in
// tests). The contract's metrics are all created here, so they exist from the first scrape; the
// capabilities update them.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SwimStats } from '../membership/index.js';

const LINT_DROPPED = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * How often the event-loop lag behind `nodejs_eventloop_lag_*` is sampled (ms). prom-client's
 * default, 10 ms, woke every agent 100 times a second for nothing else: of an idle agent's 258
 * event-loop wakeups a second (30 agents on loopback, `perf stat -e
 * syscalls:sys_enter_epoll_pwait`), 20 were I/O. Node records each sample as the time since the
 * previous one, interval included, so text() takes the interval back out of the gauges made from
 * them (LAG_FROM_SAMPLES): an idle agent reads ~0 s, not 0.1 s (prom-client's own: 0.01 s).
 */
export const EVENT_LOOP_LAG_RESOLUTION_MS = 100;
/** prom-client's gauges from monitorEventLoopDelay's samples (stddev needs no correction). */
const LAG_FROM_SAMPLES =
  /^(nodejs_eventloop_lag_(?:min|max|mean|p50|p90|p99)_seconds(?:\{[^}]*\})?) (\S+)$/;

/** What the SWIM health metrics read from the failure detector at each scrape. */
export interface SwimHealth {
  stats: Readonly<
    Pick<
      SwimStats,
      | 'probes'
      | 'probeFailures'
      | 'indirectProbes'
      | 'suspicionsRaised'
      | 'refutations'
      | 'lateAcks'
    >
  >;
  healthScore: number;
}

export class AgentMetrics {
  readonly registry = new Registry();
  /** The failure detector, once membership has started (set by the capabilities). */
  swim: (() => SwimHealth | undefined) | undefined;

  /** Members by state as this agent sees them. */
  readonly members = new Gauge({
    name: 'edgeswarm_members',
    help: 'Cluster members by state, as seen by this agent',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly memberFailuresDetected = new Counter({
    name: 'edgeswarm_member_failures_detected_total',
    help: 'Members this agent has declared dead',
    registers: [this.registry],
  });
  readonly gossipMessages = new Counter({
    name: 'edgeswarm_gossip_messages_total',
    help: 'Membership protocol messages sent (out) and received (in)',
    labelNames: ['direction'],
    registers: [this.registry],
  });
  readonly peerMessagesDropped = new Counter({
    name: 'edgeswarm_peer_messages_dropped_total',
    help: 'Messages from peers dropped because they could not be decoded or were invalid, by protocol',
    labelNames: ['protocol', 'reason'],
    registers: [this.registry],
  });
  readonly replicationBytes = new Counter({
    name: 'edgeswarm_replication_bytes_total',
    help: 'Bytes of images and state replicated, by direction (in/out) and scope (site or wan)',
    labelNames: ['direction', 'scope'],
    registers: [this.registry],
  });
  readonly kvKeys = new Gauge({
    name: 'edgeswarm_kv_keys',
    help: 'Live keys in the replicated key/value store',
    registers: [this.registry],
  });
  readonly images = new Gauge({
    name: 'edgeswarm_images',
    help: 'Images this agent knows, by local state (complete, pulling, not_placed)',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly badChunks = new Counter({
    name: 'edgeswarm_bad_chunks_total',
    help: 'Chunks whose bytes did not match their hash: received from a peer (which was dropped), or found on this disk (quarantined and fetched again)',
    registers: [this.registry],
  });
  readonly httpRequests = new Counter({
    name: 'edgeswarm_http_requests_total',
    help: 'HTTP API requests by route and status code',
    labelNames: ['route', 'code'],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'edgeswarm_http_request_duration_seconds',
    help: 'HTTP API request duration by route',
    labelNames: ['route'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly connectedPeers = new Gauge({
    name: 'edgeswarm_peer_connections',
    help: 'Open libp2p connections',
    registers: [this.registry],
  });

  // SWIM's own counters (memberlist's probe, suspect and health metrics), read at each scrape
  readonly swimProbes = this.#swimCounter(
    'edgeswarm_swim_probes_total',
    'Members this agent probed (direct pings started; a round repeated before suspecting counts once)',
    (s) => s.probes,
  );
  readonly swimProbeFailures = this.#swimCounter(
    'edgeswarm_swim_probe_failures_total',
    'Probes that failed: no ack, direct or indirect, in any round; the member is then suspected',
    (s) => s.probeFailures,
  );
  readonly swimIndirectProbes = this.#swimCounter(
    'edgeswarm_swim_indirect_probes_total',
    'Probe rounds that went indirect: no direct ack in time, so ping-req went through other members',
    (s) => s.indirectProbes,
  );
  readonly swimSuspicions = this.#swimCounter(
    'edgeswarm_swim_suspicions_raised_total',
    'Suspicions this agent raised about other members',
    (s) => s.suspicionsRaised,
  );
  readonly swimRefutations = this.#swimCounter(
    'edgeswarm_swim_refutations_total',
    'Times this agent refuted a suspicion (or death) of itself: others found it slow or unreachable',
    (s) => s.refutations,
  );
  readonly swimLateAcks = this.#swimCounter(
    'edgeswarm_swim_late_acks_total',
    'Acks that arrived after their probe round had already failed',
    (s) => s.lateAcks,
  );
  readonly swimHealth = new Gauge({
    name: 'edgeswarm_swim_health_score',
    help: 'Lifeguard local health of this agent: 0 is healthy; it rises when this agent looks like the slow one (missed nacks, refuted suspicions), and stretches its probe timeouts by (score + 1)',
    registers: [this.registry],
    collect: () => {
      const h = this.swim?.();
      if (h) this.swimHealth.set(h.healthScore);
    },
  });

  /** A counter whose value is read from the SWIM core's stats at each scrape (0 before start). */
  #swimCounter(name: string, help: string, read: (s: SwimHealth['stats']) => number): Counter {
    const counter: Counter = new Counter({
      name,
      help,
      registers: [this.registry],
      collect: () => {
        const h = this.swim?.();
        if (!h) return;
        counter.reset();
        counter.inc(read(h.stats));
      },
    });
    return counter;
  }

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false)
      collectDefaultMetrics({
        register: this.registry,
        eventLoopMonitoringPrecision: EVENT_LOOP_LAG_RESOLUTION_MS,
      });
    for (const d of ['in', 'out']) {
      this.gossipMessages.inc({ direction: d }, 0);
      for (const scope of ['site', 'wan']) this.replicationBytes.inc({ direction: d, scope }, 0);
    }
    for (const s of ['alive', 'suspect', 'dead', 'left']) this.members.set({ state: s }, 0);
    for (const s of ['complete', 'pulling', 'not_placed']) this.images.set({ state: s }, 0);
    this.kvKeys.set(0);
  }

  /**
   * The exposition. prom-client's default Node.js metrics include three gauges named *_total
   * (nodejs_active_{handles,requests,resources}_total), which promtool's linter rejects; they are
   * left out so that the page passes `promtool check metrics`. The event-loop lag gauges made
   * from samples are the lag itself: the sampling interval is taken out of them.
   */
  async text(): Promise<string> {
    const text = await this.registry.metrics();
    return text
      .split('\n')
      .filter(
        (l) =>
          !LINT_DROPPED.some(
            (name) =>
              l.startsWith(name) ||
              l.startsWith(`# HELP ${name} `) ||
              l.startsWith(`# TYPE ${name} `),
          ),
      )
      .map((l) => {
        const m = LAG_FROM_SAMPLES.exec(l);
        if (!m) return l;
        const lag = Number(m[2]) - EVENT_LOOP_LAG_RESOLUTION_MS / 1000;
        return Number.isFinite(lag) ? `${m[1]} ${Math.max(0, lag)}` : l;
      })
      .join('\n');
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
