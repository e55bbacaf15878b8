// Limits and helpers for member ids and metadata. The same limits are enforced on our own metadata
// (InvalidMetaError from the core) and on everything decoded from peers (DecodeError from the
// codec), so whatever we accept from the operator can always be sent, and vice versa.

import { InvalidMetaError } from '../errors.js';
import type { MemberMeta } from './types.js';

/** Longest member id (a libp2p peer id string is 46-59 characters), characters. */
export const MAX_ID_LENGTH = 128;
/** Longest member name and site, characters (the agent's own rules are stricter: 63). */
export const MAX_NAME_LENGTH = 128;
/** Most addresses per member, and the longest address, characters. */
export const MAX_ADDRS = 16;
export const MAX_ADDR_LENGTH = 256;
/** Most tags per member; longest tag key and value, characters. */
export const MAX_TAGS = 64;
export const MAX_TAG_KEY_LENGTH = 128;
export const MAX_TAG_VALUE_LENGTH = 1024;
/** Largest `load` value. */
export const MAX_LOAD = 1e9;
/**
 * Largest metadata, bytes: the UTF-8 size of name + site + addrs + tag keys and values. It bounds
 * every alive update and push-pull entry (memberlist allows 512 bytes; we carry addrs and tags).
 * With it a push-pull of 10,000 members is at most ~22 MiB (typical: ~300 B/member, ~3 MiB).
 */
export const MAX_META_BYTES = 2048;

/** UTF-8 length of a string without allocating. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

/** Size of the metadata as limited by MAX_META_BYTES. */
export function metaBytes(meta: MemberMeta): number {
  let n = utf8Length(meta.name) + utf8Length(meta.site);
  for (const a of meta.addrs) n += utf8Length(a);
  for (const k in meta.tags) n += utf8Length(k) + utf8Length(meta.tags[k]);
  return n;
}

function isStr(v: unknown, min: number, max: number): v is string {
  return typeof v === 'string' && v.length >= min && v.length <= max;
}

/** Why an id is unacceptable, or undefined. */
export function idProblem(id: unknown): string | undefined {
  return isStr(id, 1, MAX_ID_LENGTH) ? undefined : `must be a string of 1-${MAX_ID_LENGTH} chars`;
}

/**
 * Checks a metadata object field by field; returns [field, problem] for the first violation or
 * undefined. Accepts only own enumerable data (tags must be a plain object of strings).
 */
export function metaProblem(meta: unknown): [string, string] | undefined {
  if (typeof meta !== 'object' || meta === null) return ['meta', 'must be an object'];
  const m = meta as Record<string, unknown>;
  if (!isStr(m.name, 1, MAX_NAME_LENGTH)) return ['name', `must be 1-${MAX_NAME_LENGTH} chars`];
  if (!isStr(m.site, 1, MAX_NAME_LENGTH)) return ['site', `must be 1-${MAX_NAME_LENGTH} chars`];
  if (!Array.isArray(m.addrs) || m.addrs.length > MAX_ADDRS)
    return ['addrs', `must be a list of at most ${MAX_ADDRS} addresses`];
  for (const a of m.addrs)
    if (!isStr(a, 1, MAX_ADDR_LENGTH)) return ['addrs', `each must be 1-${MAX_ADDR_LENGTH} chars`];
  const tags = m.tags;
  if (typeof tags !== 'object' || tags === null || Array.isArray(tags))
    return ['tags', 'must be a map of strings'];
  let count = 0;
  for (const [k, v] of Object.entries(tags)) {
    if (++count > MAX_TAGS) return ['tags', `at most ${MAX_TAGS} tags`];
    if (!isStr(k, 1, MAX_TAG_KEY_LENGTH) || k === '__proto__')
      return ['tags', `tag names must be 1-${MAX_TAG_KEY_LENGTH} chars`];
    if (!isStr(v, 0, MAX_TAG_VALUE_LENGTH))
      return ['tags', `tag ${k} must be a string of at most ${MAX_TAG_VALUE_LENGTH} chars`];
  }
  if (m.load !== undefined) {
    if (typeof m.load !== 'number' || !Number.isFinite(m.load) || m.load < 0 || m.load > MAX_LOAD)
      return ['load', `must be a finite number in [0, ${MAX_LOAD}]`];
  }
  const size = metaBytes(m as unknown as MemberMeta);
  if (size > MAX_META_BYTES)
    return ['meta', `is ${size} bytes, more than the limit of ${MAX_META_BYTES}`];
  return undefined;
}

/** Throws InvalidMetaError naming the first problem. */
export function assertValidMeta(meta: MemberMeta): void {
  const p = metaProblem(meta);
  if (p !== undefined) throw new InvalidMetaError(p[0], p[1]);
}

/** A frozen deep copy, so a caller cannot change metadata the core has already spread. */
export function freezeMeta(meta: MemberMeta): MemberMeta {
  const out: MemberMeta = {
    name: meta.name,
    site: meta.site,
    addrs: Object.freeze([...meta.addrs]) as string[],
    tags: Object.freeze({ ...meta.tags }),
  };
  if (meta.load !== undefined) out.load = meta.load;
  return Object.freeze(out);
}

export function metaEquals(a: MemberMeta, b: MemberMeta, ignoreLoad = false): boolean {
  if (a === b) return true;
  if (a.name !== b.name || a.site !== b.site || (!ignoreLoad && a.load !== b.load)) return false;
  if (a.addrs.length !== b.addrs.length) return false;
  for (let i = 0; i < a.addrs.length; i++) if (a.addrs[i] !== b.addrs[i]) return false;
  const ka = Object.keys(a.tags);
  if (ka.length !== Object.keys(b.tags).length) return false;
  for (const k of ka) if (!Object.hasOwn(b.tags, k) || a.tags[k] !== b.tags[k]) return false;
  return true;
}
