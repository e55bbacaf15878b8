// The private-network layer under Noise: only holders of the cluster key can open a connection.
// It plays the role of @libp2p/pnet (same key file format, same nonce exchange) but with the stream
// cipher in native code: pnet's XSalsa20 is pure JavaScript (~300 MB/s per core here) and was a
// large share of an agent's CPU while images replicate; Node's ChaCha20 runs ~1.9 GB/s.
//
// Wire protocol ("edgeswarm pnet 2"), run on every new TCP connection before Noise:
//   1. Each side sends its hello, 24 random bytes (its nonce) and a 16-byte key proof,
//      HMAC-SHA256(psk, PROOF_LABEL || role || nonce) cut to 16 bytes (role 0x01 dialer, 0x02
//      listener), and reads the other's. A proof that is not the peer's role's proof of its own
//      nonce under our key ends the connection at once with ClusterKeyMismatchError (another key,
//      or a version before the proof); text there is no agent at all (NotAnAgentError). Before a
//      check existed Noise got the garbage: its dial failed, or waited 5 s for a message of a
//      garbage length, and the error could not tell a wrong key from something else on the port.
//   2. Each direction gets its own key, HMAC-SHA256(psk, LABEL || dir || dialerNonce || listenerNonce)
//      with dir = 0x01 for bytes the dialer sends and 0x02 for bytes the listener sends, so the
//      two directions never share a keystream, even if a peer echoes our nonce back.
//   3. Every byte after that is XORed with ChaCha20(key, IV = 16 zero bytes): a fresh random key
//      per connection and direction, so a keystream is never reused. (OpenSSL carries the block
//      counter into the next IV word, so a direction is good for far more than 256 GiB.)
// Like pnet there is no MAC here: integrity and peer authentication are Noise's job above. The
// proof depends on the sender's nonce alone, so it goes out with the nonce and the check costs no
// round trip (pnet 1 sent an encrypted check after the nonces, which needs both: half a round trip
// more, 50 ms per dial through a proxy delaying 50 ms each way). It proves only that the peer holds
// the key or replays a hello of one that does; a replayer fails at Noise, as without the check.
import { createCipheriv, createHmac, randomBytes, timingSafeEqual, type Cipher } from 'node:crypto';
import type {
  AbortOptions,
  ConnectionProtector,
  MultiaddrConnection,
  MessageStreamDirection,
} from '@libp2p/interface';
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils';
import type { Logger } from '@libp2p/interface';
import { ClusterKeyMismatchError, NotAnAgentError } from './errors.js';

/** What libp2p hands over: a Uint8Array or a Uint8ArrayList (iterable of Uint8Arrays). */
type Bytes = Uint8Array | { byteLength: number; [Symbol.iterator](): Iterator<Uint8Array> };

export const NONCE_LENGTH = 24;
const LABEL = Buffer.from('edgeswarm pnet 1');
const PROOF_LABEL = Buffer.from('edgeswarm key proof 1');
/** Bytes of the key proof after each side's nonce (step 1 above). */
export const PROOF_LENGTH = 16;

const ZERO_IV = Buffer.alloc(16);
/** Time allowed for the nonce exchange when libp2p passes no signal (ms). */
const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;

