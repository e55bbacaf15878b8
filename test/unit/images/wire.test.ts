// The chunks protocol's messages: CBOR maps, and the binary chunk, have and req messages; garbage is
// a WireError.
import { randomBytes } from 'node:crypto';
import { encode } from 'cborg';
import { describe, expect, it } from 'vitest';
import {
  decodeChunkMsg,
  encodeChunkMsg,
  MAX_INDEXES,
  WireError,
  type ChunkMsg,
} from '../../../edge-sites/images/wire.js';

describe('chunks wire format', () => {
  it('round-trips every message kind', () => {
    const data = randomBytes(70_000);
    const msgs: ChunkMsg[] = [
      { t: 'open', d: `sha256:${'a'.repeat(64)}` },
      { t: 'bits', b: new Uint8Array([1, 2, 3]) },
      { t: 'unknown' },
      { t: 'req', i: [0, 5, 4_000_000] },
      { t: 'chunk', i: 123_456, data: new Uint8Array(data) },
      { t: 'chunk', i: 0, data: new Uint8Array(0) },
      { t: 'miss', i: 7 },
      { t: 'have', i: [1, 2] },
    ];
    for (const m of msgs) expect(decodeChunkMsg(encodeChunkMsg(m))).toEqual(m);
  });

  it('a chunk message is a 5-byte header and the bytes, decoded without a copy', () => {
    const data = new Uint8Array([9, 8, 7]);
    const wire = encodeChunkMsg({ t: 'chunk', i: 258, data });
    expect([...wire]).toEqual([1, 0, 0, 1, 2, 9, 8, 7]);
    const back = decodeChunkMsg(wire);
    if (back.t !== 'chunk') throw new Error('expected a chunk');
    expect(back.data.buffer).toBe(wire.buffer);
  });

  it('have and req are a tag byte and big-endian u32 indexes; their CBOR forms are still read', () => {
    expect([...encodeChunkMsg({ t: 'have', i: [1, 258] })]).toEqual([2, 0, 0, 0, 1, 0, 0, 1, 2]);
    expect([...encodeChunkMsg({ t: 'req', i: [] })]).toEqual([3]);
    expect(decodeChunkMsg(encode({ t: 'have', i: [4, 5] }))).toEqual({ t: 'have', i: [4, 5] });
    expect(decodeChunkMsg(encode({ t: 'req', i: [6] }))).toEqual({ t: 'req', i: [6] });
    const most = Array.from({ length: MAX_INDEXES }, (_, k) => k);
    expect(decodeChunkMsg(encodeChunkMsg({ t: 'req', i: most }))).toEqual({ t: 'req', i: most });
    expect(() => encodeChunkMsg({ t: 'have', i: [...most, 0] })).toThrow(RangeError);
  });

  it('rejects garbage with a WireError', () => {
    const tooMany = new Uint8Array(1 + 4 * (MAX_INDEXES + 1));
    tooMany[0] = 2;
    const bad = [
      new Uint8Array(0),
      new Uint8Array([1, 0, 0]), // truncated chunk header
      new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0]), // index too large
      new Uint8Array([2, 0, 0, 1]), // have: not a whole u32
      new Uint8Array([3, 0, 0x40, 0, 1]), // req: index 2^22 + 1
      tooMany,
      encode({ t: 'req', i: [-1] }),
      encode({ t: 'chunk', i: 1, data: 'not bytes' }),
      encode({ t: 'nope' }),
      new Uint8Array([0xff, 0x00]),
    ];
    for (const b of bad)
      expect(() => decodeChunkMsg(b), `${[...b.subarray(0, 8)]}`).toThrow(WireError);
  });
});
