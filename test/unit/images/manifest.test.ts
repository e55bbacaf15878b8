import { createHash } from 'node:crypto';
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { encode } from 'cborg';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidImageRefError,
  InvalidManifestError,
  ManifestSignatureError,
} from '../../../storage/errors.js';
import {
  decodeImageRecord,
  decodeManifest,
  decodeTombstone,
  encodeManifest,
  encodeTombstone,
  MAX_CHUNKS,
  normalizePlacement,
  parseImageRef,
  peerIdOf,
  signManifest,
  signTombstone,
  validateImageName,
  validateImageTag,
  verifyManifest,
  verifyTombstone,
  type Manifest,
  type ManifestDraft,
} from '../../../storage/images/index.js';

const hex = (s: string): string => createHash('sha256').update(s).digest('hex');

function draft(over: Partial<ManifestDraft> = {}): ManifestDraft {
  return {
    name: 'edge/app-server',
    tag: 'v1.2.3',
    digest: `sha256:${hex('content')}`,
    size: 300,
    chunks: [
      { hash: hex('a'), size: 100 },
      { hash: hex('b'), size: 200 },
    ],
    createdAt: 1_700_000_000_000,
    version: 1,
    placement: { sites: ['paris', 'berlin', 'paris'], copies: 2 },
    ...over,
  };
}

let key: PrivateKey;
let other: PrivateKey;
beforeAll(async () => {
  key = await generateKeyPair('Ed25519');
  other = await generateKeyPair('Ed25519');
});

