// The replicated key/value state of an agent: writes are durable locally before they are
// acknowledged, broadcast on the gossip mesh at once, and repaired by anti-entropy sessions with a
// random member (every third one in another site), which exchange only the differences. A round
// starts with a digest of our summary sent over a long-lived stream (DigestExchange): the member
// starts a session back only when its digest differs, so a round with nothing to repair costs one
// small message instead of a new stream. A member that comes back (restart, healed partition) gets
// a session at once. Tombstones are collected once every member has them (or after the horizon).
//
// An agent runs one session at a time, in either direction: a peer that asks while one runs is
// turned away and tries again later. So when an agent comes back after missing many writes and
// every other member reaches for it at once, it takes the difference once, not once per member.
// Those turned away try again a few times, shortly after (KV_UP_SYNC_RETRIES): the one that came
// back may hold writes nobody else has (acknowledged just before it crashed, never broadcast), and
// every member that comes for them is one more that has them.
import { setTimeout as delay } from 'node:timers/promises';
import type { GossipSub } from '@libp2p/gossipsub';
import type { Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import {
  Backoff,
  LogThrottle,
  Broadcast,
  DigestExchange,
  FramedStream,
  type MembershipEvent,
  type ServiceLogger,
  type ServiceNode,
} from '../../membership/index.js';
import { isOutOfSpace, type KvStore } from '../../storage/index.js';
import {
  decodeBatch,
  encodeBatch,
  hlcToString,
  StateDecodeError,
  StateStore,
  summaryDigest,
  VersionVector,
  DEFAULT_MAX_MESSAGE_BYTES,
  type StateChange,
  type StateRecord,
} from '../../storage/state/index.js';
import { runSession } from './session.js';

export const KV_TOPIC = 'edgeswarm/kv/1';
export const KV_PROTOCOL = '/edgeswarm/kv/1.0.0';
/** The first step of a round: our summary's digest (DigestExchange). */
export const KV_DIGEST_PROTOCOL = '/edgeswarm/kv-digest/1.0.0';
/** Default time between anti-entropy sessions (ms). */
export const KV_SYNC_INTERVAL_MS = 2_000;
/** One session in this many is with a member of another site, when there is one. */
export const KV_SYNC_OTHER_SITE_EVERY = 3;
/**
 * After a session failed on this agent's own store for want of space, no session is
 * run or served for this long, doubled after each such failure up to KV_LOCAL_BACKOFF_MAX_MS (ms).
 * Without it, both sides started a session at every digest round (~1-2 s) and the peer streamed
 * the whole difference again each time, to be refused again (4.7-7.1 MB/s for a 7.2 MB
 * difference, measured by a QA pass on a full tmpfs).
 */
export const KV_LOCAL_BACKOFF_MS = 5_000;
export const KV_LOCAL_BACKOFF_MAX_MS = 60_000;
/** Time allowed for one session (ms); a big catch-up streams within it. */
export const KV_SESSION_TIMEOUT_MS = 60_000;
/** After a member comes back, the next one that comes back is not synced with for this long (ms). */
export const KV_UP_SYNC_GAP_MS = 1_000;
/**
 * A session with a member that came back (from dead or left) which did not run (it was busy with
 * another member's, or the dial failed) is tried again this many times, each after
 * KV_UP_SYNC_RETRY_MS x 0.5-1.5. In the lab (6 agents), an acknowledged write on an agent SIGKILLed
 * and restarted reached the other five in 1.3-6.4 s over 19 restarts, and once in more than 15 s,
 * without this: the restarted agent turned away all but one of them and the rest waited for
 * random rounds. With it: 1.4-2.8 s over 12 restarts.
 */
export const KV_UP_SYNC_RETRIES = 4;
export const KV_UP_SYNC_RETRY_MS = 400;
/** How often tombstones are collected (ms). */
export const KV_GC_INTERVAL_MS = 60_000;
/** Failures to apply a gossiped write (a full disk) are warned about at most this often (ms). */
export const KV_APPLY_FAILURE_LOG_MS = 60_000;

export interface KvMembership {
  readonly selfId: string;
  readonly selfSite: string;
  randomPeer(opts?: { otherSite?: boolean }): string | undefined;
  site(id: string): string | undefined;
  /** Ids of members that have not left (alive, suspect or dead): their summaries gate tombstone GC. */
  memberIds(): string[];
  /** Every member known, with its state: a broadcast must reach those alive. */
  members(): ReadonlyArray<{ id: string; state: string }>;
  addEventListener(type: 'member:up', l: (e: Event) => void): void;
  removeEventListener(type: 'member:up', l: (e: Event) => void): void;
}

export interface KvComponents {
  node: ServiceNode<{ pubsub: GossipSub }>;
  store: KvStore;
  membership: KvMembership;
  logger: ServiceLogger;
  metrics?: {
    bytes(direction: 'in' | 'out', scope: 'site' | 'wan', n: number): void;
    keys(n: number): void;
    dropped(reason: string): void;
  };
}

export interface KvOptions {
  maxValueBytes?: number;
  syncIntervalMs?: number;
  tombstoneHorizonMs?: number;
}

/** A change as watches see it. */
export interface KvEvent {
  key: string;
  op: 'put' | 'del';
  version: string;
  size: number;
  /** Where the change was made (the origin's member id). */
  origin: string;
}

export class KvService extends EventTarget {
  readonly #c: KvComponents;
  readonly #o: KvOptions;
  #state: StateStore | undefined;
  #digests: DigestExchange | undefined;
  #timer: NodeJS.Timeout | undefined;
  #gcTimer: NodeJS.Timeout | undefined;
  #round = 0;
  #started = false;
  readonly #controller = new AbortController();
  readonly #summaries = new Map<string, VersionVector>();
  /** The peer of the session running now, if any (one at a time, either direction). */
  #busyWith: string | undefined;
  /** Sessions pause while this waits, after failing on our own store (KV_LOCAL_BACKOFF_MS). */
  readonly #localBackoff = new Backoff(KV_LOCAL_BACKOFF_MS, KV_LOCAL_BACKOFF_MAX_MS);
  readonly #applyFailures = new LogThrottle(KV_APPLY_FAILURE_LOG_MS);
  #lastUpSync = 0;
  /** Digests received from members: the same as ours, or not (a session followed). */
  readonly digestsReceived = { same: 0, differ: 0 };
  readonly #onMemberUp = (evt: Event) => {
    // a member came back (restart, healed partition): catch up with it soon, at most once per
    // KV_UP_SYNC_GAP_MS however many come back together
    const now = Date.now();
    if (now - this.#lastUpSync < KV_UP_SYNC_GAP_MS) return;
    this.#lastUpSync = now;
    const { member, previous } = (evt as CustomEvent<MembershipEvent>).detail;
    // one that is new to us has nothing we could lack for long: one try, no retries
    void this.#catchUp(member.id, previous === 'none' ? 0 : KV_UP_SYNC_RETRIES);
  };

  readonly #gossip: Broadcast;

  constructor(components: KvComponents, options: KvOptions = {}) {
    super();
    this.#c = components;
    this.#o = options;
    this.#gossip = new Broadcast(
      { pubsub: components.node.services.pubsub, membership: components.membership },
      KV_TOPIC,
      (m) => void this.#applyGossip(m.data, m.from),
    );
  }

  get state(): StateStore {
    if (!this.#state) throw new Error('kv not started');
    return this.#state;
  }

  get maxValueBytes(): number {
    return this.state.maxValueBytes;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#state = await StateStore.open({
      store: this.#c.store,
      nodeId: this.#c.node.peerId.toString(),
      maxValueBytes: this.#o.maxValueBytes,
      tombstoneHorizonMs: this.#o.tombstoneHorizonMs,
    });
    this.#c.metrics?.keys(this.#state.stats().liveKeys);
    this.#gossip.start();
    await this.#c.node.handle(
      KV_PROTOCOL,
      (stream, conn) => void this.#serve(stream, conn.remotePeer.toString()),
      {
        maxInboundStreams: 16,
        maxOutboundStreams: 16,
      },
    );
    this.#digests = new DigestExchange(this.#c.node, {
      protocol: KV_DIGEST_PROTOCOL,
      digest: () => summaryDigest(this.state.summary()),
      // the same versions: what a session would have recorded for tombstone collection
      onSame: (peer) => {
        this.digestsReceived.same++;
        this.#summaries.set(peer, this.state.summary());
      },
      onDiffer: (peer) => {
        this.digestsReceived.differ++;
        void this.syncWith(peer);
      },
      onUnsent: (peer) => void this.syncWith(peer),
      onBadInput: () => this.#c.metrics?.dropped('decode'),
      onBytes: (direction, peer, n) => this.#c.metrics?.bytes(direction, this.#scope(peer), n),
    });
    await this.#digests.start();
    this.#c.membership.addEventListener('member:up', this.#onMemberUp);
    const interval = this.#o.syncIntervalMs ?? KV_SYNC_INTERVAL_MS;
    const tick = () => {
      this.#timer = setTimeout(
        () => void this.#syncRound().finally(() => this.#started && tick()),
        interval * (0.5 + Math.random()),
      );
      this.#timer.unref?.();
    };
    tick();
    this.#gcTimer = setInterval(
      () => void this.collectGarbage().catch(() => {}),
      KV_GC_INTERVAL_MS,
    );
    this.#gcTimer.unref();
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    clearTimeout(this.#timer);
    clearInterval(this.#gcTimer);
    this.#controller.abort();
    this.#c.membership.removeEventListener('member:up', this.#onMemberUp);
    this.#gossip.stop();
    await this.#c.node.unhandle(KV_PROTOCOL).catch(() => {});
    await this.#digests?.stop();
    await this.#state?.close();
  }

  // ---- the API ----

  /** Writes a value (null deletes); resolves once it is on disk here, then broadcasts it. */
  async put(key: string, value: Uint8Array | null): Promise<{ key: string; version: string }> {
    const rec = await this.state.write(key, value);
    this.#emitRecord(rec);
    this.#c.metrics?.keys(this.state.stats().liveKeys);
    void this.#broadcast(rec);
    return { key, version: hlcToString(rec.hlc) };
  }

  async get(key: string): Promise<{ value: Uint8Array; version: string } | undefined> {
    const e = await this.state.get(key);
    return e ? { value: e.value, version: e.version } : undefined;
  }

  /** Deletes a key; false if it was not there (nothing is written then). */
  async del(key: string): Promise<{ key: string; version: string } | false> {
    const cur = await this.state.get(key);
    if (!cur) return false;
    return this.put(key, null);
  }

  list(prefix?: string, opts?: { limit?: number; after?: string }) {
    return this.state.list(prefix, opts);
  }

  async #broadcast(rec: StateRecord): Promise<void> {
    try {
      await this.#gossip.publish(encodeBatch({ records: [rec], cleared: new VersionVector() }));
    } catch (err) {
      this.#c.logger.debug(
        { err: (err as Error).message },
        'kv publish (anti-entropy will carry it)',
      );
    }
  }

  #emitRecord(rec: StateRecord): void {
    const ev: KvEvent = {
      key: rec.key,
      op: rec.value === null ? 'del' : 'put',
      version: hlcToString(rec.hlc),
      size: rec.value?.length ?? 0,
      origin: rec.origin,
    };
    this.dispatchEvent(new CustomEvent<KvEvent>('change', { detail: ev }));
  }

  #emitChanges(changes: StateChange[]): void {
    for (const c of changes) this.#emitRecord(c.record);
    if (changes.length > 0) this.#c.metrics?.keys(this.state.stats().liveKeys);
  }

  async #applyGossip(bytes: Uint8Array, from: string | undefined): Promise<void> {
    if (!this.#started) return;
    // Every agent publishes only its own writes, signed (StrictSign): a record is taken only from
    // the publisher that it names as its origin, whoever relayed the message. An unsigned message
    // has no authenticated publisher.
    if (from === undefined) {
      this.#c.metrics?.dropped('unsigned');
      return;
    }
    try {
      // cleared versions are only trusted inside a session, after the records that clear them
      const batch = decodeBatch(bytes);
      const res = await this.state.apply(batch.records, undefined, { from });
      this.#emitChanges(res.changes);
      if (res.clockDrift > 0) this.#c.metrics?.dropped('clock_drift');
      if (res.forged > 0) this.#c.metrics?.dropped('forged_origin');
    } catch (err) {
      if (err instanceof StateDecodeError) this.#c.metrics?.dropped('decode');
      else {
        // once per write while the disk is full: said once a minute, with the count
        const failures = this.#applyFailures.hit();
        if (failures !== undefined)
          this.#c.logger.warn({ err: (err as Error).message, failures }, 'kv gossip apply failed');
      }
    }
  }

  // ---- anti-entropy ----

  /** Offers our digest to a random member; it starts a session back if it differs. */
  async #syncRound(): Promise<void> {
    const otherSite = ++this.#round % KV_SYNC_OTHER_SITE_EVERY === 0;
    const peer = this.#c.membership.randomPeer({ otherSite }) ?? this.#c.membership.randomPeer();
    if (peer && this.#started) this.#digests?.offer(peer);
  }

  #scope(peer: string): 'site' | 'wan' {
    return this.#c.membership.site(peer) === this.#c.membership.selfSite ? 'site' : 'wan';
  }

  /** One session with `peer`; skipped when a session is already running. Returns records received. */
  async syncWith(peer: string): Promise<number> {
    return (await this.#trySync(peer)) ?? 0;
  }

  /** A session with a member that came back, tried again while it does not run (see the header). */
  async #catchUp(peer: string, retries: number): Promise<void> {
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) {
        const ms = KV_UP_SYNC_RETRY_MS * (0.5 + Math.random());
        try {
          await delay(ms, undefined, { signal: this.#controller.signal, ref: false });
        } catch {
          return; // stopped
        }
      }
      if ((await this.#trySync(peer)) !== undefined) return;
    }
  }

  /** syncWith, but undefined when no session ran (busy here, stopped, or it failed). */
  async #trySync(peer: string): Promise<number | undefined> {
    if (!this.#started || peer === this.#c.membership.selfId || this.#busyWith !== undefined)
      return undefined;
    if (this.#pausedForLocalFailure()) return undefined;
    this.#busyWith = peer;
    const signal = AbortSignal.any([
      this.#controller.signal,
      AbortSignal.timeout(KV_SESSION_TIMEOUT_MS),
    ]);
    try {
      const stream = await this.#c.node.dialProtocol(peerIdFromString(peer), KV_PROTOCOL, {
        signal,
      });
      return await this.#session(stream, peer, signal);
    } catch (err) {
      if (!this.#localFailure(err))
        this.#c.logger.debug({ peer, err: (err as Error).message }, 'kv session failed');
      return undefined;
    } finally {
      this.#busyWith = undefined;
    }
  }

  async #serve(stream: Stream, peer: string): Promise<void> {
    if (this.#busyWith !== undefined || this.#pausedForLocalFailure()) {
      // busy with another session (or paused): the peer will try again at a later round
      stream.abort(new Error('busy'));
      return;
    }
    this.#busyWith = peer;
    const signal = AbortSignal.any([
      this.#controller.signal,
      AbortSignal.timeout(KV_SESSION_TIMEOUT_MS),
    ]);
    try {
      await this.#session(stream, peer, signal);
    } catch (err) {
      if (err instanceof StateDecodeError) this.#c.metrics?.dropped('decode');
      if (!this.#localFailure(err))
        this.#c.logger.debug({ peer, err: (err as Error).message }, 'kv session (served) failed');
      stream.abort(err as Error);
    } finally {
      this.#busyWith = undefined;
    }
  }

  #pausedForLocalFailure(): boolean {
    return this.#localBackoff.waiting(Date.now());
  }

  /**
   * If `err` is this agent's own store failing for want of space, pauses sessions
   * (KV_LOCAL_BACKOFF_MS, doubling), logs it once per pause, and returns true.
   */
  #localFailure(err: unknown): boolean {
    if (!isOutOfSpace(err)) return false;
    const ms = this.#localBackoff.fail(Date.now());
    this.#c.logger.warn(
      { err: (err as Error).message, retryInMs: ms },
      'kv anti-entropy paused: no space left on the device holding the data directory',
    );
    return true;
  }

  async #session(stream: Stream, peer: string, signal: AbortSignal): Promise<number> {
    const fs = new FramedStream(stream, DEFAULT_MAX_MESSAGE_BYTES);
    const scope = this.#scope(peer);
    const res = await runSession(this.state, fs, signal, {
      onApplied: (r) => {
        if (r.clockDrift > 0) this.#c.metrics?.dropped('clock_drift');
        this.#emitChanges(r.changes);
      },
      onBytes: (direction, n) => this.#c.metrics?.bytes(direction, scope, n),
    });
    this.#localBackoff.reset();
    if (res.peerSummary) this.#summaries.set(peer, res.peerSummary);
    if (res.recordsIn > 0)
      this.#c.logger.debug({ peer, records: res.recordsIn, bytes: res.bytesIn }, 'kv caught up');
    return res.recordsIn;
  }

  /** Collects tombstones every member not left has seen (or older than the horizon). */
  async collectGarbage(): Promise<number> {
    if (!this.#state) return 0;
    const vectors = [this.#state.summary()];
    for (const id of this.#c.membership.memberIds()) {
      if (id === this.#c.membership.selfId) continue;
      vectors.push(this.#summaries.get(id) ?? new VersionVector());
    }
    const res = await this.#state.collectGarbage(Date.now(), vectors);
    return res.collected;
  }
}
