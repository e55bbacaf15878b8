// Chunk and image hashes: sha256, written as 64 lower-case hex digits (chunks) or
// "sha256:<hex>" (whole images, like OCI digests).
import { createHash } from 'node:crypto';
import { InvalidChunkHashError } from '../errors.js';

const HASH_RE = /^[0-9a-f]{64}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** sha256 of `bytes` as 64 lower-case hex digits: the name of a chunk. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** True if `s` is a chunk hash: 64 lower-case hex digits. */
export function isChunkHash(s: unknown): s is string {
  return typeof s === 'string' && HASH_RE.test(s);
}

/** Throws InvalidChunkHashError unless `s` is a chunk hash. */
export function assertChunkHash(s: string): void {
  if (!isChunkHash(s)) throw new InvalidChunkHashError(String(s));
}

/** True if `s` is an image digest: "sha256:" and 64 lower-case hex digits. */
export function isImageDigest(s: unknown): s is string {
  return typeof s === 'string' && DIGEST_RE.test(s);
}
