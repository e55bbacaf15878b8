// The cluster-key layer under Noise (agent/private-network.ts), on an in-memory connection pair:
// bytes round-trip with the same key, never cross in clear, and a peer with another key is
// refused at the key check.
import { createCipheriv, randomBytes } from 'node:crypto';
import type { MultiaddrConnection } from '@libp2p/interface';
import { byteStream, multiaddrConnectionPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { generateClusterKey, parseClusterKey } from '../../../agent/identity.js';
import { ClusterKeyMismatchError, NotAnAgentError } from '../../../agent/errors.js';
import { describeJoinError } from '../../../agent/join.js';
import {
  KEY_LENGTH,
  NONCE_LENGTH,
  PROOF_LENGTH,
  clusterKeyProtector,
  directionKey,
  keyProof,
} from '../../../agent/private-network.js';

const key = (): Uint8Array => parseClusterKey(generateClusterKey(), 'test');

/** Everything `conn` puts on the wire, in order (a listener would steal the bytes from libp2p). */
function tap(conn: MultiaddrConnection): () => Buffer {
  const seen: Buffer[] = [];
  const send = conn.send.bind(conn);
  conn.send = (data) => {
    if (data instanceof Uint8Array) seen.push(Buffer.from(data));
    else for (const b of data) seen.push(Buffer.from(b));
    return send(data);
  };
  return () => Buffer.concat(seen);
}

async function protectPair(dialerKey: Uint8Array, listenerKey: Uint8Array) {
  const [outbound, inbound] = multiaddrConnectionPair();
  const toListener = tap(outbound);
  const toDialer = tap(inbound);
  const [a, b] = await Promise.all([
    clusterKeyProtector(dialerKey)().protect(outbound),
    clusterKeyProtector(listenerKey)().protect(inbound),
  ]);
  return { a: byteStream(a), b: byteStream(b), toListener, toDialer };
}

describe('private network (cluster key layer)', () => {
  it('carries bytes both ways with the same key, and never in clear', async () => {
    const k = key();
    const { a, b, toListener, toDialer } = await protectPair(k, k);
    const hello = Buffer.from('hello from the dialer, '.repeat(50));
    const reply = Buffer.from('and back from the listener');
    await a.write(hello);
    expect(Buffer.from((await b.read({ bytes: hello.length })).subarray())).toEqual(hello);
    await b.write(reply);
    expect(Buffer.from((await a.read({ bytes: reply.length })).subarray())).toEqual(reply);
    // what crossed: a hello (24-byte nonce and the sender's key proof of it), then ciphertext
    const HELLO = NONCE_LENGTH + PROOF_LENGTH;
    const sent = toListener();
    expect(sent.length).toBe(HELLO + hello.length);
    expect(sent.includes(Buffer.from('hello'))).toBe(false);
    const back = toDialer();
    expect(back.length).toBe(HELLO + reply.length);
    expect(back.subarray(HELLO).includes(reply)).toBe(false);
    const dialerNonce = sent.subarray(0, NONCE_LENGTH);
    const listenerNonce = back.subarray(0, NONCE_LENGTH);
    expect(sent.subarray(NONCE_LENGTH, HELLO).equals(keyProof(k, 'dialer', dialerNonce))).toBe(
      true,
    );
    expect(back.subarray(NONCE_LENGTH, HELLO).equals(keyProof(k, 'listener', listenerNonce))).toBe(
      true,
    );
    // and the rest is exactly ChaCha20 under each direction's own key (so the two directions
    // never share a keystream)
    const sealed = (sender: 'dialer' | 'listener', data: Buffer) =>
      createCipheriv(
        'chacha20',
        directionKey(k, sender, dialerNonce, listenerNonce),
        Buffer.alloc(16),
      ).update(data);
    expect(sent.subarray(HELLO).equals(sealed('dialer', hello))).toBe(true);
    expect(back.subarray(HELLO).equals(sealed('listener', reply))).toBe(true);
  });

  it('the hello needs no answer first: each side sends it before reading anything', async () => {
    // pnet 1 sent its key check only after reading the peer's nonce, half a round trip more per
    // dial; a listener's hello now goes out even if the dialer has not said a word
    const [outbound, inbound] = multiaddrConnectionPair();
    const toDialer = tap(inbound);
    const k = key();
    const listener = clusterKeyProtector(k)().protect(inbound);
    await new Promise((r) => setTimeout(r, 20));
    const said = toDialer();
    expect(said.length).toBe(NONCE_LENGTH + PROOF_LENGTH);
    expect(
      said.subarray(NONCE_LENGTH).equals(keyProof(k, 'listener', said.subarray(0, NONCE_LENGTH))),
    ).toBe(true);
    outbound.abort(new Error('done'));
    await listener.catch(() => undefined);
  });

  it('a peer with another cluster key is refused at once by both sides, as a key mismatch', async () => {
    // before the key check Noise got garbage, and a dial could wait 5 s for a garbage length
    const [outbound, inbound] = multiaddrConnectionPair();
    const t0 = Date.now();
    const results = await Promise.allSettled([
      clusterKeyProtector(key())().protect(outbound),
      clusterKeyProtector(key())().protect(inbound),
    ]);
    expect(Date.now() - t0).toBeLessThan(1000);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(ClusterKeyMismatchError);
    }
    expect(outbound.status).not.toBe('open');
    expect(inbound.status).not.toBe('open');
    expect(describeJoinError(new ClusterKeyMismatchError())).toMatch(/another cluster key/);
  });

  it('text instead of a nonce is said to be no agent, with the first line of it', async () => {
    const [outbound, inbound] = multiaddrConnectionPair();
    const server = byteStream(inbound);
    const dial = clusterKeyProtector(key())().protect(outbound);
    await server.write(Buffer.from('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
    const err = await dial.then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(NotAnAgentError);
    expect(describeJoinError(err!)).toBe(
      'the handshake failed: not an edgeswarm agent (it answered "HTTP/1.1 400 Bad Request")',
    );
  });

  it('a peer that sends anything but a key proof of its nonce is refused (a version without it)', async () => {
    const [outbound, inbound] = multiaddrConnectionPair();
    const raw = byteStream(outbound);
    const listener = clusterKeyProtector(key())().protect(inbound);
    await raw.write(randomBytes(NONCE_LENGTH + PROOF_LENGTH));
    await expect(listener).rejects.toBeInstanceOf(ClusterKeyMismatchError);
  });

  it('a hello echoed back is refused: the proof is bound to the role', async () => {
    const k = key();
    const [outbound, inbound] = multiaddrConnectionPair();
    const toListener = tap(outbound);
    const echo = byteStream(inbound);
    const dial = clusterKeyProtector(k)().protect(outbound);
    await new Promise((r) => setTimeout(r, 20));
    await echo.write(toListener()); // the dialer's own nonce and proof
    await expect(dial).rejects.toBeInstanceOf(ClusterKeyMismatchError);
  });

  it('each direction and each connection has its own key', () => {
    const psk = key();
    const n1 = Buffer.alloc(NONCE_LENGTH, 1);
    const n2 = Buffer.alloc(NONCE_LENGTH, 2);
    const dialer = directionKey(psk, 'dialer', n1, n2);
    expect(directionKey(psk, 'listener', n1, n2).equals(dialer)).toBe(false);
    // a peer that echoes our nonce still gets two different keystreams
    expect(directionKey(psk, 'dialer', n1, n1).equals(directionKey(psk, 'listener', n1, n1))).toBe(
      false,
    );
    expect(directionKey(psk, 'dialer', n2, n1).equals(dialer)).toBe(false);
    expect(directionKey(key(), 'dialer', n1, n2).equals(dialer)).toBe(false);
  });

  it('refuses a cluster key that is not 32 bytes', () => {
    expect(key().length).toBe(KEY_LENGTH);
    expect(() => clusterKeyProtector(new Uint8Array(16))()).toThrow(/32 bytes/);
  });
});
