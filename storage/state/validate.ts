// Validation of keys (from users) and records (from peers). Pure.
import { InvalidKeyError } from '../errors.js';
import { isValidOrigin } from './codec.js';
import { isHlc } from './hlc.js';
import type { StateRecord } from './merge.js';
import { utf8Length } from './varint.js';

/**
 * Throws InvalidKeyError unless `key` is non-empty, well-formed Unicode without control characters
 * (U+0000-U+001F, U+007F: a newline in a key broke `kv ls` and `kv watch` lines), within
 * maxKeyBytes.
 */
export function checkKey(key: string, maxKeyBytes: number): void {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidKeyError('empty key');
  if (!key.isWellFormed()) throw new InvalidKeyError('key is not well-formed Unicode');
  // eslint-disable-next-line no-control-regex -- control characters are what this looks for
  const ctl = /[\u0000-\u001f\u007f]/.exec(key);
  if (ctl)
    throw new InvalidKeyError(
      `key has a control character (U+${ctl[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()})`,
    );
  const n = utf8Length(key);
  if (n > maxKeyBytes) {
    throw new InvalidKeyError(`key is ${n} bytes, over the limit of ${maxKeyBytes}`);
  }
}

/** Whether a record from a peer is well-formed and within the limits. */
export function isValidRecord(r: StateRecord, maxKeyBytes: number, maxValueBytes: number): boolean {
  if (typeof r !== 'object' || r === null) return false;
  try {
    checkKey(r.key, maxKeyBytes);
  } catch {
    return false;
  }
  return (
    (r.value === null || (r.value instanceof Uint8Array && r.value.length <= maxValueBytes)) &&
    typeof r.origin === 'string' &&
    isValidOrigin(r.origin) &&
    Number.isSafeInteger(r.seq) &&
    r.seq >= 1 &&
    typeof r.hlc === 'object' &&
    r.hlc !== null &&
    isHlc(r.hlc)
  );
}
