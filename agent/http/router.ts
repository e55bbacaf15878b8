// A small router for the HTTP API: routes are "METHOD /v1/path/:param", matched on the raw path
// segments (each param is URL-decoded after matching). One segment may be "*param": it takes one
// or more segments (joined with "/"), as many as leave the segments after it to match — so
// /v1/kv/*key takes "a/b/c" and /v1/images/*name/:tag takes "library/ubuntu" then "22.04".
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { z } from 'zod';
import type { Logger } from '../logger.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  query: URLSearchParams;
  /** Aborted when the client goes away. */
  signal: AbortSignal;
  log: Logger;
  /** Reads and parses a JSON body (at most `limit` bytes) and validates it; 400 naming the field. */
  json<S extends z.ZodType>(schema: S, limit?: number): Promise<z.output<S>>;
  /** Reads the whole body (at most `limit` bytes, else 413). */
  body(limit: number): Promise<Buffer>;
}

export interface Reply {
  status?: number;
  json?: unknown;
  body?: Uint8Array | string | Readable;
  headers?: Record<string, string | number>;
}

/** A handler returns a reply, or undefined when it wrote the response itself (SSE, streams). */
export type Handler = (ctx: RequestContext) => Promise<Reply | undefined> | Reply | undefined;

export interface Route {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** e.g. "/v1/services/:id". */
  path: string;
  /** Needs the bearer token (default true). */
  auth?: boolean;
  /**
   * The query parameters it takes; any other is a 400 naming it (a typo such as `?prefx=` would
   * otherwise be ignored: a watch of everything). Default none; 'any' for routes that external
   * tools call with their own parameters (/metrics, /v1/health).
   */
  query?: readonly string[] | 'any';
  handler: Handler;
}

/** The first query parameter `route` does not take, or undefined. */
export function unknownParam(route: Route, query: URLSearchParams): string | undefined {
  if (route.query === 'any') return undefined;
  const takes = route.query ?? [];
  for (const k of query.keys()) if (!takes.includes(k)) return k;
  return undefined;
}

interface Compiled {
  route: Route;
  segments: string[];
}

export interface Match {
  route: Route;
  params: Record<string, string>;
}

export class Router {
  readonly #routes: Compiled[] = [];

  add(...routes: Route[]): this {
    for (const route of routes)
      this.#routes.push({ route, segments: route.path.split('/').filter(Boolean) });
    return this;
  }

  /**
   * Finds the route for a method and raw path. Returns `{ allowed }` when the path exists under
   * other methods (405), `{ badEncoding }` when a route matches but one of its params is not
   * valid percent-encoded UTF-8 (400), or undefined (404).
   */
  match(
    method: string,
    rawPath: string,
  ): Match | { allowed: string[] } | { badEncoding: true } | undefined {
    // every segment as sent, empty ones too: `/v1/kv/dir/` is the key "dir/" (as `dir%2F` is),
    // not "dir", and `/v1/services//ttl` is not `/v1/services/ttl`
    const parts = rawPath.split('/').slice(1);
    const allowed: string[] = [];
    for (const c of this.#routes) {
      const params = matchSegments(c.segments, parts);
      if (!params) continue;
      if (c.route.method === method || (method === 'HEAD' && c.route.method === 'GET'))
        return params === BAD_ENCODING ? { badEncoding: true } : { route: c.route, params };
      allowed.push(c.route.method);
    }
    return allowed.length > 0 ? { allowed } : undefined;
  }
}

function decode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}

/** A route whose shape matches, with a param that does not decode. */
const BAD_ENCODING = 'bad-encoding';

function matchSegments(
  segments: string[],
  parts: string[],
): Record<string, string> | typeof BAD_ENCODING | undefined {
  const star = segments.findIndex((s) => s.startsWith('*'));
  if (star < 0 ? segments.length !== parts.length : parts.length < segments.length)
    return undefined;
  const params: Record<string, string> = {};
  let bad = false;
  const one = (seg: string, part: string): boolean => {
    if (seg.startsWith(':')) {
      // an empty param matches nothing: `DELETE /v1/services/` is no route, not "use GET"
      if (part === '') return false;
      const v = decode(part);
      if (v === undefined) bad = true;
      else params[seg.slice(1)] = v;
      return true;
    }
    return seg === part;
  };
  if (star < 0) {
    for (let i = 0; i < parts.length; i++) if (!one(segments[i], parts[i])) return undefined;
    return bad ? BAD_ENCODING : params;
  }
  const after = segments.length - star - 1;
  for (let i = 0; i < star; i++) if (!one(segments[i], parts[i])) return undefined;
  for (let i = 0; i < after; i++)
    if (!one(segments[star + 1 + i], parts[parts.length - after + i])) return undefined;
  const taken = parts.slice(star, parts.length - after).map(decode);
  if (bad || taken.some((t) => t === undefined)) return BAD_ENCODING;
  params[segments[star].slice(1)] = taken.join('/');
  return params;
}
