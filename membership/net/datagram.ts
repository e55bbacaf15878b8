// Datagram-style messaging over libp2p streams, for SWIM: send() is fire-and-forget, like UDP. Each
// peer gets one long-lived outbound stream carrying length-prefixed frames; a message to a peer
// whose stream is being opened waits in a small queue, and when the stream's buffer is full or the
// dial fails the message is dropped and counted. The failure detector above copes with loss; it
// must never be held up by one slow or dead peer.
import type { Connection, Stream } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import type { StreamHandling } from './components.js';
import { frame, readFrames } from './framing.js';

/** The part of a libp2p node the channel needs. */
export type DatagramComponents = StreamHandling;

export type DropReason =
  'dial_failed' | 'queue_full' | 'backpressure' | 'stream_closed' | 'too_large' | 'stopped';

export interface DatagramOptions {
  protocol: string;
  /** Largest frame sent or accepted (bytes). */
  maxMessageBytes: number;
  /** Time allowed to open a stream (dial included), ms. */
  openTimeoutMs: number;
  /** Messages held per peer while its stream opens; more are dropped. */
  queueLimit?: number;
  /** How long a peer whose dial failed is not redialled (ms); messages meanwhile are dropped. */
  dialBackoffMs?: number;
  onMessage(from: string, bytes: Uint8Array): void;
  onDrop?(reason: DropReason, to: string): void;
  /** A peer sent something we could not read (oversized frame, broken stream). */
  onBadInput?(from: string, reason: string): void;
}

interface PeerChannel {
  stream?: Stream;
  opening?: Promise<void>;
  queue: Uint8Array[];
  failedUntil: number;
}

export class DatagramChannel {
  readonly #c: DatagramComponents;
  readonly #o: Required<Omit<DatagramOptions, 'onDrop' | 'onBadInput'>> &
    Pick<DatagramOptions, 'onDrop' | 'onBadInput'>;
  readonly #peers = new Map<string, PeerChannel>();
  readonly #inbound = new Set<Stream>();
  #started = false;

  constructor(components: DatagramComponents, opts: DatagramOptions) {
    this.#c = components;
    this.#o = { queueLimit: 32, dialBackoffMs: 250, ...opts };
  }

  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#c.handle(this.#o.protocol, (stream, conn) => void this.#serve(stream, conn), {
      maxInboundStreams: 8,
      maxOutboundStreams: 8,
      runOnLimitedConnection: false,
    });
  }

  async stop(): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#c.unhandle(this.#o.protocol).catch(() => {});
    for (const p of this.#peers.values()) p.stream?.abort(new Error('stopping'));
    for (const s of this.#inbound) s.abort(new Error('stopping'));
    this.#peers.clear();
    this.#inbound.clear();
  }

  /** Closes the channel to one peer (it is reopened on the next send). */
  forget(peer: string): void {
    const p = this.#peers.get(peer);
    if (!p) return;
    p.stream?.abort(new Error('forgotten'));
    this.#peers.delete(peer);
  }

  /** Sends one message; never throws and never waits. Returns false if it was dropped at once. */
  send(to: string, bytes: Uint8Array): boolean {
    if (!this.#started) return this.#drop('stopped', to);
    if (bytes.length > this.#o.maxMessageBytes) return this.#drop('too_large', to);
    let p = this.#peers.get(to);
    if (!p) {
      p = { queue: [], failedUntil: 0 };
      this.#peers.set(to, p);
    }
    const f = frame(bytes);
    if (p.stream && p.stream.status === 'open') {
      if (p.stream.writableNeedsDrain) return this.#drop('backpressure', to);
      p.stream.send(f);
      return true;
    }
    if (p.stream) p.stream = undefined;
    if (Date.now() < p.failedUntil) return this.#drop('dial_failed', to);
    if (p.queue.length >= this.#o.queueLimit) return this.#drop('queue_full', to);
    p.queue.push(f);
    if (!p.opening) p.opening = this.#open(to, p);
    return true;
  }

  #drop(reason: DropReason, to: string): false {
    this.#o.onDrop?.(reason, to);
    return false;
  }

  async #open(to: string, p: PeerChannel): Promise<void> {
    try {
      const stream = await this.#c.dialProtocol(peerIdFromString(to), this.#o.protocol, {
        signal: AbortSignal.timeout(this.#o.openTimeoutMs),
      });
      if (!this.#started || this.#peers.get(to) !== p) {
        stream.abort(new Error('not needed'));
        return;
      }
      p.stream = stream;
      stream.addEventListener('close', () => {
        if (p.stream === stream) p.stream = undefined;
      });
      // drain anything the remote writes on our outbound stream (nothing is expected)
      void (async () => {
        try {
          for await (const _ of stream) void _;
        } catch {
          // closed
        }
      })();
      const queued = p.queue.splice(0);
      for (const f of queued) {
        if (stream.status !== 'open' || stream.writableNeedsDrain) {
          this.#drop('backpressure', to);
          continue;
        }
        stream.send(f);
      }
    } catch {
      p.failedUntil = Date.now() + this.#o.dialBackoffMs;
      for (let i = 0; i < p.queue.length; i++) this.#drop('dial_failed', to);
      p.queue.length = 0;
    } finally {
      p.opening = undefined;
    }
  }

  async #serve(stream: Stream, conn: Connection): Promise<void> {
    const from = conn.remotePeer.toString();
    this.#inbound.add(stream);
    try {
      for await (const msg of readFrames(stream, this.#o.maxMessageBytes)) {
        this.#o.onMessage(from, msg);
      }
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'frame_too_large') this.#o.onBadInput?.(from, 'frame_too_large');
      stream.abort(e);
    } finally {
      this.#inbound.delete(stream);
    }
  }
}
