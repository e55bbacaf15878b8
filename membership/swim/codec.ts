// Wire codec of SWIM messages: CBOR (cborg), compact positional arrays, version 1.
//
//   message  = [1, type, ...fields]
//     ping            [1, 0, seq, target, updates]
//     ping-req        [1, 1, seq, target, targetAddrs, nack, updates]
//     ack             [1, 2, seq, coordinate | null, updates]
//     nack            [1, 3, seq]
//     gossip          [1, 4, updates]
//     push-pull       [1, 5, seq, join, members]
//     push-pull-reply [1, 6, seq, members]
//   update     = [0, id, incarnation, meta] alive | [1, id, incarnation, from] suspect
//              | [2, id, incarnation, from] dead | [3, id, incarnation] left
//   member     = [id, incarnation, state (0 alive, 1 suspect, 2 dead, 3 left), meta]
//   meta       = [name, site, [addr...], {tag: value}, load?]
//   coordinate = [[x...], error, adjustment, height]
//
// Size limits: MAX_PACKET_BYTES for every message but the push-pull pair, which may reach
// MAX_PUSH_PULL_BYTES (the full member list). decodeMessage validates everything (types, lengths,
// counts, finite numbers, unsigned 32-bit seq and incarnation, metadata limits of meta.ts) and
// throws DecodeError, and only DecodeError, for any bad input.

import { decode, encode } from 'cborg';
import { type Coordinate, coordinateProblem } from '../coordinates/index.js';
import { DecodeError, EncodeError } from '../errors.js';
import { MAX_ADDRS, MAX_ADDR_LENGTH, idProblem, metaProblem } from './meta.js';
import type {
  MemberMeta,
  MemberState,
  PushPullEntry,
  SwimMessage,
  SwimMessageType,
  Update,
} from './types.js';

export const WIRE_VERSION = 1;
/** Largest message other than push-pull, bytes: 64 KiB (gossip budgets stay at 16 KiB). */
export const MAX_PACKET_BYTES = 64 * 1024;
/**
 * Largest push-pull request or reply, bytes: 32 MiB. 10,000 members at the largest metadata
 * (2 KiB) take ~22 MiB; at a typical ~300 B each, ~3 MiB. The runtime should read push-pull on a
 * stream of its own with this limit and everything else with MAX_PACKET_BYTES.
 */
export const MAX_PUSH_PULL_BYTES = 32 * 1024 * 1024;
/** Most updates in one message. */
export const MAX_UPDATES_PER_MESSAGE = 256;
/** Most members in one push-pull. */
export const MAX_PUSH_PULL_MEMBERS = 100_000;

const TYPE_CODES: Record<SwimMessageType, number> = {
  ping: 0,
  'ping-req': 1,
  ack: 2,
  nack: 3,
  gossip: 4,
  'push-pull': 5,
  'push-pull-reply': 6,
};
const STATE_CODES: Record<MemberState, number> = { alive: 0, suspect: 1, dead: 2, left: 3 };
const STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];
const UPDATE_CODES = { alive: 0, suspect: 1, dead: 2, left: 3 } as const;

/** The size limit for a message type, bytes. */
export function maxBytesFor(type: SwimMessageType): number {
  return type === 'push-pull' || type === 'push-pull-reply'
    ? MAX_PUSH_PULL_BYTES
    : MAX_PACKET_BYTES;
}

// ---- encoding ---------------------------------------------------------------------------------

function metaWire(m: MemberMeta): unknown[] {
  const w: unknown[] = [m.name, m.site, m.addrs, m.tags];
  if (m.load !== undefined) w.push(m.load);
  return w;
}

function updateWire(u: Update): unknown[] {
  switch (u.kind) {
    case 'alive':
      return [UPDATE_CODES.alive, u.id, u.incarnation, metaWire(u.meta)];
    case 'suspect':
    case 'dead':
      return [UPDATE_CODES[u.kind], u.id, u.incarnation, u.from];
    case 'left':
      return [UPDATE_CODES.left, u.id, u.incarnation];
  }
}

function membersWire(ms: readonly PushPullEntry[]): unknown[] {
  return ms.map((e) => [e.id, e.incarnation, STATE_CODES[e.state], metaWire(e.meta)]);
}

function coordinateWire(c: Coordinate): unknown[] {
  return [c.vec, c.error, c.adjustment, c.height];
}

