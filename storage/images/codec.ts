// Shared pieces of the manifest and tombstone codecs: strict CBOR decoding with a size limit and
// small field checks that throw InvalidManifestError naming the field.
import { decode, encode } from 'cborg';
import { InvalidManifestError } from '../errors.js';

/**
 * cborg decode options for untrusted bytes: minimal-length integers only, no indefinite lengths,
 * no undefined/NaN/Infinity, no integers beyond 2^53, no duplicate map keys, string keys only.
 */
const STRICT_DECODE = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowNaN: false,
  allowInfinity: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
} as const;

/** Deterministic CBOR (cborg's defaults: sorted map keys, smallest encodings). */
export function encodeCanonical(value: unknown): Uint8Array {
  return encode(value);
}

/** Decodes untrusted CBOR of at most `maxBytes` bytes; InvalidManifestError on anything wrong. */
export function decodeStrict(bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (!(bytes instanceof Uint8Array)) throw new InvalidManifestError('', `${what}: not bytes`);
  if (bytes.length > maxBytes)
    throw new InvalidManifestError(
      '',
      `${what}: ${bytes.length} bytes, over the limit of ${maxBytes}`,
    );
  try {
    return decode(bytes, STRICT_DECODE);
  } catch (err) {
    throw new InvalidManifestError('', `${what}: not valid CBOR (${(err as Error).message})`, {
      cause: err,
    });
  }
}

/** Throws unless `encoded` (our canonical encoding of what was decoded) equals `input`. */
export function assertCanonical(input: Uint8Array, encoded: Uint8Array, what: string): void {
  if (input.length !== encoded.length || !input.every((b, i) => b === encoded[i]))
    throw new InvalidManifestError('', `${what}: not in canonical CBOR form`);
}

/** A plain object with exactly the keys in `required` (plus any of `optional`). */
export function asRecord(
  v: unknown,
  field: string,
  required: readonly string[],
  optional: readonly string[] = [],
): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array)
    throw new InvalidManifestError(field, 'must be a map');
  const rec = v as Record<string, unknown>;
  for (const k of required)
    if (!Object.hasOwn(rec, k)) throw new InvalidManifestError(join(field, k), 'is missing');
  for (const k of Object.keys(rec))
    if (!required.includes(k) && !optional.includes(k))
      throw new InvalidManifestError(join(field, k), 'is not a known field');
  return rec;
}

function join(field: string, key: string): string {
  return field === '' ? key : `${field}.${key}`;
}

/** An integer in [min, max]. */
export function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new InvalidManifestError(field, `must be an integer from ${min} to ${max}`);
  return v;
}

/** A string of at most `maxLength` UTF-16 code units. */
export function str(v: unknown, field: string, maxLength: number): string {
  if (typeof v !== 'string') throw new InvalidManifestError(field, 'must be a string');
  if (v.length > maxLength)
    throw new InvalidManifestError(field, `must be at most ${maxLength} characters`);
  return v;
}

/** Bytes of exactly `length` bytes, copied into a plain Uint8Array (never a Buffer or a view). */
export function bytes(v: unknown, field: string, length: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.length !== length)
    throw new InvalidManifestError(field, `must be ${length} bytes`);
  return new Uint8Array(v);
}

/** Hex of a byte view without copying it first. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
