// Tombstones: the signed record that NAME:TAG was removed, kept so that replication can tell
// "removed" from "never heard of" and so a removal spreads like a push.
//
// A tombstone at version V removes every version <= V of NAME:TAG. A manifest with a version
// above V (a push made after the removal, or one made elsewhere before hearing of it) wins over
// the tombstone, so a later push always brings the image back. Pure: no I/O.
//
// Wire form: { type: "tombstone", format: 1, name, tag, version, removedAt: ms, creator,
// signature: bytes(64) }; the signature covers "edgeswarm/image-tombstone/v1\n" and the map
// without `signature`.
import type { PrivateKey } from '@libp2p/interface';
import { InvalidManifestError } from '../errors.js';
import {
  asRecord,
  assertCanonical,
  bytes,
  decodeStrict,
  encodeCanonical,
  int,
  str,
} from './codec.js';
import {
  decodeManifest,
  MANIFEST_FORMAT,
  MAX_MANIFEST_BYTES,
  verifyManifest,
  type Manifest,
} from './manifest.js';
import { imageNameProblem, imageTagProblem } from './names.js';
import {
  MAX_PEER_ID_LENGTH,
  SIGNATURE_BYTES,
  peerIdOf,
  publicKeyOf,
  signPayload,
  verifyPayload,
} from './signing.js';

export const TOMBSTONE_DOMAIN = 'edgeswarm/image-tombstone/v1';
/** Decode limit for a tombstone. Unit: bytes. Names are at most 255 + 128 characters. */
export const MAX_TOMBSTONE_BYTES = 1024;

export interface UnsignedTombstone {
  name: string;
  tag: string;
  /** Every version <= this one is removed. */
  version: number;
  /** Removal time, ms since the epoch. */
  removedAt: number;
  /** Peer id of the agent that removed it; its key signs the tombstone. */
  creator: string;
}

export interface Tombstone extends UnsignedTombstone {
  signature: Uint8Array;
}

export function checkUnsignedTombstone(t: UnsignedTombstone): UnsignedTombstone {
  if (typeof t !== 'object' || t === null) throw new InvalidManifestError('', 'must be a map');
  const nameProblem = imageNameProblem(t.name);
  if (nameProblem !== undefined) throw new InvalidManifestError('name', nameProblem);
  const tagProblem = imageTagProblem(t.tag);
  if (tagProblem !== undefined) throw new InvalidManifestError('tag', tagProblem);
  const creator = str(t.creator, 'creator', MAX_PEER_ID_LENGTH);
  publicKeyOf(creator);
  return {
    name: t.name,
    tag: t.tag,
    version: int(t.version, 'version', 1, Number.MAX_SAFE_INTEGER),
    removedAt: int(t.removedAt, 'removedAt', 0, Number.MAX_SAFE_INTEGER),
    creator,
  };
}

function toWire(t: UnsignedTombstone): Record<string, unknown> {
  return {
    type: 'tombstone',
    format: MANIFEST_FORMAT,
    name: t.name,
    tag: t.tag,
    version: t.version,
    removedAt: t.removedAt,
    creator: t.creator,
  };
}

/** Signs a tombstone; `creator` defaults to the key's peer id (and must match it if given). */
export async function signTombstone(
  draft: Omit<UnsignedTombstone, 'creator'> & { creator?: string },
  privateKey: PrivateKey,
): Promise<Tombstone> {
  const signer = peerIdOf(privateKey);
  if (draft.creator !== undefined && draft.creator !== signer)
    throw new InvalidManifestError('creator', `does not match the signing key (${signer})`);
  const t = checkUnsignedTombstone({ ...draft, creator: signer });
  const signature = await signPayload(TOMBSTONE_DOMAIN, encodeCanonical(toWire(t)), privateKey);
  return { ...t, signature };
}

/** Checks the fields and the signature; throws InvalidManifestError or ManifestSignatureError. */
export async function verifyTombstone(t: Tombstone): Promise<void> {
  const u = checkUnsignedTombstone(t);
  const sig = bytes(t.signature, 'signature', SIGNATURE_BYTES);
  await verifyPayload(TOMBSTONE_DOMAIN, encodeCanonical(toWire(u)), sig, u.creator);
}

export function encodeTombstone(t: Tombstone): Uint8Array {
  const wire = toWire(checkUnsignedTombstone(t));
  wire.signature = bytes(t.signature, 'signature', SIGNATURE_BYTES);
  return encodeCanonical(wire);
}

function tombstoneFromWire(v: unknown): Tombstone {
  const rec = asRecord(v, '', [
    'type',
    'format',
    'name',
    'tag',
    'version',
    'removedAt',
    'creator',
    'signature',
  ]);
  if (rec.type !== 'tombstone') throw new InvalidManifestError('type', 'must be "tombstone"');
  if (rec.format !== MANIFEST_FORMAT)
    throw new InvalidManifestError('format', `must be ${MANIFEST_FORMAT} (unknown format)`);
  const t = checkUnsignedTombstone(rec as unknown as UnsignedTombstone);
  return { ...t, signature: bytes(rec.signature, 'signature', SIGNATURE_BYTES) };
}

/** Decodes and checks a tombstone from untrusted bytes (not the signature: verifyTombstone). */
export function decodeTombstone(input: Uint8Array, maxBytes = MAX_TOMBSTONE_BYTES): Tombstone {
  const t = tombstoneFromWire(decodeStrict(input, maxBytes, 'tombstone'));
  assertCanonical(input, encodeTombstone(t), 'tombstone');
  return t;
}

/** A manifest or a tombstone: what replication sends about a NAME:TAG. */
export type ImageRecord =
  { type: 'manifest'; manifest: Manifest } | { type: 'tombstone'; tombstone: Tombstone };

/**
 * Decodes either record from untrusted bytes by its `type` field (checks as decodeManifest and
 * decodeTombstone do; not the signature: see verifyImageRecord).
 */
export function decodeImageRecord(input: Uint8Array, maxBytes = MAX_MANIFEST_BYTES): ImageRecord {
  // A tombstone is small: try it first only when the bytes are small enough to be one.
  if (input.length <= MAX_TOMBSTONE_BYTES) {
    const v = decodeStrict(input, maxBytes, 'image record');
    if ((v as { type?: unknown } | null)?.type === 'tombstone') {
      return { type: 'tombstone', tombstone: decodeTombstone(input) };
    }
  }
  return { type: 'manifest', manifest: decodeManifest(input, maxBytes) };
}

/** Verifies the signature of either record. */
export async function verifyImageRecord(r: ImageRecord): Promise<void> {
  if (r.type === 'manifest') await verifyManifest(r.manifest);
  else await verifyTombstone(r.tombstone);
}
