// The HTTP client the CLI commands use to talk to an agent.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError, UsageError } from '../errors.js';
import { fetchBlockedReason } from '../fetch-ports.js';

export interface ClientOptions {
  api?: string;
  token?: string;
  data?: string;
  json?: boolean;
}

export const DEFAULT_API = 'http://127.0.0.1:7780';

/**
 * A value that goes into the URL path as one segment, encoded; an empty one is bad usage naming
 * it (it reached the API as another route: `DELETE /v1/services/` said "use GET").
 */
export function pathSegment(value: string, what: string): string {
  if (value === '') throw new UsageError(`${what} must not be empty`);
  return encodeURIComponent(value);
}

function normalizeApi(api: string): string {
  const bad = () =>
    new UsageError(`--api: ${JSON.stringify(api)} is not a URL like http://127.0.0.1:7780`);
  // another scheme (ftp://h:1) was taken for a host named "ftp"
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(api) && !/^https?:\/\//i.test(api)) throw bad();
  const withScheme = /^https?:\/\//i.test(api) ? api : `http://${api}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw bad();
  }
  const why = url.port ? fetchBlockedReason(Number(url.port)) : undefined;
  if (why) throw new UsageError(`--api: ${why}`);
  return url.origin;
}

/** The token from --token, EDGESWARM_TOKEN, or DATA/admin.token (DATA from --data, EDGESWARM_DATA, ./.edgeswarm). */
export function resolveToken(opts: ClientOptions, env = process.env): string | undefined {
  if (opts.token) return opts.token;
  if (env.EDGESWARM_TOKEN) return env.EDGESWARM_TOKEN;
  const data = opts.data ?? env.EDGESWARM_DATA ?? './.edgeswarm';
  try {
    return readFileSync(join(data, 'admin.token'), 'utf8').trim();
  } catch {
    return undefined;
  }
}

export class ApiClient {
  readonly base: string;
  readonly token: string | undefined;

  constructor(opts: ClientOptions, env = process.env) {
    this.base = normalizeApi(opts.api ?? env.EDGESWARM_API ?? DEFAULT_API);
    this.token = resolveToken(opts, env);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    return h;
  }

  /** Sends a request; returns the response if 2xx, else throws ApiError with the agent's message. */
  async raw(
    method: string,
    path: string,
    init: {
      body?: BodyInit;
      headers?: Record<string, string>;
      signal?: AbortSignal;
      duplex?: 'half';
    } = {},
  ): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(this.base + path, {
        method,
        body: init.body,
        headers: this.headers(init.headers),
        signal: init.signal,
        ...(init.duplex ? { duplex: init.duplex } : {}),
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why =
        cause?.code === 'ECONNREFUSED'
          ? 'connection refused (is the agent running? see --api)'
          : (cause?.message ?? (err as Error).message);
      throw new ApiError(0, 'unreachable', `cannot reach the agent at ${this.base}: ${why}`);
    }
    if (res.ok) return res;
    let code = 'http_error';
    let message = `${res.status} ${res.statusText}`;
    try {
      const body = (await res.json()) as { error?: { code?: string; message?: string } };
      if (body.error?.message) {
        code = body.error.code ?? code;
        message = body.error.message;
      }
    } catch {
      // not a JSON error body
    }
    if (res.status === 401 && !this.token)
      message += ' (no token found: pass --token, set EDGESWARM_TOKEN or --data DIR)';
    throw new ApiError(res.status, code, message);
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.raw(method, path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}
