// Deterministic discrete-event simulator of many SwimCores: seeded RNG, simulated clock (event
// heap), a network with per-site latency, jitter, loss and partitions, crashed nodes, CPU-starved
// nodes (everything they do is delayed by a lag, first-in first-out), stalling nodes (event-loop
// pauses), and invariants checked during the run. Any violation throws SimInvariantError whose
// message carries SIM_SEED=<seed>.
//
// Memory: all cores share one IdInterner (and its pool of metadata objects), so each keeps ~25
// bytes per member in typed arrays; 10,000 nodes in a converged cluster need ~3.1 GB RSS
// (measured), almost all of it outside the V8 heap.
import {
  type Effect,
  type MemberMeta,
  type MembershipEvent,
  type PushPullEntry,
  type SwimConfig,
  type SwimMessage,
  IdInterner,
  SwimCore,
  decodeMessage,
  encodeMessage,
} from '../../membership/swim/index.js';
import { EventHeap } from './heap.js';
import { Network, type NetworkOptions } from './network.js';
import { type Rng, createRng } from './rng.js';
import { SimTracker } from './tracker.js';

export interface SimOptions {
  nodes: number;
  seed: number;
  config: SwimConfig;
  network?: Partial<NetworkOptions>;
  /**
   * Start from a converged membership (default). Otherwise node 0 starts alone and the others join
   * through it, spread over joinSpreadMs.
   */
  converged?: boolean;
  joinSpreadMs?: number;
  /** Encode and decode every message (exercises the codec on real traffic; slower). */
  codec?: boolean;
  /** Period of the invariant checks, simulated ms. Default 100. */
  checkEveryMs?: number;
}

export class SimInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimInvariantError';
  }
}

type SimEvent =
  | {
      t: number;
      seq: number;
      kind: 'msg';
      to: number;
      from: number;
      msg: SwimMessage;
      lagged: boolean;
    }
  | { t: number; seq: number; kind: 'wake'; node: number; gen: number; lagged: boolean }
  | { t: number; seq: number; kind: 'call'; fn: () => void }
  | { t: number; seq: number; kind: 'check' };

export function simMeta(i: number, site: number): MemberMeta {
  return {
    name: `node-${i}`,
    site: `site-${site}`,
    addrs: [`/ip4/10.${site & 255}.${(i >> 8) & 255}.${i & 255}/tcp/7946`],
    tags: { role: 'edge' },
  };
}

export class Simulation {
  readonly n: number;
  readonly seed: number;
  readonly config: SwimConfig;
  readonly rng: Rng;
  readonly net: Network;
  readonly ids: string[];
  readonly cores: SwimCore[];
  readonly tracker: SimTracker;
  now = 0;
  /** Messages handed to the network, and encoded bytes (with `codec`). */
  sent = 0;
  /** Messages handed to the network, by message type. */
  readonly sentByType = new Map<string, number>();
  bytes = 0;
  lost = 0;
  /** Events processed (a measure of work). */
  steps = 0;
  private readonly interner = new IdInterner({ shared: true });
  private readonly index = new Map<string, number>();
  private readonly heap = new EventHeap<SimEvent>();
  private readonly running: Uint8Array;
  readonly hasLeft: Uint8Array;
  readonly startedAt: Float64Array;
  private readonly wakeAt: Float64Array;
  private readonly wakeGen: Uint32Array;
  private readonly lagBase: Float64Array;
  private readonly lagJitter: Float64Array;
  private readonly procAt: Float64Array;
  /** Stalls (event-loop pauses): rate per ms, duration range, next start, current end. */
  private readonly stallRate: Float64Array;
  private readonly stallMin: Float64Array;
  private readonly stallMax: Float64Array;
  private readonly nextStall: Float64Array;
  private readonly stallEnd: Float64Array;
  private readonly codec: boolean;
  private readonly checkEvery: number;
  private readonly invariants: Array<{
    name: string;
    every: number;
    last: number;
    check: () => string | undefined;
  }> = [];