function messageWire(msg: SwimMessage): unknown[] {
  const head = [WIRE_VERSION, TYPE_CODES[msg.type]];
  switch (msg.type) {
    case 'ping':
      return [...head, msg.seq, msg.target, msg.updates.map(updateWire)];
    case 'ping-req':
      return [...head, msg.seq, msg.target, msg.targetAddrs, msg.nack, msg.updates.map(updateWire)];
    case 'ack':
      return [
        ...head,
        msg.seq,
        msg.coordinate === undefined ? null : coordinateWire(msg.coordinate),
        msg.updates.map(updateWire),
      ];
    case 'nack':
      return [...head, msg.seq];
    case 'gossip':
      return [...head, msg.updates.map(updateWire)];
    case 'push-pull':
      return [...head, msg.seq, msg.join, membersWire(msg.members)];
    case 'push-pull-reply':
      return [...head, msg.seq, membersWire(msg.members)];
  }
}

/** Encodes a message; throws EncodeError if it exceeds its size limit (see maxBytesFor). */
export function encodeMessage(msg: SwimMessage): Uint8Array {
  const bytes = encode(messageWire(msg));
  const limit = maxBytesFor(msg.type);
  if (bytes.length > limit)
    throw new EncodeError(`${msg.type} message of ${bytes.length} bytes exceeds ${limit}`);
  return bytes;
}

// ---- decoding ---------------------------------------------------------------------------------

const DECODE_OPTIONS = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowInfinity: false,
  allowNaN: false,
  allowBigInt: false,
  useMaps: true,
  rejectDuplicateMapKeys: true,
} as const;

function fail(reason: string): never {
  throw new DecodeError(reason);
}

function arr(v: unknown, min: number, max: number, what: string): unknown[] {
  if (!Array.isArray(v) || v.length < min || v.length > max) fail(`bad ${what}`);
  return v;
}

function str(v: unknown, max: number, what: string, min = 1): string {
  if (typeof v !== 'string' || v.length < min || v.length > max) fail(`bad ${what}`);
  return v;
}

function u32(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
    fail(`bad ${what}`);
  return v;
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') fail(`bad ${what}`);
  return v;
}

function id(v: unknown, what: string): string {
  if (idProblem(v) !== undefined) fail(`bad ${what}`);
  return v as string;
}

function addrs(v: unknown): string[] {
  return arr(v, 0, MAX_ADDRS, 'addrs').map((a) => str(a, MAX_ADDR_LENGTH, 'addr'));
}

function meta(v: unknown): MemberMeta {
  const w = arr(v, 4, 5, 'meta');
  const tagsIn = w[3];
  if (!(tagsIn instanceof Map)) fail('bad tags');
  const entries: Array<[string, string]> = [];
  for (const [k, val] of tagsIn) {
    if (typeof k !== 'string' || typeof val !== 'string') fail('bad tags');
    entries.push([k, val]);
  }
  const m: MemberMeta = {
    name: w[0] as string,
    site: w[1] as string,
    addrs: Array.isArray(w[2]) ? [...(w[2] as string[])] : (w[2] as string[]),
    // fromEntries defines own properties: a "__proto__" key cannot reach the prototype (and is
    // rejected by metaProblem anyway).
    tags: Object.fromEntries(entries),
  };
  if (w.length === 5) m.load = w[4] as number;
  const p = metaProblem(m);
  if (p !== undefined) fail(`bad meta ${p[0]}`);
  return m;
}

function coordinate(v: unknown): Coordinate {
  const w = arr(v, 4, 4, 'coordinate');
  const vec = arr(w[0], 1, 64, 'coordinate');
  for (const x of vec) if (typeof x !== 'number') fail('bad coordinate');
  const c: Coordinate = {
    vec: vec as number[],
    error: w[1] as number,
    adjustment: w[2] as number,
    height: w[3] as number,
  };
  if (coordinateProblem(c) !== undefined) fail('bad coordinate');
  return c;
}

function update(v: unknown): Update {
  const w = arr(v, 3, 4, 'update');
  const uid = id(w[1], 'update id');
  const incarnation = u32(w[2], 'incarnation');
  switch (w[0]) {
    case 0:
      if (w.length !== 4) fail('bad update');
      return { kind: 'alive', id: uid, incarnation, meta: meta(w[3]) };
    case 1:
    case 2:
      if (w.length !== 4) fail('bad update');
      return {
        kind: w[0] === 1 ? 'suspect' : 'dead',
        id: uid,
        incarnation,
        from: id(w[3], 'update from'),
      };
    case 3:
      if (w.length !== 3) fail('bad update');
      return { kind: 'left', id: uid, incarnation };
    default:
      return fail('bad update kind');
  }
}