describe('manifests', () => {
  it('sign, encode, decode and verify round-trip', async () => {
    const m = await signManifest(draft(), key);
    expect(m.creator).toBe(peerIdOf(key));
    expect(m.placement).toEqual({ sites: ['berlin', 'paris'], copies: 2 });
    expect(m.signature.length).toBe(64);
    await verifyManifest(m);
    const bytes = encodeManifest(m);
    const back = decodeManifest(bytes);
    expect(back).toEqual(m);
    await verifyManifest(back);
    expect(Buffer.from(encodeManifest(back)).equals(Buffer.from(bytes))).toBe(true);
    const rec = decodeImageRecord(bytes);
    expect(rec.type).toBe('manifest');
    // an empty image is a valid image
    const empty = await signManifest(
      draft({ size: 0, chunks: [], digest: `sha256:${hex('')}`, placement: undefined }),
      key,
    );
    expect(empty.placement).toEqual({ sites: 'all', copies: 1 });
    expect(decodeManifest(encodeManifest(empty))).toEqual(empty);
  });

  it('rejects a manifest with any field tampered', async () => {
    const m = await signManifest(draft(), key);
    const tampered: Array<[string, Manifest]> = [
      ['name', { ...m, name: 'edge/other' }],
      ['tag', { ...m, tag: 'v9' }],
      ['digest', { ...m, digest: `sha256:${hex('x')}` }],
      [
        'size+chunks',
        { ...m, size: 301, chunks: [m.chunks[0], { hash: m.chunks[1].hash, size: 201 }] },
      ],
      ['chunk hash', { ...m, chunks: [{ hash: hex('z'), size: 100 }, m.chunks[1]] }],
      ['chunk order', { ...m, chunks: [m.chunks[1], m.chunks[0]] }],
      ['creator', { ...m, creator: peerIdOf(other) }],
      ['createdAt', { ...m, createdAt: m.createdAt + 1 }],
      ['version', { ...m, version: 2 }],
      ['sites', { ...m, placement: { sites: ['berlin'], copies: 2 } }],
      ['all sites', { ...m, placement: { sites: 'all', copies: 2 } }],
      ['copies', { ...m, placement: { ...m.placement, copies: 3 } }],
      ['signature', { ...m, signature: m.signature.map((b, i) => (i === 5 ? b ^ 1 : b)) }],
    ];
    for (const [what, t] of tampered) {
      const err = await verifyManifest(t).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, what).toBeInstanceOf(ManifestSignatureError);
      // and the same through the wire
      const err2 = await verifyManifest(decodeManifest(encodeManifest(t))).catch((e: unknown) => e);
      expect(err2, what).toBeInstanceOf(ManifestSignatureError);
    }
    // signed by someone else than the creator it names
    const forged = await signManifest(draft(), other);
    await expect(verifyManifest({ ...forged, creator: m.creator })).rejects.toBeInstanceOf(
      ManifestSignatureError,
    );
    await expect(signManifest(draft({ creator: peerIdOf(other) }), key)).rejects.toBeInstanceOf(
      InvalidManifestError,
    );
  });

  it('rejects flipped bits on the wire', async () => {
    const bytes = encodeManifest(await signManifest(draft(), key));
    for (let i = 0; i < bytes.length; i++) {
      const b = Uint8Array.from(bytes);
      b[i] ^= 1 << (i % 8);
      const err = await (async () => {
        await verifyManifest(decodeManifest(b));
      })().catch((e: unknown) => e);
      expect(
        err instanceof InvalidManifestError || err instanceof ManifestSignatureError,
        `byte ${i}`,
      ).toBe(true);
    }
  });

  it('checks sizes, limits and field types', async () => {
    const bad: Array<[string, Partial<ManifestDraft>]> = [
      ['size', { size: 299 }],
      [
        'chunks[0].size',
        {
          chunks: [
            { hash: hex('a'), size: 0 },
            { hash: hex('b'), size: 300 },
          ],
        },
      ],
      [
        'chunks[1].hash',
        {
          chunks: [
            { hash: hex('a'), size: 100 },
            { hash: 'AB', size: 200 },
          ],
        },
      ],
      ['digest', { digest: hex('content') }],
      ['name', { name: 'Edge/App' }],
      ['tag', { tag: '-x' }],
      ['version', { version: 0 }],
      ['createdAt', { createdAt: -1 }],
      ['placement.copies', { placement: { copies: 0 } }],
      ['placement.copies', { placement: { copies: 65 } }],
      ['placement.sites', { placement: { sites: ['Paris'] } }],
      ['placement.sites', { placement: { sites: [] } }],
    ];
    for (const [field, over] of bad) {
      const err = await signManifest(draft(over), key).catch((e: unknown) => e);
      expect(err, field).toBeInstanceOf(InvalidManifestError);
      expect((err as InvalidManifestError).field, field).toBe(field);
      expect((err as InvalidManifestError).code).toBe('invalid_manifest');
    }
    const m = await signManifest(draft(), key);
    await expect(verifyManifest({ ...m, creator: 'not-a-peer-id' })).rejects.toBeInstanceOf(
      InvalidManifestError,
    );
    expect(() =>
      encodeManifest({ ...m, chunks: { length: MAX_CHUNKS + 1 } as unknown as Manifest['chunks'] }),
    ).toThrow(InvalidManifestError);
  });

  it('decodes only canonical, complete, bounded CBOR', async () => {
    const m = await signManifest(draft(), key);
    const bytes = encodeManifest(m);
    expect(() => decodeManifest(bytes, bytes.length - 1)).toThrow(/over the limit/);
    expect(() => decodeManifest(new Uint8Array([0xff]))).toThrow(InvalidManifestError);
    expect(() => decodeManifest(bytes.subarray(0, bytes.length - 3))).toThrow(InvalidManifestError);
    expect(() => decodeManifest(Buffer.concat([bytes, Buffer.from([0])]))).toThrow(
      InvalidManifestError,
    );
    const wire = {
      type: 'manifest',
      format: 1,
      name: m.name,
      tag: m.tag,
      digest: m.digest,
      size: m.size,
      chunks: {
        hashes: Buffer.from(m.chunks.map((c) => c.hash).join(''), 'hex'),
        sizes: m.chunks.map((c) => c.size),
      },
      creator: m.creator,
      createdAt: m.createdAt,
      version: m.version,
      placement: m.placement,
      signature: m.signature,
    };
    expect(decodeManifest(encode(wire))).toEqual(m);
    const variants: Array<[string, unknown]> = [
      ['unknown field', { ...wire, extra: 1 }],
      ['missing field', { ...wire, version: undefined }],
      ['format', { ...wire, format: 2 }],
      ['type', { ...wire, type: 'tombstone' }],
      ['float', { ...wire, createdAt: 1.5 }],
      ['string size', { ...wire, size: '300' }],
      ['unsorted sites', { ...wire, placement: { sites: ['paris', 'berlin'], copies: 2 } }],
      ['short hashes', { ...wire, chunks: { ...wire.chunks, hashes: new Uint8Array(63) } }],
      ['more sizes', { ...wire, chunks: { ...wire.chunks, sizes: [100, 100, 100] } }],
      [
        'chunk pairs',
        { ...wire, chunks: m.chunks.map((c) => [Buffer.from(c.hash, 'hex'), c.size]) },
      ],
      ['short signature', { ...wire, signature: m.signature.subarray(0, 63) }],
      ['not a map', [1, 2, 3]],
    ];
    for (const [what, v] of variants) {
      // undefined properties are dropped, which makes "missing field"
      const enc = encode(v, { ignoreUndefinedProperties: true });
      expect(() => decodeManifest(enc), what).toThrow(InvalidManifestError);
    }
    // integers not in their shortest form are refused (strict CBOR)
    const nonMinimal = Buffer.from(bytes);
    const idx = nonMinimal.indexOf(Buffer.from('version'));
    expect(idx).toBeGreaterThan(0);
    const long = Buffer.concat([
      nonMinimal.subarray(0, idx + 7),
      Buffer.from([0x19, 0x00, 0x01]), // 1 as a 2-byte integer
      nonMinimal.subarray(idx + 8),
    ]);
    expect(() => decodeManifest(long)).toThrow(InvalidManifestError);
  });

  it('never throws anything but InvalidManifestError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        try {
          decodeImageRecord(b);
          return false;
        } catch (err) {
          return err instanceof InvalidManifestError;
        }
      }),
      { numRuns: 500 },
    );
  });

  it('tombstones round-trip, verify, and reject tampering', async () => {
    const t = await signTombstone(
      { name: 'edge/app', tag: 'v1', version: 3, removedAt: 1_700_000_000_001 },
      key,
    );
    await verifyTombstone(t);
    const bytes = encodeTombstone(t);
    expect(decodeTombstone(bytes)).toEqual(t);
    const rec = decodeImageRecord(bytes);
    expect(rec.type).toBe('tombstone');
    for (const bad of [
      { ...t, version: 4 },
      { ...t, removedAt: 1 },
      { ...t, name: 'edge/x' },
      { ...t, creator: peerIdOf(other) },
    ])
      await expect(verifyTombstone(bad)).rejects.toBeInstanceOf(ManifestSignatureError);
    // a manifest cannot be passed off as a tombstone
    const mbytes = encodeManifest(await signManifest(draft(), key));
    expect(() => decodeTombstone(mbytes)).toThrow(InvalidManifestError);
  });
});

