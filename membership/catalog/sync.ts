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
/** Most catalogs sent in one reply; the rest follow at the next round. */
export const MAX_CATALOGS_PER_REPLY = 500;

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
