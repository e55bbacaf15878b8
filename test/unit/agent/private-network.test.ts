// The cluster-key layer under Noise (agent/private-network.ts), on an in-memory connection pair:
// bytes round-trip with the same key, never cross in clear, and a peer with another key reads
// garbage.
import { createCipheriv } from 'node:crypto';
import type { MultiaddrConnection } from '@libp2p/interface';
import { byteStream, multiaddrConnectionPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { generateClusterKey, parseClusterKey } from '../../../agent/identity.js';
import {
  KEY_LENGTH,
  NONCE_LENGTH,
  clusterKeyProtector,
  directionKey,
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
    // what crossed: a 24-byte nonce, then ciphertext of the same length as the plaintext
    const sent = toListener();
    expect(sent.length).toBe(NONCE_LENGTH + hello.length);
    expect(sent.includes(Buffer.from('hello'))).toBe(false);
    const back = toDialer();
    expect(back.length).toBe(NONCE_LENGTH + reply.length);
    expect(back.subarray(NONCE_LENGTH).equals(reply)).toBe(false);
    // and it is exactly ChaCha20 under each direction's own key (so the two directions never
    // share a keystream)
    const dialerNonce = sent.subarray(0, NONCE_LENGTH);
    const listenerNonce = back.subarray(0, NONCE_LENGTH);
    const xor = (sender: 'dialer' | 'listener', data: Buffer) =>
      createCipheriv(
        'chacha20',
        directionKey(k, sender, dialerNonce, listenerNonce),
        Buffer.alloc(16),
      ).update(data);
    expect(sent.subarray(NONCE_LENGTH).equals(xor('dialer', hello))).toBe(true);
    expect(back.subarray(NONCE_LENGTH).equals(xor('listener', reply))).toBe(true);
  });

  it('a peer with another cluster key reads garbage', async () => {
    const { a, b } = await protectPair(key(), key());
    const hello = Buffer.from('a secret for members only');
    await a.write(hello);
    const got = Buffer.from((await b.read({ bytes: hello.length })).subarray());
    expect(got.equals(hello)).toBe(false);
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