function updates(v: unknown): Update[] {
  return arr(v, 0, MAX_UPDATES_PER_MESSAGE, 'updates').map(update);
}

function members(v: unknown): PushPullEntry[] {
  return arr(v, 0, MAX_PUSH_PULL_MEMBERS, 'members').map((e) => {
    const w = arr(e, 4, 4, 'member');
    const code = w[2];
    if (code !== 0 && code !== 1 && code !== 2 && code !== 3) fail('bad member state');
    return {
      id: id(w[0], 'member id'),
      incarnation: u32(w[1], 'incarnation'),
      state: STATES[code],
      meta: meta(w[3]),
    };
  });
}

/** Reads the message type from the first bytes without decoding the rest, or -1. */
function peekType(bytes: Uint8Array): number {
  let p: number;
  if (bytes[0] >= 0x82 && bytes[0] <= 0x97) p = 1;
  else if (bytes[0] === 0x98) p = 2;
  else return -1;
  if (bytes[p] !== WIRE_VERSION) return -1;
  const t = bytes[p + 1];
  return t !== undefined && t <= 6 ? t : -1;
}

/**
 * Decodes and validates one message of at most `maxBytes` (and at most the limit of its type).
 * Throws DecodeError for anything else.
 */
export function decodeMessage(bytes: Uint8Array, maxBytes = MAX_PUSH_PULL_BYTES): SwimMessage {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) fail('empty');
  if (bytes.length > maxBytes) fail('too large');
  const t = peekType(bytes);
  if (t < 0) fail('not a SWIM message');
  if (t !== TYPE_CODES['push-pull'] && t !== TYPE_CODES['push-pull-reply']) {
    if (bytes.length > MAX_PACKET_BYTES) fail('too large');
  }
  let raw: unknown;
  try {
    raw = decode(bytes, DECODE_OPTIONS);
  } catch {
    // cborg errors, and RangeError for absurd nesting: all just mean "not valid CBOR for us".
    fail('malformed CBOR');
  }
  const w = arr(raw, 2, 7, 'message');
  if (w[0] !== WIRE_VERSION) fail('unsupported version');
  switch (w[1]) {
    case 0:
      arr(w, 5, 5, 'ping');
      return {
        type: 'ping',
        seq: u32(w[2], 'seq'),
        target: id(w[3], 'target'),
        updates: updates(w[4]),
      };
    case 1:
      arr(w, 7, 7, 'ping-req');
      return {
        type: 'ping-req',
        seq: u32(w[2], 'seq'),
        target: id(w[3], 'target'),
        targetAddrs: addrs(w[4]),
        nack: bool(w[5], 'nack'),
        updates: updates(w[6]),
      };
    case 2: {
      arr(w, 5, 5, 'ack');
      const seq = u32(w[2], 'seq');
      const ups = updates(w[4]);
      return w[3] === null
        ? { type: 'ack', seq, updates: ups }
        : { type: 'ack', seq, coordinate: coordinate(w[3]), updates: ups };
    }
    case 3:
      arr(w, 3, 3, 'nack');
      return { type: 'nack', seq: u32(w[2], 'seq') };
    case 4:
      arr(w, 3, 3, 'gossip');
      return { type: 'gossip', updates: updates(w[2]) };
    case 5:
      arr(w, 5, 5, 'push-pull');
      return {
        type: 'push-pull',
        seq: u32(w[2], 'seq'),
        join: bool(w[3], 'join'),
        members: members(w[4]),
      };
    case 6:
      arr(w, 4, 4, 'push-pull-reply');
      return { type: 'push-pull-reply', seq: u32(w[2], 'seq'), members: members(w[3]) };
    default:
      return fail('unknown message type');
  }
}

/** Like decodeMessage, but returns the error instead of throwing. */
export function tryDecodeMessage(
  bytes: Uint8Array,
  maxBytes = MAX_PUSH_PULL_BYTES,
): { ok: true; msg: SwimMessage } | { ok: false; error: DecodeError } {
  try {
    return { ok: true, msg: decodeMessage(bytes, maxBytes) };
  } catch (err) {
    if (err instanceof DecodeError) return { ok: false, error: err };
    return { ok: false, error: new DecodeError('internal', { cause: err }) };
  }
}
