// The catalog's anti-entropy protocol, /edgeswarm/catalog/1.0.0. One exchange:
//   A → B  {t:'hash', h}                  B answers {t:'same'} when its digest hash is equal,
//   B → A  {t:'digest', d}                else its digest (node → version);
//   A → B  {t:'exchange', push, want}     A pushes the catalogs B lacks and asks for those it lacks;
//   B → A  {t:'catalogs', list}           B sends them.
// Also {t:'get', nodes} → {t:'catalogs', list}, used after a DHT lookup. Catalogs travel signed
// by their owners (codec.ts), so a relayed copy is as trustworthy as a direct one.
import { decode, encode } from 'cborg';
import { z } from 'zod';

export const CATALOG_PROTOCOL = '/edgeswarm/catalog/1.0.0';
/** Largest frame of the sync protocol (bytes): a digest of 10,000 nodes is ~0.6 MiB. */
export const MAX_SYNC_FRAME = 8 * 1024 * 1024;
/** Most catalogs sent in one frame (exchange or reply); the rest follow in the next exchange. */
export const MAX_CATALOGS_PER_REPLY = 500;
/**
 * Most bytes of signed catalogs sent in one frame (an exchange's push, a catalogs reply): 2 MiB;
 * the rest follow in the next exchange (see CATALOG_SYNC_MAX_EXCHANGES in replication.ts). Three
 * reasons: with the rest of the message (an exchange's want list: ~0.6 MiB for 10,000 nodes) a
 * frame stays well under MAX_SYNC_FRAME, which the receiver enforces (a frame over it is refused
 * whole, so a sender packing 20 catalogs of ~512 KiB never got any through); 2 MiB crosses a
 * 10 Mbit/s site link in ~1.7 s, inside the 5 s an exchange is given; and it holds 3 catalogs of
 * the largest size a peer accepts (MAX_NODE_CATALOG_BYTES, 512 KiB), so every frame carries at
 * least one and sync always makes progress.
 */
export const MAX_SYNC_CATALOG_BYTES = 2 * 1024 * 1024;
/** Most CBOR bytes around one catalog in a list: the byte string's header (at most 9). */
const CATALOG_ITEM_OVERHEAD = 9;

/**
 * The catalogs from the front of `list` that fit in one frame: at most `maxCount`, their bytes
 * (with CBOR overhead) at most `maxBytes`; `more` tells whether any were left out. Pure.
 */
export function fitCatalogs(
  list: readonly Uint8Array[],
  maxBytes = MAX_SYNC_CATALOG_BYTES,
  maxCount = MAX_CATALOGS_PER_REPLY,
): { take: Uint8Array[]; more: boolean } {
  const take: Uint8Array[] = [];
  let bytes = 0;
  for (const c of list) {
    const cost = c.length + CATALOG_ITEM_OVERHEAD;
    if (take.length >= maxCount || bytes + cost > maxBytes) break;
    take.push(c);
    bytes += cost;
  }
  return { take, more: take.length < list.length };
}

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
export const syncMessageSchema = z.discriminatedUnion('t', [
  z.object({ t: z.literal('hash'), h: z.string().max(64) }).strict(),
  z.object({ t: z.literal('same') }).strict(),
  z
    .object({
      t: z.literal('digest'),
      d: z.array(z.tuple([z.string().max(128), z.number().int().min(0)])).max(100_000),
    })
    .strict(),
  z
    .object({
      t: z.literal('exchange'),
      push: z.array(bytes).max(MAX_CATALOGS_PER_REPLY),
      want: z.array(z.string().max(128)).max(100_000),
    })
    .strict(),
  z.object({ t: z.literal('get'), nodes: z.array(z.string().max(128)).max(1000) }).strict(),
  z.object({ t: z.literal('catalogs'), list: z.array(bytes).max(MAX_CATALOGS_PER_REPLY) }).strict(),
]);

export type SyncMessage = z.output<typeof syncMessageSchema>;

export class SyncDecodeError extends Error {
  readonly code = 'sync_decode';
  constructor(message: string) {
    super(message);
    this.name = 'SyncDecodeError';
  }
}

export function encodeSync(m: SyncMessage): Uint8Array {
  return encode(m);
}

export function decodeSync(b: Uint8Array): SyncMessage {
  try {
    return syncMessageSchema.parse(decode(b));
  } catch (err) {
    throw new SyncDecodeError(
      `malformed catalog sync message: ${(err as Error).message.slice(0, 200)}`,
    );
  }
}
