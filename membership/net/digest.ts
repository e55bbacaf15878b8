// The cheap first step of an anti-entropy round: one datagram carrying a digest of the sender's
// state, over a long-lived stream per peer (DatagramChannel), in place of a new stream per round.
// A receiver whose own digest is the same has nothing to exchange with the sender and does nothing
// more; one whose digest differs starts the full session itself. A digest that cannot be sent
// (the peer is unreachable, or runs an agent without this protocol) is reported so the caller can
// fall back to the full session.
//
// Why: a session on a new stream costs a yamux open, a multistream-select round trip, a frame each
// way and two closes, ~5 CPU-ms for both ends on the test machine; nearly every round finds
// nothing to exchange, because changes are also broadcast on the gossip mesh at once.
//
// Wire: [DIGEST_MESSAGE_VERSION][digest bytes], one frame of DatagramChannel.
import { DatagramChannel, type DatagramComponents, type DropReason } from './datagram.js';

/** First byte of a digest message. */
export const DIGEST_MESSAGE_VERSION = 1;
/** Longest digest accepted (bytes). */
export const MAX_DIGEST_BYTES = 64;
/** Time allowed to open the stream to a peer (ms). */
const DIGEST_OPEN_TIMEOUT_MS = 5_000;

export interface DigestExchangeOptions {
  protocol: string;
  /** The digest of the local state now. Equal digests mean a session would exchange nothing. */
  digest(): Uint8Array;
  /** The sender's digest equals ours. */
  onSame?(peer: string): void;
  /** The sender's digest differs from ours: run the full session with it. */
  onDiffer(peer: string): void;
  /** Our digest could not be sent to `peer`: run the full session with it instead. */
  onUnsent(peer: string): void;
  /** A peer sent something that is not a digest message. */
  onBadInput?(peer: string, reason: string): void;
  /** Bytes of digest messages sent and received. */
  onBytes?(direction: 'in' | 'out', peer: string, n: number): void;
}

/** Drops that mean the digest did not reach the peer and will not (stopping is not one). */
const UNSENT: ReadonlySet<DropReason> = new Set([
  'dial_failed',
  'queue_full',
  'backpressure',
  'stream_closed',
]);

export class DigestExchange {
  readonly #o: DigestExchangeOptions;
  readonly #channel: DatagramChannel;

  constructor(components: DatagramComponents, opts: DigestExchangeOptions) {
    this.#o = opts;
    this.#channel = new DatagramChannel(components, {
      protocol: opts.protocol,
      maxMessageBytes: 1 + MAX_DIGEST_BYTES,
      openTimeoutMs: DIGEST_OPEN_TIMEOUT_MS,
      onMessage: (from, bytes) => this.#receive(from, bytes),
      onDrop: (reason, to) => {
        if (UNSENT.has(reason)) this.#o.onUnsent(to);
      },
      onBadInput: (from, reason) => this.#o.onBadInput?.(from, reason),
    });
  }

  start(): Promise<void> {
    return this.#channel.start();
  }

  stop(): Promise<void> {
    return this.#channel.stop();
  }

  /** Sends our digest to `peer`; what follows is up to the peer (or onUnsent). */
  offer(peer: string): void {
    const d = this.#o.digest();
    const msg = new Uint8Array(1 + d.length);
    msg[0] = DIGEST_MESSAGE_VERSION;
    msg.set(d, 1);
    if (this.#channel.send(peer, msg)) this.#o.onBytes?.('out', peer, msg.length);
  }

  #receive(from: string, bytes: Uint8Array): void {
    this.#o.onBytes?.('in', from, bytes.length);
    if (bytes.length < 2 || bytes[0] !== DIGEST_MESSAGE_VERSION) {
      this.#o.onBadInput?.(from, 'bad_digest');
      return;
    }
    const theirs = Buffer.from(bytes.buffer, bytes.byteOffset + 1, bytes.length - 1);
    if (theirs.equals(this.#o.digest())) this.#o.onSame?.(from);
    else this.#o.onDiffer(from);
  }
}