/** Whether `b` is all printable ASCII or whitespace: 40 random bytes never are (~1e-21). */
function isText(b: Uint8Array): boolean {
  return b.every((c) => (c >= 0x20 && c < 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d);
}

/** Bytes in a cluster key. */
export const KEY_LENGTH = 32;

type Role = 'dialer' | 'listener';

/** HMAC-SHA256(psk, label || role byte || parts...): role 0x01 for the dialer, 0x02 the listener. */
function roleMac(psk: Uint8Array, label: Buffer, sender: Role, ...parts: Uint8Array[]): Buffer {
  const mac = createHmac('sha256', psk)
    .update(label)
    .update(Buffer.of(sender === 'dialer' ? 1 : 2));
  for (const p of parts) mac.update(p);
  return mac.digest();
}

/** The key for one direction of a connection (exported for tests). */
export function directionKey(
  psk: Uint8Array,
  sender: Role,
  dialerNonce: Uint8Array,
  listenerNonce: Uint8Array,
): Buffer {
  return roleMac(psk, LABEL, sender, dialerNonce, listenerNonce);
}

/** The key proof `sender` sends after its `nonce` (exported for tests). */
export function keyProof(psk: Uint8Array, sender: Role, nonce: Uint8Array): Buffer {
  return roleMac(psk, PROOF_LABEL, sender, nonce).subarray(0, PROOF_LENGTH);
}

function keystream(key: Buffer): Cipher {
  return createCipheriv('chacha20', key, ZERO_IV);
}

interface PrivateConnectionInit {
  maConn: MultiaddrConnection;
  inbound: Cipher;
  outbound: Cipher;
  direction: MessageStreamDirection;
  log: Logger;
}

/** A MultiaddrConnection whose bytes are XORed with a ChaCha20 keystream in each direction. */
class PrivateConnection extends AbstractMultiaddrConnection {
  readonly #maConn: MultiaddrConnection;
  readonly #outbound: Cipher;

  constructor(init: PrivateConnectionInit) {
    super({
      remoteAddr: init.maConn.remoteAddr,
      direction: init.direction,
      log: init.log,
    });
    this.#maConn = init.maConn;
    this.#outbound = init.outbound;
    const inbound = init.inbound;
    init.maConn.addEventListener('message', (evt) => {
      const data: Bytes = evt.data;
      if (data instanceof Uint8Array) this.onData(inbound.update(data));
      else for (const buf of data) this.onData(inbound.update(buf));
    });
    init.maConn.addEventListener('drain', () => this.onMuxerDrain());
    init.maConn.addEventListener('close', (evt) => {
      if (evt.error != null) {
        if (evt.local) this.abort(evt.error);
        else this.onRemoteReset();
      } else {
        this.onTransportClosed();
      }
    });
  }

  async sendClose(options?: AbortOptions): Promise<void> {
    await this.#maConn.close(options);
  }

  sendData(data: Exclude<Bytes, Uint8Array>): { sentBytes: number; canSendMore: boolean } {
    // one socket write per call: Noise hands over [length, ciphertext] pairs, and a write each
    // doubled the syscalls of every small message
    const parts = [...data];
    const plain = parts.length === 1 ? parts[0] : Buffer.concat(parts, data.byteLength);
    const canSendMore = this.#maConn.send(this.#outbound.update(plain));
    return { sentBytes: data.byteLength, canSendMore };
  }

  sendReset(err: Error): void {
    this.#maConn.abort(err);
  }

  sendPause(): void {
    this.#maConn.pause();
  }

  sendResume(): void {
    this.#maConn.resume();
  }
}

class ClusterKeyProtector implements ConnectionProtector {
  readonly [Symbol.toStringTag] = 'edgeswarm/private-network';
  readonly #psk: Uint8Array;

  constructor(psk: Uint8Array) {
    if (psk.length !== KEY_LENGTH) throw new Error(`a cluster key has ${KEY_LENGTH} bytes`);
    this.#psk = psk;
  }

  async protect(
    connection: MultiaddrConnection,
    options?: AbortOptions,
  ): Promise<MultiaddrConnection> {
    const log = connection.log.newScope('pnet');
    const signal = options?.signal ?? AbortSignal.timeout(DEFAULT_HANDSHAKE_TIMEOUT_MS);
    const localNonce = randomBytes(NONCE_LENGTH);
    const dialer = connection.direction === 'outbound';
    const [self, peer] = dialer
      ? (['dialer', 'listener'] as const)
      : (['listener', 'dialer'] as const);
    const bytes = byteStream(connection);
    const [remote] = await Promise.all([
      bytes.read({ bytes: NONCE_LENGTH + PROOF_LENGTH, signal }),
      bytes.write(Buffer.concat([localNonce, keyProof(this.#psk, self, localNonce)]), { signal }),
    ]);
    const hello = Buffer.from(remote.subarray());
    const remoteNonce = hello.subarray(0, NONCE_LENGTH);
    if (!timingSafeEqual(hello.subarray(NONCE_LENGTH), keyProof(this.#psk, peer, remoteNonce))) {
      const err = isText(hello)
        ? new NotAnAgentError(hello.toString('latin1').split(/\r?\n/)[0])
        : new ClusterKeyMismatchError();
      connection.abort(err);
      throw err;
    }
    const [dialerNonce, listenerNonce] = dialer
      ? [localNonce, remoteNonce]
      : [remoteNonce, localNonce];
    const dialerKey = directionKey(this.#psk, 'dialer', dialerNonce, listenerNonce);
    const listenerKey = directionKey(this.#psk, 'listener', dialerNonce, listenerNonce);
    const outbound = keystream(dialer ? dialerKey : listenerKey);
    const inbound = keystream(dialer ? listenerKey : dialerKey);
    log('exchanged nonces; the peer holds the cluster key');
    return new PrivateConnection({
      maConn: bytes.unwrap(),
      outbound,
      inbound,
      direction: connection.direction,
      log,
    });
  }
}

/** libp2p `connectionProtector` for the cluster key (its 32 bytes, see identity.ts). */
export function clusterKeyProtector(psk: Uint8Array): () => ConnectionProtector {
  return () => new ClusterKeyProtector(psk);
}
