// Wire format of the catalog: a NodeCatalog is CBOR, signed by its owner's peer key, so a relayed
// copy (anti-entropy) can be checked as well as a direct one. Everything from a peer is validated;
// anything else is a CatalogDecodeError, which the runtime counts and drops.
import type { PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { decode, encode } from 'cborg';
import { z } from 'zod';
import type { NodeCatalog } from './types.js';

/** Largest encoded catalog of one node accepted from a peer (bytes). */
export const MAX_NODE_CATALOG_BYTES = 512 * 1024;
/** Most services in one node's catalog accepted from a peer. */
export const MAX_NODE_SERVICES = 1000;

export class CatalogDecodeError extends Error {
  readonly code = 'catalog_decode';
  constructor(message: string) {
    super(message);
    this.name = 'CatalogDecodeError';
  }
}

const str = (max: number) => z.string().max(max);

const serviceRecordSchema = z
  .object({
    id: str(128),
    name: str(63),
    address: str(64),
    port: z.number().int().min(1).max(65535),
    tags: z.array(str(63)).max(32),
    meta: z.record(str(63), str(512)),
    health: z.enum(['passing', 'failing']),
    check: z.enum(['http', 'tcp', 'ttl']).optional(),
    output: str(512).optional(),
  })
  .strict();

const nodeCatalogSchema = z
  .object({
    node: str(128),
    version: z.number().int().min(0),
    services: z.array(serviceRecordSchema).max(MAX_NODE_SERVICES),
  })
  .strict();

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
const envelopeSchema = z.object({ c: bytes, s: bytes }).strict();

function clean(c: NodeCatalog): NodeCatalog {
  return {
    node: c.node,
    version: c.version,
    services: c.services.map((s) => {
      const r: Record<string, unknown> = {
        id: s.id,
        name: s.name,
        address: s.address,
        port: s.port,
        tags: s.tags,
        meta: s.meta,
        health: s.health,
      };
      if (s.check !== undefined) r.check = s.check;
      if (s.output !== undefined) r.output = s.output.slice(0, 512);
      return r as unknown as NodeCatalog['services'][number];
    }),
  };
}

/** Encodes and signs our own catalog. */
/** The envelope around a catalog's body: CBOR map, the 64-byte signature (bytes, generous). */
const SIGNED_OVERHEAD_BYTES = 96;

/**
 * The largest the signed catalog `c` can become without a registration changing: every service
 * with a check given the longest output it may carry (512 characters, 3 bytes each). A catalog
 * over MAX_NODE_CATALOG_BYTES is refused by every peer, so registration checks this first.
 */
export function worstCaseCatalogBytes(c: NodeCatalog): number {
  const longest = '\u0800'.repeat(512);
  const services = c.services.map((s) => (s.check ? { ...s, output: longest } : s));
  return encode(clean({ ...c, services })).length + SIGNED_OVERHEAD_BYTES;
}

export async function encodeNodeCatalog(c: NodeCatalog, key: PrivateKey): Promise<Uint8Array> {
  const body = encode(clean(c));
  const sig = await key.sign(body);
  return encode({ c: body, s: sig });
}

/**
 * Decodes a signed catalog and checks it was signed by the node it describes. `publisher` is the
 * member a gossip message came from when the gossip layer has already verified that member's
 * signature over these exact bytes (gossipsub's StrictSign): a catalog of that same member needs
 * no second check, which skipped one ed25519 verification (~0.2 ms) per agent per registration.
 * Relayed copies (anti-entropy, another member's gossip) are always checked, so a member that
 * gossips its own catalog with a bad inner signature reaches only its direct receivers: every
 * relay of it, and every reload from disk, is rejected.
 */
export async function decodeNodeCatalog(
  bytes: Uint8Array,
  publisher?: string,
): Promise<NodeCatalog> {
  if (bytes.length > MAX_NODE_CATALOG_BYTES)
    throw new CatalogDecodeError(`catalog of ${bytes.length} bytes is over the limit`);
  let env: z.output<typeof envelopeSchema>;
  let cat: NodeCatalog;
  try {
    env = envelopeSchema.parse(decode(bytes));
    cat = nodeCatalogSchema.parse(decode(env.c)) as NodeCatalog;
  } catch (err) {
    throw new CatalogDecodeError(`malformed catalog: ${(err as Error).message.slice(0, 200)}`);
  }
  if (publisher !== undefined && publisher === cat.node) return cat;
  let ok = false;
  try {
    const pub = peerIdFromString(cat.node).publicKey;
    ok = pub !== undefined && (await pub.verify(env.c, env.s));
  } catch {
    ok = false;
  }
  if (!ok) throw new CatalogDecodeError(`catalog of ${cat.node} has a bad signature`);
  return cat;
}
