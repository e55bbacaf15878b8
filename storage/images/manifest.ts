// Image manifests: what an image is made of (its ordered chunks), who published it, which version
// of NAME:TAG it is and where it must be placed, signed by the publishing agent's peer key.
// Pure: no I/O. The canonical encoding is deterministic CBOR, so a manifest has exactly one byte
// form; decodeManifest() rejects any other form, anything malformed and anything over the limits.
//
// Wire form (a CBOR map, keys sorted by cborg):
//   { type: "manifest", format: 1, name, tag, digest: "sha256:<hex>", size,
//     chunks: { hashes: bytes(32 * n), sizes: [size, ...n] }, creator: "<peer id>", createdAt: ms,
//     version,
//     placement: { sites: "all" | [site, ...], copies }, signature: bytes(64) }
// The signature covers "edgeswarm/image-manifest/v1\n" followed by the same map without
// `signature`.
import type { PrivateKey } from '@libp2p/interface';
import { InvalidManifestError } from '../errors.js';
import { MAX_MAX_SIZE } from '../chunks/fastcdc.js';
import { isChunkHash, isImageDigest } from '../chunks/hash.js';
import {
  asRecord,
  assertCanonical,
  bytes,
  decodeStrict,
  encodeCanonical,
  int,
  str,
  toHex,
} from './codec.js';
import { imageNameProblem, imageTagProblem, validateSiteName } from './names.js';
import {
  MAX_PEER_ID_LENGTH,
  SIGNATURE_BYTES,
  peerIdOf,
  publicKeyOf,
  signPayload,
  verifyPayload,
} from './signing.js';

/** Version of the wire form; a decoder refuses others. */
export const MANIFEST_FORMAT = 1;
/** Signature domain: a manifest signature can never be replayed as another kind of record. */
export const MANIFEST_DOMAIN = 'edgeswarm/image-manifest/v1';
/**
 * Most chunks in one image. Default 2^21 (2,097,152): ~40 GiB at the default chunk sizes (mean
 * ~20 KiB), a manifest of ~70 MiB. Bigger images need a bigger average chunk size.
 */
export const MAX_CHUNKS = 1 << 21;
/** Largest chunk a manifest may list. Unit: bytes. 16 MiB, the chunker's own limit. */
export const MAX_CHUNK_SIZE = MAX_MAX_SIZE;
/** Most sites in a placement. 512: the design's 500 sites and some room. */
export const MAX_SITES = 512;
/** Most copies per site in a placement. 64: more is a typo, not a plan. */
export const MAX_COPIES = 64;
/**
 * Default decode limit. Unit: bytes. Room for MAX_CHUNKS chunks of at most 37 bytes each (32 of
 * hash, up to 5 of size) plus 64 KiB for the rest (sites, names).
 */
export const MAX_MANIFEST_BYTES = MAX_CHUNKS * 37 + 64 * 1024;

export interface ChunkRef {
  /** sha256 of the chunk, 64 lower-case hex digits. */
  hash: string;
  /** Bytes, 1..MAX_CHUNK_SIZE. */
  size: number;
}

export interface Placement {
  /** The sites that must hold the image: "all", or site names (sorted, no duplicates). */
  sites: 'all' | string[];
  /** Full copies wanted per site, 1..MAX_COPIES. */
  copies: number;
}

export interface UnsignedManifest {
  name: string;
  tag: string;
  /** "sha256:<hex>" of the whole content. */
  digest: string;
  /** Bytes of the whole content: the sum of the chunk sizes. */
  size: number;
  /** The chunks, in content order. */
  chunks: ChunkRef[];
  /** Peer id (string) of the agent that published this version; its key signs it. */
  creator: string;
  /** Publication time, ms since the epoch. */
  createdAt: number;
  /** Version of this NAME:TAG, from 1, increasing with each push. */
  version: number;
  placement: Placement;
}

export interface Manifest extends UnsignedManifest {
  /** Ed25519 signature by `creator` (64 bytes). */
  signature: Uint8Array;
}

/** What signManifest() needs: creator defaults to the key's peer id, placement to all/1. */
export type ManifestDraft = Omit<UnsignedManifest, 'creator' | 'placement'> & {
  creator?: string;
  placement?: Partial<Placement>;
};

/** Fills in placement defaults (all sites, 1 copy), sorts and dedups sites, validates. */
export function normalizePlacement(p: Partial<Placement> = {}): Placement {
  const copies = int(p.copies ?? 1, 'placement.copies', 1, MAX_COPIES);
  const sites = p.sites ?? 'all';
  if (sites === 'all') return { sites, copies };
  if (!Array.isArray(sites))
    throw new InvalidManifestError('placement.sites', 'must be "all" or a list of site names');
  const uniq = [...new Set(sites.map((s) => validateSiteName(s)))].sort();
  if (uniq.length === 0) throw new InvalidManifestError('placement.sites', 'must not be empty');
  if (uniq.length > MAX_SITES)
    throw new InvalidManifestError('placement.sites', `must list at most ${MAX_SITES} sites`);
  return { sites: uniq, copies };
}

