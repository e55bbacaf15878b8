// The replicated key/value store: PUT/GET/DELETE /v1/kv/{key}, list, and watches.
import type { KvEvent, KvService } from '../../../edge-sites/state/service.js';
import { InvalidKeyError, ValueTooLargeError } from '../../../storage/state/index.js';
import { HttpError } from '../../errors.js';
import type { RequestContext, Route } from '../router.js';
import { SseStream } from '../sse.js';

/** The key of the path, checked as a write would check it (so a read of a bad key is a 400 too). */
function key(ctx: RequestContext, kv: KvService): string {
  const k = ctx.params.key;
  if (!k) throw new HttpError(400, 'invalid_key', 'key: must not be empty');
  try {
    kv.state.validateKey(k);
  } catch (err) {
    mapErrors(err);
  }
  return k;
}

function mapErrors(err: unknown): never {
  if (err instanceof ValueTooLargeError) throw new HttpError(413, 'value_too_large', err.message);
  if (err instanceof InvalidKeyError)
    // "key: has a control character (U+0000)", not "key: key has ..."
    throw new HttpError(400, 'invalid_key', `key: ${err.message.replace(/^key (?=is |has )/, '')}`);
  throw err;
}

export function kvRoutes(kv: KvService): Route[] {
  return [
    {
      method: 'PUT',
      path: '/v1/kv/*key',
      handler: async (ctx) => {
        const k = key(ctx, kv);
        const limit = kv.maxValueBytes;
        let body: Buffer;
        try {
          body = await ctx.body(limit);
        } catch (err) {
          if (err instanceof HttpError && err.status === 413)
            throw new HttpError(
              413,
              'value_too_large',
              `value is over the limit of ${limit} bytes`,
            );
          throw err;
        }
        try {
          return { json: await kv.put(k, new Uint8Array(body)) };
        } catch (err) {
          mapErrors(err);
        }
      },
    },
    {
      method: 'GET',
      path: '/v1/kv/*key',
      handler: async (ctx) => {
        const k = key(ctx, kv);
        const e = await kv.get(k).catch(mapErrors);
        if (!e) throw new HttpError(404, 'not_found', `no key ${k}`);
        return { body: e.value, headers: { 'x-edgeswarm-version': e.version } };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/kv/*key',
      handler: async (ctx) => {
        const k = key(ctx, kv);
        const r = await kv.del(k).catch(mapErrors);
        if (!r) throw new HttpError(404, 'not_found', `no key ${k}`);
        return { json: { ...r, deleted: true } };
      },
    },
    {
      method: 'GET',
      path: '/v1/kv',
      query: ['prefix', 'limit'],
      handler: async (ctx) => {
        const prefix = ctx.query.get('prefix') ?? undefined;
        const limitRaw = ctx.query.get('limit');
        if (limitRaw !== null && !/^\d{1,7}$/.test(limitRaw))
          throw new HttpError(
            400,
            'invalid_query',
            `limit: expected a whole number from 0 to 9999999, got ${JSON.stringify(limitRaw)}`,
          );
        return {
          json: await kv.list(prefix, { limit: limitRaw === null ? undefined : Number(limitRaw) }),
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/watch',
      query: ['prefix'],
      handler: (ctx) => {
        const prefix = ctx.query.get('prefix') ?? '';
        const listener = (evt: Event) => {
          const e = (evt as CustomEvent<KvEvent>).detail;
          if (e.key.startsWith(prefix)) sse.send('change', e);
        };
        const sse = new SseStream(ctx.res, () => kv.removeEventListener('change', listener));
        kv.addEventListener('change', listener);
        return undefined;
      },
    },
  ];
}