  constructor(opts: SimOptions) {
    this.n = opts.nodes;
    this.seed = opts.seed;
    this.config = opts.config;
    this.rng = createRng(opts.seed);
    this.net = new Network(this.n, opts.network ?? {}, this.rng.fork());
    this.codec = opts.codec ?? false;
    this.checkEvery = opts.checkEveryMs ?? 100;
    const n = this.n;
    this.running = new Uint8Array(n);
    this.hasLeft = new Uint8Array(n);
    this.startedAt = new Float64Array(n);
    this.wakeAt = new Float64Array(n).fill(Infinity);
    this.wakeGen = new Uint32Array(n);
    this.lagBase = new Float64Array(n);
    this.lagJitter = new Float64Array(n);
    this.procAt = new Float64Array(n);
    this.stallRate = new Float64Array(n);
    this.stallMin = new Float64Array(n);
    this.stallMax = new Float64Array(n);
    this.nextStall = new Float64Array(n).fill(Infinity);
    this.stallEnd = new Float64Array(n);
    this.ids = Array.from({ length: n }, (_, i) => `node-${String(i).padStart(5, '0')}`);
    this.ids.forEach((id, i) => {
      this.index.set(id, i);
      this.interner.intern(id);
    });
    this.tracker = new SimTracker(this);
    const metas = this.ids.map((_, i) => simMeta(i, this.net.siteOf(i)));
    this.cores = new Array<SwimCore>(n);
    if (opts.converged ?? true) {
      const all: PushPullEntry[] = this.ids.map((id, i) => ({
        id,
        incarnation: 0,
        state: 'alive',
        meta: metas[i],
      }));
      for (let i = 0; i < n; i++) this.boot(i, metas[i], all, 0);
    } else {
      this.boot(0, metas[0], undefined, 0);
      const spread = opts.joinSpreadMs ?? 1000;
      for (let i = 1; i < n; i++) {
        const at = (spread * i) / n;
        this.at(at, () => {
          this.boot(i, metas[i], undefined, at);
          this.apply(i, this.cores[i].join([this.ids[this.rng.int(i)]], at));
        });
      }
    }
    this.heap.push({ t: this.checkEvery, seq: 0, kind: 'check' });
  }

  // ---- control -----------------------------------------------------------------------------

  idx(id: string): number {
    return this.index.get(id) ?? -1;
  }

  isRunning(i: number): boolean {
    return this.running[i] === 1;
  }

  /** Running and not left: should be seen alive by everyone who can reach it. */
  isLive(i: number): boolean {
    return this.running[i] === 1 && this.hasLeft[i] === 0;
  }

  liveCount(): number {
    let c = 0;
    for (let i = 0; i < this.n; i++) if (this.isLive(i)) c++;
    return c;
  }

  /** Schedules `fn` at simulated time t. */
  at(t: number, fn: () => void): void {
    this.heap.push({ t, seq: 0, kind: 'call', fn });
  }

  /** Stops node i at once (kill -9): it processes nothing from now on. */
  crash(i: number): void {
    this.running[i] = 0;
    this.tracker.onCrash(i);
  }

  /** Starts node i again with an empty table; joins through `seeds` random live nodes. */
  restart(i: number, opts: { keepIncarnation?: boolean; seeds?: number } = {}): void {
    const old = this.cores[i];
    const inc = opts.keepIncarnation ? old.incarnation + 1 : 0;
    this.boot(i, old.meta, undefined, this.now, inc);
    this.hasLeft[i] = 0;
    this.tracker.onRestart(i);
    const seeds: string[] = [];
    for (let k = 0; k < 20 && seeds.length < (opts.seeds ?? 2); k++) {
      const s = this.rng.int(this.n);
      if (s !== i && this.isLive(s)) seeds.push(this.ids[s]);
    }
    this.apply(i, this.cores[i].join(seeds, this.now));
  }

  leave(i: number): void {
    this.hasLeft[i] = 1;
    this.apply(i, this.cores[i].leave(this.now));
  }

  updateMeta(i: number, meta: MemberMeta): void {
    this.apply(i, this.cores[i].updateMeta(meta, this.now));
  }

  /** Makes node i CPU-starved: each message and timer it handles waits base + U(0, jitter) ms. */
  setLag(i: number, baseMs: number, jitterMs = 0): void {
    this.lagBase[i] = baseMs;
    this.lagJitter[i] = jitterMs;
  }

  /**
   * Makes node i pause now and then, like an event loop blocked by other work or GC: pauses start
   * at random (`perSecond` on average) and last U(minMs, maxMs); whatever arrives meanwhile is
   * handled when the pause ends, in arrival order.
   */
  setStalls(i: number, perSecond: number, minMs: number, maxMs: number): void {
    this.stallRate[i] = perSecond / 1000;
    this.stallMin[i] = minMs;
    this.stallMax[i] = maxMs;
    this.nextStall[i] =
      perSecond > 0 ? this.now - Math.log(1 - this.rng()) / this.stallRate[i] : Infinity;
  }

  /** The end of the pause node i is in at time t, or t if it is not paused. */
  private stalledUntil(i: number, t: number): number {
    while (this.nextStall[i] <= t) {
      const start = this.nextStall[i];
      const dur = this.stallMin[i] + this.rng() * (this.stallMax[i] - this.stallMin[i]);
      this.stallEnd[i] = Math.max(this.stallEnd[i], start + dur);
      this.nextStall[i] = start - Math.log(1 - this.rng()) / this.stallRate[i];
    }
    return this.stallEnd[i] > t ? this.stallEnd[i] : t;
  }

  partition(groups: number[][]): void {
    this.net.partition(groups, this.now);
  }

  heal(): void {
    this.net.heal(this.now);
  }

  /** Adds an invariant checked every `everyMs` (rounded to the check period). */
  invariant(name: string, check: () => string | undefined, everyMs = this.checkEvery): void {
    this.invariants.push({ name, every: everyMs, last: -Infinity, check });
  }

