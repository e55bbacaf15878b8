// The signed catalog codec: a catalog round-trips; a changed body, a catalog signed by another key
// or a malformed one is rejected; a bad inner signature passes only when the gossip layer has
// verified that the catalog's own node published these bytes.
import { generateKeyPair } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { decode, encode } from 'cborg';
import { describe, expect, it } from 'vitest';
import {
  CatalogDecodeError,
  decodeNodeCatalog,
  encodeNodeCatalog,
  worstCaseCatalogBytes,
} from '../../../membership/catalog/codec.js';
import type { NodeCatalog } from '../../../membership/catalog/types.js';

function catalogOf(key: PrivateKey, port = 8080): NodeCatalog {
  return {
    node: peerIdFromPrivateKey(key).toString(),
    version: 3,
    services: [
      {
        id: 'web',
        name: 'web',
        address: '10.0.0.1',
        port,
        tags: ['v1'],
        meta: {},
        health: 'passing',
      },
    ],
  };
}

/** The envelope of `signed` with its body replaced by `body`'s encoding (signature kept). */
function withBody(signed: Uint8Array, body: NodeCatalog): Uint8Array {
  const env = decode(signed) as { c: Uint8Array; s: Uint8Array };
  return encode({ c: encode(body), s: env.s });
}

describe('catalog codec', () => {
  it('round-trips a signed catalog', async () => {
    const key = await generateKeyPair('Ed25519');
    const cat = catalogOf(key);
    expect(await decodeNodeCatalog(await encodeNodeCatalog(cat, key))).toEqual(cat);
  });

  it('rejects a changed body, a catalog signed by another key, and garbage', async () => {
    const key = await generateKeyPair('Ed25519');
    const other = await generateKeyPair('Ed25519');
    const signed = await encodeNodeCatalog(catalogOf(key), key);
    const changed = withBody(signed, catalogOf(key, 9999));
    await expect(decodeNodeCatalog(changed)).rejects.toThrow(/bad signature/);
    // other's signature over a catalog that says it is key's
    const forged = await encodeNodeCatalog(catalogOf(key), other);
    await expect(decodeNodeCatalog(forged)).rejects.toThrow(/bad signature/);
    await expect(decodeNodeCatalog(Uint8Array.of(1, 2, 3))).rejects.toBeInstanceOf(
      CatalogDecodeError,
    );
    await expect(
      decodeNodeCatalog(encode({ c: encode({ node: 1 }), s: new Uint8Array(64) })),
    ).rejects.toThrow(/malformed/);
  });

  it("skips the inner signature check only for the catalog's own publisher", async () => {
    const key = await generateKeyPair('Ed25519');
    const relay = await generateKeyPair('Ed25519');
    const node = peerIdFromPrivateKey(key).toString();
    const changed = withBody(await encodeNodeCatalog(catalogOf(key), key), catalogOf(key, 9999));
    // gossipsub verified that `node` published these bytes: they are its own word
    expect((await decodeNodeCatalog(changed, node)).services[0].port).toBe(9999);
    // relayed by another member, or with no publisher (anti-entropy, a reload): checked
    const other = peerIdFromPrivateKey(relay).toString();
    await expect(decodeNodeCatalog(changed, other)).rejects.toThrow(/bad signature/);
    await expect(decodeNodeCatalog(changed)).rejects.toThrow(/bad signature/);
  });

  it('sizes a catalog as it may grow: signed, and each checked service with its longest output', async () => {
    const key = await generateKeyPair('Ed25519');
    const plain = catalogOf(key);
    // no check: the signed catalog itself, and no less
    expect(worstCaseCatalogBytes(plain)).toBeGreaterThanOrEqual(
      (await encodeNodeCatalog(plain, key)).length,
    );
    // a check may later carry 512 characters of output, each up to 3 bytes
    const checked: NodeCatalog = {
      ...plain,
      services: plain.services.map((s) => ({ ...s, check: 'http', output: 'ok' })),
    };
    const longest = {
      ...checked,
      services: checked.services.map((s) => ({ ...s, output: '\u20ac'.repeat(512) })),
    };
    const signedLongest = (await encodeNodeCatalog(longest, key)).length;
    expect(worstCaseCatalogBytes(checked)).toBeGreaterThanOrEqual(signedLongest);
    expect(signedLongest).toBeGreaterThan((await encodeNodeCatalog(checked, key)).length + 1500);
  });
});