describe('names and tags', () => {
  it('accepts OCI-style names and tags', () => {
    for (const n of ['a', 'edge/app', 'a.b_c__d---e/f0/g', 'registry.local/team/app-1'])
      expect(validateImageName(n)).toBe(n);
    for (const t of ['latest', 'v1.2.3', '_x', 'A-b.C_1', 'x'.repeat(128)])
      expect(validateImageTag(t)).toBe(t);
    expect(parseImageRef('edge/app:v1')).toEqual({ name: 'edge/app', tag: 'v1' });
    expect(parseImageRef('edge/app', { defaultTag: 'latest' })).toEqual({
      name: 'edge/app',
      tag: 'latest',
    });
  });

  it('rejects bad ones with a message that names the problem', () => {
    const names: Array<[unknown, RegExp]> = [
      ['', /empty/],
      ['App', /lower-case/],
      ['/app', /empty component/],
      ['app/', /empty component/],
      ['a//b', /empty component/],
      ['a..b', /component "a..b"/],
      ['-a', /component/],
      ['a:b', /component/],
      ['a'.repeat(256), /at most 255/],
      [42, /string/],
    ];
    for (const [n, re] of names) {
      const err = (() => {
        try {
          validateImageName(n);
        } catch (e) {
          return e;
        }
      })();
      expect(err, String(n)).toBeInstanceOf(InvalidImageRefError);
      expect((err as InvalidImageRefError).code).toBe('invalid_image_name');
      expect((err as Error).message, String(n)).toMatch(re);
    }
    for (const t of ['', '.x', '-x', 'a/b', 'a:b', 'x'.repeat(129)]) {
      expect(() => validateImageTag(t), t).toThrow(InvalidImageRefError);
    }
    expect(() => parseImageRef('edge/app')).toThrow(/NAME:TAG/);
    expect(() => normalizePlacement({ sites: ['ok', 'Not OK'] })).toThrow(/DNS label/);
  });
});
