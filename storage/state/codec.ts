// Compact binary encodings of what nodes exchange about the key/value state. Pure.
//
// All integers are unsigned LEB128 varints; strings are a varint byte length then UTF-8; a range
// set is a count then, per range, (gap after the previous range, length - 1) (see RangeSet.write).
// Every message starts with a type byte (the version of the format is part of the type).
//
//   summary (0x01):  originCount, then per origin: origin string, range set
//   cleared (0x03):  the same layout: origin string, range set of cleared versions
//   batch   (0x02):  groupCount, then per origin group:
//                      origin string, recordCount, then per record (in increasing seq):
//                        seqGap      seq - previous seq - 1 (previous = 0 at the group start)
//                        wallField   zigzag(wall - previous wall) * 2 + (counter > 0 ? 1 : 0)
//                                    (previous wall = 0 at the group start)
//                        [counter]   only if the low bit of wallField is set
//                        key         string
//                        valueField  0 for a tombstone, else value length + 1, then the bytes
//                    then the cleared part: originCount, per origin: origin string, range set
//
// A record costs ~5 bytes beyond its key and value when versions are consecutive and written within
// ~30 s of each other. Decoders take limits, check every field and throw StateDecodeError on
// anything else: a peer's garbage never gets further than that.
import { createHash } from 'node:crypto';
import { StateDecodeError } from '../errors.js';
import {
  DEFAULT_MAX_KEY_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_MESSAGE_RANGES,
  DEFAULT_MAX_MESSAGE_RECORDS,
  MAX_VALUE_BYTES_LIMIT,
  MAX_ORIGIN_BYTES,
} from './config.js';
import { HLC_MAX_COUNTER, HLC_MAX_WALL } from './hlc.js';
import type { StateRecord } from './merge.js';
import { RangeSet } from './range-set.js';
import { ByteReader, ByteWriter, unzigzag, utf8Length, zigzag } from './varint.js';
import { VersionVector } from './versions.js';

export const MSG_SUMMARY = 0x01;
export const MSG_BATCH = 0x02;
export const MSG_CLEARED = 0x03;

/** A unit of replication: records the receiver lacks, and versions it can mark as cleared. */
export interface ChangeBatch {
  records: StateRecord[];
  /** Cleared versions per origin (may be empty). */
  cleared: VersionVector;
}

export interface DecodeLimits {
  /** Largest message, bytes. Default DEFAULT_MAX_MESSAGE_BYTES. */
  maxBytes?: number;
  /** Most records in a batch. Default DEFAULT_MAX_MESSAGE_RECORDS. */
  maxRecords?: number;
  /** Most ranges over all origins. Default DEFAULT_MAX_MESSAGE_RANGES. */
  maxRanges?: number;
  /** Largest key, UTF-8 bytes. Default DEFAULT_MAX_KEY_BYTES. */
  maxKeyBytes?: number;
  /** Largest value, bytes. Default MAX_VALUE_BYTES_LIMIT (what any node may be set to write). */
  maxValueBytes?: number;
}

type Limits = Required<DecodeLimits>;

function limitsOf(l: DecodeLimits = {}): Limits {
  return {
    maxBytes: l.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    maxRecords: l.maxRecords ?? DEFAULT_MAX_MESSAGE_RECORDS,
    maxRanges: l.maxRanges ?? DEFAULT_MAX_MESSAGE_RANGES,
    maxKeyBytes: l.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES,
    maxValueBytes: l.maxValueBytes ?? MAX_VALUE_BYTES_LIMIT,
  };
}

/** A node id usable as an origin: non-empty, at most MAX_ORIGIN_BYTES, no NUL, valid Unicode. */
export function isValidOrigin(origin: string): boolean {
  return (
    origin.length > 0 &&
    origin.length <= MAX_ORIGIN_BYTES &&
    !origin.includes('\0') &&
    origin.isWellFormed() &&
    utf8Length(origin) <= MAX_ORIGIN_BYTES
  );
}

function readOrigin(r: ByteReader): string {
  const origin = r.string(MAX_ORIGIN_BYTES, 'origin');
  if (origin.length === 0 || origin.includes('\0')) throw new StateDecodeError('invalid origin');
  return origin;
}

function begin(bytes: Uint8Array, type: number, lim: Limits): ByteReader {
  if (!(bytes instanceof Uint8Array)) throw new StateDecodeError('not bytes');
  if (bytes.length > lim.maxBytes) {
    throw new StateDecodeError(`message of ${bytes.length} bytes exceeds ${lim.maxBytes}`);
  }
  const r = new ByteReader(bytes);
  const t = r.byte();
  if (t !== type) throw new StateDecodeError(`unexpected message type 0x${t.toString(16)}`);
  return r;
}

/** The type byte of a message (MSG_*), or undefined for an empty one. */
export function messageType(bytes: Uint8Array): number | undefined {
  return bytes[0];
}

function writeVector(w: ByteWriter, v: VersionVector): void {
  w.uint(v.originCount);
  for (const [origin, set] of v.entries()) {
    w.string(origin);
    set.write(w);
  }
}

function readVector(r: ByteReader, lim: Limits): VersionVector {
  const count = r.uintMax(lim.maxRanges, 'origin count');
  const v = new VersionVector();
  let ranges = 0;
  for (let i = 0; i < count; i++) {
    const origin = readOrigin(r);
    if (v.get(origin) !== undefined) throw new StateDecodeError('duplicate origin');
    const set = RangeSet.read(r, lim.maxRanges - ranges);
    if (set.isEmpty) throw new StateDecodeError('empty range set');
    ranges += set.rangeCount;
    v.set(origin, set);
  }
  return v;
}

