// Images: push (streamed body), list, status, content (fetched from peers as needed), remove.
import { Readable } from 'node:stream';
import type { ImageService } from '../../../edge-sites/index.js';
import {
  ImageTooLargeError,
  InvalidImageRefError,
  InvalidManifestError,
} from '../../../storage/errors.js';
import {
  MAX_COPIES,
  validateImageName,
  validateImageTag,
  validateSiteName,
} from '../../../storage/images/index.js';
import { HttpError } from '../../errors.js';
import type { RequestContext, Route } from '../router.js';

/** Words that end routes under an image (and their methods), which a tag cannot be. */
const RESERVED_TAGS = new Map([
  ['content', 'GET'],
  ['verify', 'POST'],
]);

function ref(ctx: RequestContext): { name: string; tag: string } {
  try {
    return { name: validateImageName(ctx.params.name), tag: validateImageTag(ctx.params.tag) };
  } catch (err) {
    if (err instanceof InvalidImageRefError) throw new HttpError(400, err.code, err.message);
    throw err;
  }
}

export function parsePlacement(q: URLSearchParams): { sites: 'all' | string[]; copies: number } {
  const sitesRaw = q.get('sites') ?? 'all';
  let sites: 'all' | string[] = 'all';
  if (sitesRaw !== 'all') {
    try {
      sites = sitesRaw.split(',').map((s) => {
        if (s.trim() === 'all') throw new Error('"all" cannot be combined with sites');
        return validateSiteName(s.trim(), '');
      });
    } catch (err) {
      throw new HttpError(400, 'invalid_query', `sites: ${(err as Error).message}`);
    }
    if (sites.length === 0)
      throw new HttpError(
        400,
        'invalid_query',
        'sites: give "all" or a comma-separated list of sites',
      );
  }
  const copiesRaw = q.get('copies') ?? '1';
  if (!/^\d{1,3}$/.test(copiesRaw) || Number(copiesRaw) < 1 || Number(copiesRaw) > MAX_COPIES)
    throw new HttpError(
      400,
      'invalid_query',
      `copies: expected a whole number from 1 to ${MAX_COPIES}, got ${JSON.stringify(copiesRaw)}`,
    );
  return { sites, copies: Number(copiesRaw) };
}

export function imageRoutes(images: ImageService): Route[] {
  return [
    {
      method: 'PUT',
      path: '/v1/images/*name/:tag',
      query: ['sites', 'copies'],
      handler: async (ctx) => {
        const { name, tag } = ref(ctx);
        // `PUT /v1/images/x/y/content` pushed x/y:content, which `GET` of the same path reads as
        // the content of x/y:... no such image; the words that end routes are not tags
        if (RESERVED_TAGS.has(tag))
          throw new HttpError(
            400,
            'invalid_tag',
            `tag: "${tag}" is reserved (${RESERVED_TAGS.get(tag)} /v1/images/NAME/TAG/${tag} is a route of its own)`,
          );
        const placement = parsePlacement(ctx.query);
        try {
          const m = await images.push(name, tag, ctx.req, placement, { signal: ctx.signal });
          // placed sites no live member is in: the image waits there until one joins (a typo in
          // --sites was accepted without a word)
          const status = await images.status(name, tag);
          const emptySites = (status?.sites ?? [])
            .filter((x) => x.placed && x.wanted === 0)
            .map((x) => x.site);
          return {
            json: {
              name: m.name,
              tag: m.tag,
              version: m.version,
              digest: m.digest,
              size: m.size,
              chunks: m.chunks.length,
              placement: m.placement,
              emptySites,
            },
          };
        } catch (err) {
          if (err instanceof ImageTooLargeError)
            throw new HttpError(413, 'image_too_large', err.message);
          // a manifest the store refuses (an empty body is fine: an image of no chunks)
          if (err instanceof InvalidManifestError)
            throw new HttpError(400, 'invalid_image', err.message);
          throw err;
        }
      },
    },
    { method: 'GET', path: '/v1/images', handler: async () => ({ json: await images.list() }) },
    {
      method: 'GET',
      path: '/v1/images/*name/:tag/content',
      query: ['version'],
      handler: async (ctx) => {
        const { name, tag } = ref(ctx);
        const v = ctx.query.get('version');
        if (v !== null && !/^\d{1,12}$/.test(v))
          throw new HttpError(400, 'invalid_query', 'version: expected a whole number');
        const m = await images.manifests.get(name, tag, v === null ? undefined : Number(v));
        if (!m)
          throw new HttpError(
            404,
            'not_found',
            `no image ${name}:${tag}${v ? ` version ${v}` : ''}`,
          );
        return {
          body: Readable.from(images.content(m, ctx.signal)),
          headers: {
            'content-length': m.size,
            'x-edgeswarm-digest': m.digest,
            'x-edgeswarm-version': m.version,
          },
        };
      },
    },
    {
      method: 'POST',
      path: '/v1/images/*name/:tag/verify',
      handler: async (ctx) => {
        const { name, tag } = ref(ctx);
        const m = await images.manifests.get(name, tag);
        if (!m) throw new HttpError(404, 'not_found', `no image ${name}:${tag}`);
        return {
          json: {
            name,
            tag,
            version: m.version,
            digest: m.digest,
            ...(await images.verify(m, ctx.signal)),
          },
        };
      },
    },
    {
      method: 'GET',
      path: '/v1/images/*name/:tag',
      handler: async (ctx) => {
        const { name, tag } = ref(ctx);
        const s = await images.status(name, tag);
        if (!s) throw new HttpError(404, 'not_found', `no image ${name}:${tag}`);
        return { json: s };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/images/*name/:tag',
      handler: async (ctx) => {
        const { name, tag } = ref(ctx);
        if (!(await images.remove(name, tag)))
          throw new HttpError(404, 'not_found', `no image ${name}:${tag}`);
        return { json: { removed: `${name}:${tag}` } };
      },
    },
  ];
}
