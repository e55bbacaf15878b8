// The SWIM wire codec: round trips, limits, garbage, and fuzzing (random bytes and mutated valid
// messages never throw anything but DecodeError).
import { encode } from 'cborg';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DecodeError, EncodeError } from '../../../membership/errors.js';
import {
  MAX_PACKET_BYTES,
  type PushPullEntry,
  type SwimMessage,
  decodeMessage,
  encodeMessage,
  tryDecodeMessage,
} from '../../../membership/swim/index.js';
import { metaFor } from './harness.js';

const PEER = '12D3KooWGzxzKZYveHXtpG6AsrUJBcWxHBFS2HsEoGTxrMLvKXtf';
const coord = {
  vec: [0.001, -0.002, 0, 0.5, 0, 0, 0, 0.25],
  error: 0.4,
  adjustment: -0.0001,
  height: 1e-5,
};

const samples: SwimMessage[] = [
  {
    type: 'ping',
    seq: 1,
    target: PEER,
    updates: [
      { kind: 'alive', id: PEER, incarnation: 3, meta: metaFor('x', { load: 0.5 }) },
      { kind: 'suspect', id: 'b', incarnation: 0, from: 'c' },
      { kind: 'dead', id: 'b', incarnation: 4294967295, from: 'c' },
      { kind: 'left', id: 'd', incarnation: 9 },
    ],
  },
  {
    type: 'ping-req',
    seq: 4294967295,
    target: 'b',
    targetAddrs: ['/ip4/1.2.3.4/tcp/1'],
    nack: true,
    updates: [],
  },
  { type: 'ack', seq: 7, updates: [] },
  { type: 'ack', seq: 7, coordinate: coord, updates: [] },
  { type: 'nack', seq: 0 },
  {
    type: 'gossip',
    updates: [{ kind: 'alive', id: 'e', incarnation: 0, meta: metaFor('e', { tags: { a: '1' } }) }],
  },
  {
    type: 'push-pull',
    seq: 2,
    join: true,
    members: [
      { id: 'a', incarnation: 1, state: 'alive', meta: metaFor('a') },
      { id: 'b', incarnation: 2, state: 'dead', meta: metaFor('b') },
    ],
  },
  {
    type: 'push-pull-reply',
    seq: 2,
    members: [{ id: 'c', incarnation: 3, state: 'left', meta: metaFor('c') }],
  },
];

function expectOnlyDecodeError(bytes: Uint8Array): void {
  try {
    decodeMessage(bytes);
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
  }
}