  fail(what: string): never {
    throw new SimInvariantError(
      `${what} (at ${this.now.toFixed(0)} ms simulated, n=${this.n}; reproduce with SIM_SEED=${this.seed})`,
    );
  }

  // ---- running -----------------------------------------------------------------------------

  /** Processes every event up to simulated time `until`. */
  run(until: number): void {
    while (true) {
      const e = this.heap.peek();
      if (e === undefined || e.t > until) break;
      this.heap.pop();
      this.now = e.t;
      this.step(e);
    }
    this.now = Math.max(this.now, until);
  }

  /**
   * Runs until `done()` (checked every `stepMs`) or `maxMs` from now; returns the elapsed time or
   * -1.
   */
  runUntil(done: () => boolean, maxMs: number, stepMs = 50): number {
    const start = this.now;
    for (let t = start; t <= start + maxMs; t += stepMs) {
      this.run(t);
      if (done()) return this.now - start;
    }
    return -1;
  }

  private boot(
    i: number,
    meta: MemberMeta,
    members: PushPullEntry[] | undefined,
    now: number,
    inc = 0,
  ): void {
    this.cores[i] = new SwimCore({
      self: { id: this.ids[i], meta },
      config: this.config,
      rng: this.rng.fork(),
      now,
      interner: this.interner,
      initialMembers: members,
      announce: members === undefined,
      initialIncarnation: inc,
    });
    this.running[i] = 1;
    this.startedAt[i] = now;
    this.procAt[i] = now;
    this.wakeAt[i] = Infinity;
    this.schedule(i);
  }

  private step(e: SimEvent): void {
    this.steps++;
    switch (e.kind) {
      case 'msg': {
        if (this.running[e.to] === 0) return;
        if (!e.lagged && this.isSlow(e.to)) return this.defer(e, e.to);
        this.apply(e.to, this.cores[e.to].handle(this.ids[e.from], e.msg, this.now));
        return;
      }
      case 'wake': {
        if (this.running[e.node] === 0) return;
        if (!e.lagged) {
          if (e.gen !== this.wakeGen[e.node]) return;
          this.wakeAt[e.node] = Infinity;
          if (this.isSlow(e.node)) return this.defer(e, e.node);
        }
        this.apply(e.node, this.cores[e.node].tick(this.now));
        return;
      }
      case 'call':
        e.fn();
        return;
      case 'check':
        this.checkInvariants();
        this.heap.push({ t: this.now + this.checkEvery, seq: 0, kind: 'check' });
        return;
    }
  }

  private isSlow(i: number): boolean {
    return this.lagBase[i] > 0 || this.stallRate[i] > 0;
  }

  /**
   * Re-queues an event for a slow node: processed after its lag and after any pause it falls in,
   * never before the events that arrived earlier.
   */
  private defer(e: SimEvent & { lagged: boolean }, node: number): void {
    const lag = this.lagBase[node] > 0 ? this.lagBase[node] + this.rng() * this.lagJitter[node] : 0;
    const t = Math.max(this.stalledUntil(node, this.now) + lag, this.procAt[node]);
    this.procAt[node] = t;
    e.lagged = true;
    e.t = t;
    this.heap.push(e);
  }

  private schedule(i: number): void {
    const d = this.cores[i].nextDeadline();
    if (!Number.isFinite(d)) return;
    const t = Math.max(d, this.now);
    if (t < this.wakeAt[i]) {
      this.wakeAt[i] = t;
      this.heap.push({ t, seq: 0, kind: 'wake', node: i, gen: ++this.wakeGen[i], lagged: false });
    }
  }

  /** Carries out a core's effects. */
  apply(i: number, fx: Effect[]): void {
    for (const e of fx) {
      if (e.type === 'send') {
        const to = this.index.get(e.to);
        this.sent++;
        this.sentByType.set(e.msg.type, (this.sentByType.get(e.msg.type) ?? 0) + 1);
        let msg = e.msg;
        if (this.codec) {
          const bytes = encodeMessage(msg);
          this.bytes += bytes.length;
          msg = decodeMessage(bytes);
        }
        const d = to === undefined ? undefined : this.net.delay(i, to);
        if (d === undefined || to === undefined) {
          this.lost++;
          continue;
        }
        this.heap.push({ t: this.now + d, seq: 0, kind: 'msg', to, from: i, msg, lagged: false });
      } else if (e.type === 'event') {
        this.tracker.onEvent(i, e.event as MembershipEvent);
      }
    }
    if (this.running[i] === 1) this.schedule(i);
  }

  private checkInvariants(): void {
    for (const inv of this.invariants) {
      if (this.now - inv.last < inv.every) continue;
      inv.last = this.now;
      const problem = inv.check();
      if (problem !== undefined) this.fail(`invariant "${inv.name}" violated: ${problem}`);
    }
  }
}
