// How the state store lays out its data in its KvStore namespace. Pure (encoders only).
//
//   r\0<key>                 -> the current record of <key> (live value or tombstone)
//   v\0<origin>\0<seq:hex14> -> <key>: the versions this node holds (index for anti-entropy)
//   t\0<origin>\0<seq:hex14> -> wall varint + <key>: the tombstones (index for garbage collection)
//   h\0<origin>              -> range set: the versions of <origin> this node has (held or cleared)
//   m\0hlc                   -> 8 bytes: the HLC high-water mark (never issue below it again)
//   m\0own                   -> varint: the highest version of this node's own origin a peer
//                               claimed (its next write goes above it and above every one it had)
//
// A version is held iff it has a v\0 entry; cleared versions are had minus held. Every change to
// these keys is made in one KvStore batch, so a crash leaves them consistent.
import { CorruptDataError } from '../errors.js';
import { hlcFromBytes, hlcToBytes, type Hlc } from './hlc.js';
import type { StateRecord } from './merge.js';
import { ByteReader, ByteWriter } from './varint.js';

export const RECORD_PREFIX = 'r\0';
export const HELD_PREFIX = 'v\0';
export const TOMBSTONE_PREFIX = 't\0';
export const HAD_PREFIX = 'h\0';
export const HLC_KEY = 'm\0hlc';
export const OWN_FLOOR_KEY = 'm\0own';

const RECORD_FORMAT = 1;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function recordKey(key: string): string {
  return RECORD_PREFIX + key;
}

function seqHex(seq: number): string {
  return seq.toString(16).padStart(14, '0');
}

export function heldKey(origin: string, seq: number): string {
  return `${HELD_PREFIX}${origin}\0${seqHex(seq)}`;
}

export function tombstoneKey(origin: string, seq: number): string {
  return `${TOMBSTONE_PREFIX}${origin}\0${seqHex(seq)}`;
}

export function hadKey(origin: string): string {
  return HAD_PREFIX + origin;
}

/** Splits "<prefix><origin>\0<seq>" (a held or tombstone index key). */
export function parseVersionKey(k: string, prefix: string): { origin: string; seq: number } {
  const sep = k.lastIndexOf('\0');
  const seq = parseInt(k.slice(sep + 1), 16);
  if (sep <= prefix.length || !Number.isSafeInteger(seq)) {
    throw new CorruptDataError(`bad version index key ${JSON.stringify(k)}`);
  }
  return { origin: k.slice(prefix.length, sep), seq };
}

/** The stored form of a record: format, wall, counter, origin, seq, flag, value bytes. */
export function encodeStoredRecord(r: StateRecord): Uint8Array {
  const w = new ByteWriter(32 + r.origin.length * 3 + (r.value?.length ?? 0));
  w.byte(RECORD_FORMAT);
  w.uint(r.hlc.wall);
  w.uint(r.hlc.counter);
  w.string(r.origin);
  w.uint(r.seq);
  if (r.value === null) w.byte(0);
  else {
    w.byte(1);
    w.raw(r.value);
  }
  return w.finish();
}

export interface StoredHeader {
  hlc: Hlc;
  origin: string;
  seq: number;
  /** Value size in bytes, or -1 for a tombstone. */
  size: number;
  /** Offset of the value bytes. */
  valueAt: number;
}

export function decodeStoredHeader(bytes: Uint8Array): StoredHeader {
  try {
    const r = new ByteReader(bytes);
    if (r.byte() !== RECORD_FORMAT) throw new Error('unknown record format');
    const wall = r.uint();
    const counter = r.uint();
    const origin = r.string(1 << 16, 'origin');
    const seq = r.uint();
    const flag = r.byte();
    const valueAt = r.offset;
    return { hlc: { wall, counter }, origin, seq, size: flag === 0 ? -1 : r.remaining, valueAt };
  } catch (err) {
    throw new CorruptDataError(`stored record: ${(err as Error).message}`);
  }
}

export function decodeStoredRecord(key: string, bytes: Uint8Array): StateRecord {
  const h = decodeStoredHeader(bytes);
  const value = h.size < 0 ? null : bytes.subarray(h.valueAt);
  return { key, value, hlc: h.hlc, origin: h.origin, seq: h.seq };
}

export function encodeKeyBytes(key: string): Uint8Array {
  return encoder.encode(key);
}

export function decodeKeyBytes(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

export function encodeTombstoneEntry(wall: number, key: string): Uint8Array {
  const w = new ByteWriter(8 + key.length * 3);
  w.uint(wall);
  w.raw(encoder.encode(key));
  return w.finish();
}

export function decodeTombstoneEntry(bytes: Uint8Array): { wall: number; key: string } {
  try {
    const r = new ByteReader(bytes);
    const wall = r.uint();
    return { wall, key: decoder.decode(bytes.subarray(r.offset)) };
  } catch (err) {
    throw new CorruptDataError(`tombstone index: ${(err as Error).message}`);
  }
}

export function encodeOwnFloor(seq: number): Uint8Array {
  const w = new ByteWriter(10);
  w.uint(seq);
  return w.finish();
}

export function decodeOwnFloor(bytes: Uint8Array): number {
  try {
    return new ByteReader(bytes).uint();
  } catch (err) {
    throw new CorruptDataError(`own version floor: ${(err as Error).message}`);
  }
}

export { hlcFromBytes as decodeHlcMark, hlcToBytes as encodeHlcMark };