describe('codec', () => {
  it('round-trips every message type', () => {
    for (const m of samples) expect(decodeMessage(encodeMessage(m))).toEqual(m);
  });

  it('rejects garbage with DecodeError', () => {
    const bad: Uint8Array[] = [
      new Uint8Array(0),
      new Uint8Array([0xff]),
      encode({ type: 'ping' }),
      encode([2, 0, 1, 'a', []]), // unknown version
      encode([1, 9, 1]), // unknown type
      encode([1, 0, -1, 'a', []]), // negative seq
      encode([1, 0, 1.5, 'a', []]), // fractional seq
      encode([1, 0, 2 ** 32, 'a', []]), // seq out of range
      encode([1, 0, 1, '', []]), // empty id
      encode([1, 0, 1, 'x'.repeat(129), []]), // id too long
      encode([1, 0, 1, 'a', [[7, 'a', 1, 'b']]]), // bad update kind
      encode([1, 0, 1, 'a', [[3, 'a', 1, 'extra']]]), // left with a from
      encode([1, 3, 1, 'extra']), // too many fields
      encode([1, 4, new Array(257).fill([3, 'a', 1])]), // too many updates
      encode([1, 2, 1, [[NaN, 0, 0, 0, 0, 0, 0, 0], 0.1, 0, 0], []]), // NaN coordinate
      encode([1, 2, 1, [[1e9, 0, 0, 0, 0, 0, 0, 0], 0.1, 0, 0], []]), // coordinate out of bounds
      encode([1, 2, 1, [[0, 0], 0.1, 0, 0], []]), // wrong dimensionality
      encode([1, 1, 1, 'b', ['x'.repeat(300)], true, []]), // addr too long
      encode([1, 5, 1, 'yes', []]), // join not a boolean
      encode([1, 6, 1, [['a', 1, 5, ['n', 's', [], {}]]]]), // bad member state
      encode([1, 6, 1, [['a', 1, 0, ['n', 's', [], { k: 1 }]]]]), // tag value not a string
      encode([1, 6, 1, [['a', 1, 0, ['n', 's', [], {}, -1]]]]), // negative load
      encode([1, 6, 1, [['a', 1, 0, ['n', 's', [], {}, Infinity]]]]), // infinite load
      encode([1, 6, 1, [['a', 1, 0, ['', 's', [], {}]]]]), // empty name
    ];
    for (const b of bad) {
      expect(() => decodeMessage(b), String(b)).toThrow(DecodeError);
      const r = tryDecodeMessage(b);
      expect(r.ok).toBe(false);
    }
  });

  it('a __proto__ tag never reaches the prototype', () => {
    const tags = new Map([['__proto__', 'x']]);
    const bytes = encode([1, 6, 1, [['a', 1, 0, ['n', 's', [], tags]]]]);
    expect(() => decodeMessage(bytes)).toThrow(DecodeError);
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('enforces the size limits: packets 64 KiB, push-pull larger, and the caller limit', () => {
    const big: SwimMessage = {
      type: 'gossip',
      updates: Array.from({ length: 200 }, (_, i) => ({
        kind: 'alive' as const,
        id: `peer-${i}`,
        incarnation: 0,
        meta: metaFor(`p${i}`, { tags: { blob: 'z'.repeat(1000) } }),
      })),
    };
    expect(() => encodeMessage(big)).toThrow(EncodeError);
    // A forged oversize packet is refused before it is parsed.
    const forged = encode([1, 4, [], 'x'.repeat(MAX_PACKET_BYTES)]);
    expect(() => decodeMessage(forged)).toThrow(/too large/);
    // 10,000 members with typical metadata fit in a push-pull.
    const members: PushPullEntry[] = Array.from({ length: 10_000 }, (_, i) => ({
      id: `12D3KooW${String(i).padStart(44, 'x')}`,
      incarnation: i,
      state: 'alive',
      meta: metaFor(`node-${i}`, { tags: { role: 'edge', zone: 'z1' }, load: 0.25 }),
    }));
    const pp: SwimMessage = { type: 'push-pull', seq: 1, join: false, members };
    const bytes = encodeMessage(pp);
    expect(bytes.length).toBeGreaterThan(MAX_PACKET_BYTES);
    expect(decodeMessage(bytes)).toEqual(pp);
    expect(() => decodeMessage(bytes, 1024)).toThrow(DecodeError);
  });

  it('deep nesting is a DecodeError, not a crash', () => {
    const depth = 60_000;
    const bytes = new Uint8Array(depth + 4);
    bytes.set([0x83, 0x01, 0x04]);
    bytes.fill(0x81, 3);
    expect(() => decodeMessage(bytes)).toThrow(DecodeError);
  });

  it('fuzz: random bytes never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), (b) => expectOnlyDecodeError(b)),
      { numRuns: 3000 },
    );
    // Random bytes behind a plausible header get past the cheap checks.
    fc.assert(
      fc.property(
        fc.integer({ min: 0x82, max: 0x87 }),
        fc.integer({ min: 0, max: 6 }),
        fc.uint8Array({ maxLength: 256 }),
        (h, t, rest) => {
          expectOnlyDecodeError(new Uint8Array([h, 1, t, ...rest]));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('fuzz: mutated valid messages never throw anything but DecodeError', () => {
    const encoded = samples.map(encodeMessage);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: encoded.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 6,
        }),
        fc.nat(),
        (which, flips, cut) => {
          const b = encoded[which].slice();
          for (const [pos, val] of flips) b[pos % b.length] = val;
          expectOnlyDecodeError(b);
          expectOnlyDecodeError(b.subarray(0, cut % (b.length + 1)));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('fuzz: arbitrary CBOR values never throw anything but DecodeError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expectOnlyDecodeError(encode([1, 0, v, v, v]));
        expectOnlyDecodeError(encode([1, 6, 1, [[v, 1, 0, v]]]));
      }),
      { numRuns: 2000 },
    );
  });

  it('a decoded message that passes validation is accepted by the core', async () => {
    const { SwimCore, resolveSwimConfig } = await import('../../../membership/swim/index.js');
    const core = new SwimCore({
      self: { id: 'me', meta: metaFor('me') },
      config: resolveSwimConfig('lan'),
      rng: () => 0.5,
      now: 0,
    });
    for (const m of samples)
      expect(() => core.handle('peer', decodeMessage(encodeMessage(m)), 1)).not.toThrow();
  });
});
