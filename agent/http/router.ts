// A small router for the HTTP API: routes are "METHOD /v1/path/:param", matched on the raw path
// segments (each param is URL-decoded after matching, so an image name "a/b" travels as a%2Fb).
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
  handler: Handler;
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
   * other methods (405), or undefined (404). A param that is not valid percent-encoding is a miss.
   */
  match(method: string, rawPath: string): Match | { allowed: string[] } | undefined {
    const parts = rawPath.split('/').filter(Boolean);
    const allowed: string[] = [];
    for (const c of this.#routes) {
      if (c.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const seg = c.segments[i];
        if (seg.startsWith(':')) {
          try {
            params[seg.slice(1)] = decodeURIComponent(parts[i]);
          } catch {
            ok = false;
          }
        } else if (seg !== parts[i]) ok = false;
      }
      if (!ok) continue;
      if (c.route.method === method || (method === 'HEAD' && c.route.method === 'GET'))
        return { route: c.route, params };
      allowed.push(c.route.method);
    }
    return allowed.length > 0 ? { allowed } : undefined;
  }
}