function checkPlacement(v: unknown): Placement {
  const rec = asRecord(v, 'placement', ['sites', 'copies']);
  const copies = int(rec.copies, 'placement.copies', 1, MAX_COPIES);
  if (rec.sites === 'all') return { sites: 'all', copies };
  if (!Array.isArray(rec.sites) || rec.sites.length === 0 || rec.sites.length > MAX_SITES)
    throw new InvalidManifestError(
      'placement.sites',
      `must be "all" or 1 to ${MAX_SITES} site names`,
    );
  const sites: string[] = [];
  for (const s of rec.sites as unknown[]) {
    const site = validateSiteName(s);
    if (sites.length > 0 && site <= sites[sites.length - 1])
      throw new InvalidManifestError('placement.sites', 'must be sorted, without duplicates');
    sites.push(site);
  }
  return { sites, copies };
}

/**
 * Checks every field of an unsigned manifest against the rules and limits and returns a clean
 * copy holding only the known fields. Throws InvalidManifestError naming the first bad field.
 */
export function checkUnsignedManifest(m: UnsignedManifest): UnsignedManifest {
  if (typeof m !== 'object' || m === null) throw new InvalidManifestError('', 'must be a map');
  const nameProblem = imageNameProblem(m.name);
  if (nameProblem !== undefined) throw new InvalidManifestError('name', nameProblem);
  const tagProblem = imageTagProblem(m.tag);
  if (tagProblem !== undefined) throw new InvalidManifestError('tag', tagProblem);
  if (!isImageDigest(m.digest))
    throw new InvalidManifestError('digest', 'must be "sha256:" and 64 lower-case hex digits');
  const size = int(m.size, 'size', 0, Number.MAX_SAFE_INTEGER);
  if (!Array.isArray(m.chunks)) throw new InvalidManifestError('chunks', 'must be a list');
  if (m.chunks.length > MAX_CHUNKS)
    throw new InvalidManifestError('chunks', `must list at most ${MAX_CHUNKS} chunks`);
  const chunks: ChunkRef[] = new Array(m.chunks.length);
  let total = 0;
  for (let i = 0; i < m.chunks.length; i++) {
    const c = m.chunks[i];
    if (typeof c !== 'object' || c === null || !isChunkHash(c.hash))
      throw new InvalidManifestError(`chunks[${i}].hash`, 'must be 64 lower-case hex digits');
    const csize = int(c.size, `chunks[${i}].size`, 1, MAX_CHUNK_SIZE);
    total += csize;
    chunks[i] = { hash: c.hash, size: csize };
  }
  if (total !== size)
    throw new InvalidManifestError('size', `is ${size} but the chunks add up to ${total}`);
  const creator = str(m.creator, 'creator', MAX_PEER_ID_LENGTH);
  publicKeyOf(creator);
  return {
    name: m.name,
    tag: m.tag,
    digest: m.digest,
    size,
    chunks,
    creator,
    createdAt: int(m.createdAt, 'createdAt', 0, Number.MAX_SAFE_INTEGER),
    version: int(m.version, 'version', 1, Number.MAX_SAFE_INTEGER),
    placement: checkPlacement(m.placement),
  };
}

/** The wire map of a checked manifest (without the signature). */
function toWire(m: UnsignedManifest): Record<string, unknown> {
  return {
    type: 'manifest',
    format: MANIFEST_FORMAT,
    name: m.name,
    tag: m.tag,
    digest: m.digest,
    size: m.size,
    chunks: { hashes: packHashes(m.chunks), sizes: m.chunks.map((c) => c.size) },
    creator: m.creator,
    createdAt: m.createdAt,
    version: m.version,
    placement: { sites: m.placement.sites, copies: m.placement.copies },
  };
}

/**
 * The chunk hashes as one byte string (32 bytes each, in order): ~3 bytes a chunk smaller than a
 * list of pairs, and one CBOR token instead of three per chunk, which makes encoding and decoding
 * a 200k-chunk manifest several times faster.
 */
