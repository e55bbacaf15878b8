import { randomBytes } from 'node:crypto';
import type { Stream } from '@libp2p/interface';
import { Uint8ArrayList } from 'uint8arraylist';
import { describe, expect, it } from 'vitest';
import { frame, FrameDecoder, FrameTooLargeError, writeFrame } from '../../../membership/index.js';

const concat = (parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

/** Feeds `wire` to a decoder in pieces cut at `cuts` and returns every frame it gave, as hex. */
function decodeIn(wire: Uint8Array, cuts: number[], max = 1 << 20): string[] {
  const dec = new FrameDecoder(max);
  const out: string[] = [];
  let at = 0;
  for (const c of [...cuts, wire.length]) {
    for (const f of dec.push(wire.subarray(at, c))) out.push(Buffer.from(f).toString('hex'));
    at = c;
  }
  expect(dec.buffered).toBe(0);
  return out;
}

describe('FrameDecoder', () => {
  const payloads = [
    new Uint8Array(0),
    randomBytes(1),
    randomBytes(127),
    randomBytes(128), // two-byte length
    randomBytes(70_000), // three-byte length, larger than one noise message
    new Uint8Array(0),
    randomBytes(300),
  ];
  const wire = concat(payloads.map(frame));
  const want = payloads.map((p) => Buffer.from(p).toString('hex'));

  it('gives the same frames however the bytes are cut', () => {
    expect(decodeIn(wire, [])).toEqual(want);
    // cut points inside and around each of the small frames and length prefixes, then sparser
    for (let c = 1; c < wire.length; c += c < 400 ? 1 : 997)
      expect(decodeIn(wire, [c])).toEqual(want);
    // one byte at a time through the small frames and the start of the big one, then in halves
    const cuts = Array.from({ length: 400 }, (_, i) => i + 1);
    expect(decodeIn(wire, [...cuts, 35_000, wire.length - 1])).toEqual(want);
  });

  it('returns a big frame that came whole as a view, and copies a small one', () => {
    const big = randomBytes(1000);
    const small = randomBytes(10);
    const chunk = concat([frame(big), frame(small)]);
    const [a, b] = new FrameDecoder(2000).push(chunk);
    expect(a.buffer).toBe(chunk.buffer);
    expect(b.buffer).not.toBe(chunk.buffer);
    expect(Buffer.from(a).equals(big) && Buffer.from(b).equals(small)).toBe(true);
  });

  it('refuses a frame over the limit as soon as its length is read', () => {
    const dec = new FrameDecoder(100);
    expect(() => dec.push(frame(new Uint8Array(101)).subarray(0, 2))).toThrow(FrameTooLargeError);
    // a length prefix that never ends
    expect(() => new FrameDecoder(100).push(new Uint8Array(9).fill(0xff))).toThrow(
      FrameTooLargeError,
    );
  });
});

describe('writeFrame', () => {
  /** The least of a Stream that writeFrame uses; records what was sent. */
  function fakeStream(room: boolean) {
    const sent: Uint8ArrayList[] = [];
    const listeners = new Map<string, () => void>();
    const s = {
      status: 'open',
      writableNeedsDrain: !room,
      send: (b: Uint8ArrayList) => (sent.push(b), room),
      addEventListener: (t: string, f: () => void) => listeners.set(t, f),
      removeEventListener: (t: string) => listeners.delete(t),
    };
    return { stream: s as unknown as Stream, sent, listeners };
  }

  it('sends the parts of a frame in one send without joining them, and waits for drain when full', async () => {
    const head = new Uint8Array([1, 2, 3]);
    const body = randomBytes(5000);
    const full = fakeStream(false);
    let done = false;
    const p = writeFrame(full.stream, [head, body]).then(() => (done = true));
    await new Promise((r) => setImmediate(r));
    // one send (one muxer frame), the body in it not copied; the write waits for drain
    expect(full.sent).toHaveLength(1);
    const bufs = [...full.sent[0]];
    expect(bufs[1]).toBe(head);
    expect(bufs[2]).toBe(body);
    expect(done).toBe(false);
    full.listeners.get('drain')!();
    await p;
    const [f] = new FrameDecoder(10_000).push(full.sent[0]);
    expect(Buffer.from(f).equals(concat([head, body]))).toBe(true);
  });
});