export function encodeSummary(summary: VersionVector): Uint8Array {
  const w = new ByteWriter(64 + summary.rangeCount * 4);
  w.byte(MSG_SUMMARY);
  writeVector(w, summary);
  return w.finish();
}

/** Bytes in a summary digest. */
export const SUMMARY_DIGEST_BYTES = 16;

/**
 * A fixed-size digest of a summary, the same on every node that holds the same versions: origins
 * sorted, origins with no versions left out, then SHA-256 cut to SUMMARY_DIGEST_BYTES. Two nodes
 * with equal digests have nothing to send each other (see changesSince).
 */
export function summaryDigest(summary: VersionVector): Uint8Array {
  const origins = [...summary.entries()]
    .filter(([, set]) => !set.isEmpty)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const w = new ByteWriter(64 + summary.rangeCount * 4);
  w.uint(origins.length);
  for (const [origin, set] of origins) {
    w.string(origin);
    set.write(w);
  }
  return createHash('sha256').update(w.finish()).digest().subarray(0, SUMMARY_DIGEST_BYTES);
}

export function decodeSummary(bytes: Uint8Array, limits?: DecodeLimits): VersionVector {
  const lim = limitsOf(limits);
  const r = begin(bytes, MSG_SUMMARY, lim);
  const v = readVector(r, lim);
  r.end();
  return v;
}

export function encodeCleared(cleared: VersionVector): Uint8Array {
  const w = new ByteWriter(64 + cleared.rangeCount * 4);
  w.byte(MSG_CLEARED);
  writeVector(w, cleared);
  return w.finish();
}

export function decodeCleared(bytes: Uint8Array, limits?: DecodeLimits): VersionVector {
  const lim = limitsOf(limits);
  const r = begin(bytes, MSG_CLEARED, lim);
  const v = readVector(r, lim);
  r.end();
  return v;
}

/** Groups records by origin, each group in increasing seq. Throws on a repeated (origin, seq). */
function groupByOrigin(records: readonly StateRecord[]): Map<string, StateRecord[]> {
  const groups = new Map<string, StateRecord[]>();
  for (const rec of records) {
    let g = groups.get(rec.origin);
    if (g === undefined) groups.set(rec.origin, (g = []));
    g.push(rec);
  }
  for (const g of groups.values()) {
    let sorted = true;
    for (let i = 1; i < g.length; i++) if (g[i].seq <= g[i - 1].seq) sorted = false;
    if (!sorted) g.sort((a, b) => a.seq - b.seq);
    for (let i = 1; i < g.length; i++) {
      if (g[i].seq === g[i - 1].seq) throw new RangeError(`version ${g[i].seq} twice in a batch`);
    }
  }
  return groups;
}

export function encodeBatch(batch: ChangeBatch): Uint8Array {
  let estimate = 16 + batch.cleared.rangeCount * 4;
  for (const rec of batch.records) estimate += rec.key.length * 3 + (rec.value?.length ?? 0) + 24;
  const w = new ByteWriter(estimate);
  w.byte(MSG_BATCH);
  const groups = groupByOrigin(batch.records);
  w.uint(groups.size);
  for (const [origin, recs] of groups) {
    w.string(origin);
    w.uint(recs.length);
    let prevSeq = 0;
    let prevWall = 0;
    for (const rec of recs) {
      w.uint(rec.seq - prevSeq - 1);
      prevSeq = rec.seq;
      w.uint(zigzag(rec.hlc.wall - prevWall) * 2 + (rec.hlc.counter > 0 ? 1 : 0));
      prevWall = rec.hlc.wall;
      if (rec.hlc.counter > 0) w.uint(rec.hlc.counter);
      w.string(rec.key);
      if (rec.value === null) w.uint(0);
      else {
        w.uint(rec.value.length + 1);
        w.raw(rec.value);
      }
    }
  }
  writeVector(w, batch.cleared);
  return w.finish();
}

export function decodeBatch(bytes: Uint8Array, limits?: DecodeLimits): ChangeBatch {
  const lim = limitsOf(limits);
  const r = begin(bytes, MSG_BATCH, lim);
  const groupCount = r.uintMax(lim.maxRecords, 'group count');
  const records: StateRecord[] = [];
  const seen = new Set<string>();
  for (let g = 0; g < groupCount; g++) {
    const origin = readOrigin(r);
    if (seen.has(origin)) throw new StateDecodeError('duplicate origin group');
    seen.add(origin);
    const n = r.uintMax(lim.maxRecords - records.length, 'record count');
    if (n === 0) throw new StateDecodeError('empty origin group');
    let seq = 0;
    let wall = 0;
    for (let i = 0; i < n; i++) {
      seq += r.uint() + 1;
      if (!Number.isSafeInteger(seq)) throw new StateDecodeError('version out of range');
      const wallField = r.uint();
      wall += unzigzag(Math.floor(wallField / 2));
      if (wall < 0 || wall > HLC_MAX_WALL) throw new StateDecodeError('HLC wall out of range');
      let counter = 0;
      if (wallField % 2 === 1) {
        counter = r.uint();
        if (counter === 0 || counter > HLC_MAX_COUNTER) {
          throw new StateDecodeError('HLC counter out of range');
        }
      }
      const key = r.string(lim.maxKeyBytes, 'key');
      if (key.length === 0) throw new StateDecodeError('empty key');
      const valueField = r.uintMax(lim.maxValueBytes + 1, 'value length');
      const value = valueField === 0 ? null : r.raw(valueField - 1);
      records.push({ key, value, hlc: { wall, counter }, origin, seq });
    }
  }
  const cleared = readVector(r, lim);
  r.end();
  return { records, cleared };
}