function packHashes(chunks: readonly ChunkRef[]): Uint8Array {
  const buf = Buffer.alloc(32 * chunks.length);
  for (let i = 0; i < chunks.length; i++) buf.write(chunks[i].hash, 32 * i, 32, 'hex');
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** The bytes a manifest's signature covers (after the domain line). */
export function manifestSigningBytes(m: UnsignedManifest): Uint8Array {
  return encodeCanonical(toWire(checkUnsignedManifest(m)));
}

/**
 * Signs a manifest with the publishing agent's Ed25519 key. `creator` defaults to the key's peer
 * id (and must match it if given); the placement is normalized. Throws InvalidManifestError.
 */
export async function signManifest(
  draft: ManifestDraft,
  privateKey: PrivateKey,
): Promise<Manifest> {
  const signer = peerIdOf(privateKey);
  if (draft.creator !== undefined && draft.creator !== signer)
    throw new InvalidManifestError('creator', `does not match the signing key (${signer})`);
  const unsigned = checkUnsignedManifest({
    ...draft,
    creator: signer,
    placement: normalizePlacement(draft.placement),
  });
  const signature = await signPayload(MANIFEST_DOMAIN, manifestSigningBytes(unsigned), privateKey);
  return { ...unsigned, signature };
}

/**
 * Checks a manifest completely: every field and limit, that the chunk sizes add up to the size,
 * and the signature against the public key in the creator's peer id. Throws InvalidManifestError
 * or ManifestSignatureError.
 */
export async function verifyManifest(m: Manifest): Promise<void> {
  const unsigned = checkUnsignedManifest(m);
  const signature = bytes(m.signature, 'signature', SIGNATURE_BYTES);
  await verifyPayload(MANIFEST_DOMAIN, manifestSigningBytes(unsigned), signature, m.creator);
}

/** The canonical bytes of a signed manifest. Checks the fields (not the signature). */
export function encodeManifest(m: Manifest): Uint8Array {
  const wire = toWire(checkUnsignedManifest(m));
  wire.signature = bytes(m.signature, 'signature', SIGNATURE_BYTES);
  return encodeCanonical(wire);
}

const WIRE_KEYS = [
  'type',
  'format',
  'name',
  'tag',
  'digest',
  'size',
  'chunks',
  'creator',
  'createdAt',
  'version',
  'placement',
  'signature',
] as const;

/** Turns a decoded wire map into a Manifest (fields checked by checkUnsignedManifest after). */
export function manifestFromWire(v: unknown): Manifest {
  const rec = asRecord(v, '', WIRE_KEYS);
  if (rec.type !== 'manifest') throw new InvalidManifestError('type', 'must be "manifest"');
  if (rec.format !== MANIFEST_FORMAT)
    throw new InvalidManifestError('format', `must be ${MANIFEST_FORMAT} (unknown format)`);
  const packed = asRecord(rec.chunks, 'chunks', ['hashes', 'sizes']);
  const { hashes, sizes } = packed;
  if (!Array.isArray(sizes)) throw new InvalidManifestError('chunks.sizes', 'must be a list');
  if (sizes.length > MAX_CHUNKS)
    throw new InvalidManifestError('chunks', `must list at most ${MAX_CHUNKS} chunks`);
  if (!(hashes instanceof Uint8Array) || hashes.length !== 32 * sizes.length)
    throw new InvalidManifestError('chunks.hashes', 'must be 32 bytes for each size');
  const hex = toHex(hashes);
  const chunks = (sizes as unknown[]).map((size, i): ChunkRef => ({
    hash: hex.slice(64 * i, 64 * i + 64),
    size: size as number,
  }));
  const m = {
    name: rec.name,
    tag: rec.tag,
    digest: rec.digest,
    size: rec.size,
    chunks,
    creator: rec.creator,
    createdAt: rec.createdAt,
    version: rec.version,
    placement: rec.placement,
  } as UnsignedManifest;
  const checked = checkUnsignedManifest(m);
  return { ...checked, signature: bytes(rec.signature, 'signature', SIGNATURE_BYTES) };
}

/**
 * Decodes and checks a manifest from untrusted bytes: at most `maxBytes`, canonical CBOR, every
 * field and limit. Does not check the signature: call verifyManifest() for that. Throws
 * InvalidManifestError.
 */
export function decodeManifest(bytesIn: Uint8Array, maxBytes = MAX_MANIFEST_BYTES): Manifest {
  const m = manifestFromWire(decodeStrict(bytesIn, maxBytes, 'manifest'));
  assertCanonical(bytesIn, encodeManifest(m), 'manifest');
  return m;
}

/**
 * Orders two manifests of the same NAME:TAG: by version, then createdAt, creator, digest and
 * signature, so every agent picks the same winner when two sites published the same version.
 * Negative if `a` loses to `b`, 0 if they are the same manifest.
 */
export function compareManifests(a: Manifest, b: Manifest): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.createdAt !== b.createdAt) return a.createdAt - b.createdAt;
  if (a.creator !== b.creator) return a.creator < b.creator ? -1 : 1;
  if (a.digest !== b.digest) return a.digest < b.digest ? -1 : 1;
  return Buffer.compare(a.signature, b.signature);
}

/** The size in bytes of a manifest's canonical encoding (what crossing the WAN costs). */
export function manifestByteLength(m: Manifest): number {
  return encodeManifest(m).length;
}
