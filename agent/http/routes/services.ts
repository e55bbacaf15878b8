// Service registration, discovery and catalog watches.
import { z } from 'zod';
import type { CatalogChange, CatalogService } from '../../../membership/catalog/service.js';
import {
  registrationBodySchema,
  TAG_RE,
  TAG_RULE,
  validServiceId,
} from '../../../membership/catalog/registration.js';
import type { DiscoverQuery, Strategy } from '../../../membership/catalog/types.js';
import { CatalogFullError } from '../../../membership/errors.js';
import { HttpError } from '../../errors.js';
import type { RequestContext, Route } from '../router.js';
import { SseStream } from '../sse.js';

const STRATEGIES: Strategy[] = ['nearest', 'score', 'round-robin'];

function serviceId(ctx: RequestContext): string {
  const id = ctx.params.id;
  if (!validServiceId(id))
    throw new HttpError(
      400,
      'invalid_id',
      'id: must be 1-128 of A-Z a-z 0-9 _ . : - starting with a letter or digit',
    );
  return id;
}

function bool(v: string | null, name: string): boolean | undefined {
  if (v === null) return undefined;
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new HttpError(
    400,
    'invalid_query',
    `${name}: expected true or false, got ${JSON.stringify(v)}`,
  );
}

/** 400 unless `name` could be a service's name (a watch of any other would never fire). */
function checkServiceName(name: string): void {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name))
    throw new HttpError(400, 'invalid_name', 'name: must be a lower-case DNS label');
}

/** Parses the query string of /v1/discover/{name}; 400 naming the parameter. */
export function parseDiscoverQuery(
  name: string,
  q: URLSearchParams,
  remote: string | undefined,
): DiscoverQuery {
  checkServiceName(name);
  const strategy = (q.get('strategy') ?? 'nearest') as Strategy;
  if (!STRATEGIES.includes(strategy))
    throw new HttpError(
      400,
      'invalid_query',
      `strategy: expected one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(strategy)}`,
    );
  const site = q.get('site') ?? undefined;
  if (site !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(site))
    throw new HttpError(400, 'invalid_query', 'site: must be a lower-case DNS label');
  const limitRaw = q.get('limit');
  let limit: number | undefined;
  if (limitRaw !== null) {
    if (!/^\d{1,6}$/.test(limitRaw))
      throw new HttpError(
        400,
        'invalid_query',
        `limit: expected a whole number from 1 to 999999, got ${JSON.stringify(limitRaw)}`,
      );
    limit = Number(limitRaw);
    // no instances at all is never what a caller of discovery means (the CLI read it as "none found")
    if (limit === 0) throw new HttpError(400, 'invalid_query', 'limit: must be at least 1');
  }
  const client = q.get('client') ?? remote ?? '';
  if (client.length > 128)
    throw new HttpError(400, 'invalid_query', 'client: at most 128 characters');
  const tags = q.getAll('tag');
  // the registration's tag rule: a tag no instance can have (empty, say) is a mistake, not a
  // filter that quietly matches nothing
  for (const t of tags)
    if (!TAG_RE.test(t))
      throw new HttpError(
        400,
        'invalid_query',
        `tag: ${JSON.stringify(t)} is not a tag (${TAG_RULE})`,
      );
  if (tags.length > 32) throw new HttpError(400, 'invalid_query', 'tag: at most 32');
  return {
    name,
    strategy,
    site,
    tags: tags.length > 0 ? tags : undefined,
    client,
    limit,
    all: bool(q.get('all'), 'all'),
  };
}

const ttlBodySchema = z
  .object({ status: z.enum(['pass', 'fail']), output: z.string().max(512).optional() })
  .strict();

export function serviceRoutes(catalog: CatalogService): Route[] {
  return [
    {
      method: 'PUT',
      path: '/v1/services/:id',
      handler: async (ctx) => {
        const id = serviceId(ctx);
        const body = await ctx.json(registrationBodySchema);
        try {
          return { json: await catalog.register(id, body) };
        } catch (err) {
          if (err instanceof CatalogFullError) throw new HttpError(413, err.code, err.message);
          throw err;
        }
      },
    },
    {
      method: 'DELETE',
      path: '/v1/services/:id',
      handler: async (ctx) => {
        const id = serviceId(ctx);
        if (!(await catalog.deregister(id)))
          throw new HttpError(404, 'not_found', `no service ${id} is registered on this agent`);
        return { json: { deregistered: id } };
      },
    },
    { method: 'GET', path: '/v1/services', handler: () => ({ json: catalog.local() }) },
    {
      method: 'GET',
      path: '/v1/services/:id',
      handler: (ctx) => {
        const s = catalog.localService(serviceId(ctx));
        if (!s)
          throw new HttpError(
            404,
            'not_found',
            `no service ${ctx.params.id} is registered on this agent`,
          );
        return { json: s };
      },
    },
    {
      method: 'PUT',
      path: '/v1/services/:id/ttl',
      handler: async (ctx) => {
        const id = serviceId(ctx);
        const body = await ctx.json(ttlBodySchema);
        const r = catalog.ttl(id, body.status === 'pass' ? 'passing' : 'failing', body.output);
        if (r === false)
          throw new HttpError(404, 'not_found', `no service ${id} is registered on this agent`);
        // 409: the request is well formed, the service is not one that takes reports
        if (r === 'not_ttl') throw new HttpError(409, 'not_ttl', `service ${id} has no ttl check`);
        return { json: catalog.localService(id) };
      },
    },
    {
      method: 'GET',
      path: '/v1/discover/:name',
      query: ['strategy', 'site', 'tag', 'client', 'limit', 'all'],
      handler: async (ctx) => {
        const q = parseDiscoverQuery(ctx.params.name, ctx.query, ctx.req.socket.remoteAddress);
        const found = await catalog.discover(q, ctx.signal);
        const stale = found.filter((i) => i.stale);
        return {
          json: found,
          headers: {
            'x-edgeswarm-stale': stale.length,
            'x-edgeswarm-catalog-age': Math.max(0, ...stale.map((i) => i.ageSeconds)),
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/catalog',
      handler: () => ({
        json: catalog.state
          .names()
          .map((name) => ({ name, instances: catalog.state.instances(name).length })),
      }),
    },
    {
      method: 'GET',
      path: '/v1/catalog/watch',
      query: ['name'],
      handler: (ctx) => {
        const name = ctx.query.get('name') ?? undefined;
        if (name !== undefined) checkServiceName(name);
        const listener = (evt: Event) => {
          const change = (evt as CustomEvent<CatalogChange>).detail;
          if (name !== undefined && !change.names.includes(name)) return;
          sse.send('change', change);
        };
        const sse = new SseStream(ctx.res, () => catalog.removeEventListener('change', listener));
        catalog.addEventListener('change', listener);
        return undefined;
      },
    },
  ];
}
