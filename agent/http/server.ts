// The HTTP API server: bearer-token auth (checked before routing), JSON errors, request metrics.
// Routes come from the capabilities (see routes/). Nothing a client sends can produce a stack
// trace or a 500 other than a real internal fault, which is logged and answered with a generic
// message.
import { timingSafeEqual } from 'node:crypto';
import {
  createServer,
  STATUS_CODES,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import {
  ChunkStoreFailedError,
  isOutOfSpace,
  StoreClosedError,
  StoreFailedError,
} from '../../storage/index.js';
import { EdgeswarmError, HttpError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AgentMetrics } from '../metrics.js';
import { formatPath, issueMessage } from '../zod-issue.js';
import { unknownParam, type RequestContext, type Reply, type Router } from './router.js';

/** Largest JSON request body accepted (bytes). Image and KV bodies have their own limits. */
export const MAX_JSON_BODY = 1024 * 1024;

export interface HttpServerOptions {
  host: string;
  port: number;
  router: Router;
  token: string;
  logger: Logger;
  metrics: AgentMetrics;
  /** Default BODY_IDLE_TIMEOUT_MS. */
  bodyIdleTimeoutMs?: number;
  /** Default HEADERS_TIMEOUT_MS (tests shorten it). */
  headersTimeoutMs?: number;
}

/** A request body that stops arriving for this long is answered 408 (ms). */
export const BODY_IDLE_TIMEOUT_MS = 60_000;
/**
 * The request line and headers must have arrived this long after the request began, or the
 * connection is answered 408 and closed (ms; default 60 s). Node ties its headersTimeout to
 * requestTimeout, which is 0 here (bodies may take hours), so it must be set by itself: with 0 a
 * client sending half a header line held its connection for ever. Node checks every
 * min(5 s, a quarter of it), so a stalled client goes within 60-65 s.
 */
export const HEADERS_TIMEOUT_MS = 60_000;
/**
 * Connections the API accepts at once (default 512); beyond it Node closes new ones at once. Each
 * `watch` stream holds one; the bound keeps a local flood of idle connections from taking every
 * file descriptor the agent needs for peers and chunk files.
 */
export const HTTP_MAX_CONNECTIONS = 512;

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string | number> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: { code, message } });
}

/** HTTP parser errors Node reports before any handler runs, as the API's own JSON errors. */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  HPE_INVALID_METHOD: [400, 'bad_method', 'unknown HTTP method'],
  HPE_HEADER_OVERFLOW: [431, 'headers_too_large', 'the request line and headers exceed 16 KiB'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'request_timeout', 'the request was not received in time'],
};

/**
 * Answers a request Node's HTTP parser refused (an unknown method, a 100 KB URL, garbage) with a
 * JSON error naming the problem, where Node would send a bare 400 or 431, and closes the
 * connection. Returns the status sent, if any.
 */
function answerClientError(err: Error & { code?: string }, socket: Duplex): number | undefined {
  // the client went away, also in the middle of a request: a body it stopped sending once it had
  // our answer (fetch does, after an early 400 to a streamed upload) is not a malformed request
  if (err.code === 'ECONNRESET' || err.code === 'HPE_INVALID_EOF_STATE' || !socket.writable) {
    socket.destroy();
    return undefined;
  }
  const [status, code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [
    400,
    'bad_request',
    `malformed HTTP request (${err.code ?? err.message})`,
  ];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
  return status;
}

/** The first zod issue as "field: problem". */
export function describeZodError(err: z.ZodError): string {
  const issue = err.issues[0];
  if (issue.code === 'unrecognized_keys') {
    const key = formatPath([...issue.path, (issue as { keys: string[] }).keys[0]]);
    return `${key}: unknown field`;
  }
  const where = formatPath(issue.path);
  const message = issueMessage(issue);
  return where ? `${where}: ${message}` : message;
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (Number.isFinite(declared) && declared > limit) {
    throw new HttpError(
      413,
      'body_too_large',
      `request body is ${declared} bytes; the limit is ${limit}`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit)
      throw new HttpError(
        413,
        'body_too_large',
        `request body is over the limit of ${limit} bytes`,
      );
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  const a = Buffer.from(m[1]);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

export class HttpApiServer {
  readonly #opts: HttpServerOptions;
  #server: Server | undefined;

  constructor(opts: HttpServerOptions) {
    this.#opts = opts;
  }

  /** The bound address (after start). */
  get address(): { host: string; port: number } | undefined {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    return a ? { host: a.address, port: a.port } : undefined;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    // no limit on a whole request (see #watchBody); headers must still come within 60 s
    const headersTimeout = this.#opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS;
    const server = createServer(
      {
        requestTimeout: 0,
        headersTimeout,
        connectionsCheckingInterval: Math.min(5_000, Math.ceil(headersTimeout / 4)),
      },
      (req, res) => void this.#handle(req, res),
    );
    server.keepAliveTimeout = 65_000;
    server.maxConnections = HTTP_MAX_CONNECTIONS;
    server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      const status = answerClientError(err, socket);
      if (status !== undefined)
        this.#opts.metrics.httpRequests.inc({ route: 'unparsed', code: String(status) });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#opts.port, this.#opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /**
   * A request body that stops arriving for bodyIdleTimeoutMs is answered 408 and its connection
   * closed. There is no limit on a whole request's time (an image push may take hours at a slow
   * link); Node's default of 300 s cut every longer upload with a 408.
   */
  #watchBody(req: IncomingMessage, res: ServerResponse): void {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;
    if (!hasBody || req.complete) return;
    const ms = this.#opts.bodyIdleTimeoutMs ?? BODY_IDLE_TIMEOUT_MS;
    const socket = req.socket;
    const onIdle = () => {
      if (req.complete) return;
      if (!res.headersSent) {
        res.setHeader('connection', 'close');
        sendError(res, 408, 'request_timeout', `no request body bytes arrived for ${ms} ms`);
        res.once('finish', () => socket.destroy());
      } else socket.destroy();
    };
    // on the request, not the socket: Node's own socket listener destroys the socket at once
    // unless the request takes the timeout
    req.setTimeout(ms, onIdle);
    // the body is in: back to no timeout (Node sets its keep-alive one after the answer); an answer
    // that ends first leaves the timer, and Node then closes the socket whose body stalled
    req.once('end', () => {
      socket.setTimeout(0);
      req.off('timeout', onIdle);
    });
    res.once('close', () => req.off('timeout', onIdle));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { router, token, logger, metrics } = this.#opts;
    const started = process.hrtime.bigint();
    let routeLabel = 'unmatched';
    const controller = new AbortController();
    // counted once, when the answer is complete or the connection closes first (a watch stream
    // ends by its client going away: it never finishes)
    let counted = false;
    const count = () => {
      if (counted) return;
      counted = true;
      metrics.httpRequests.inc({ route: routeLabel, code: String(res.statusCode) });
      metrics.httpDuration.observe(
        { route: routeLabel },
        Number(process.hrtime.bigint() - started) / 1e9,
      );
    };
    res.on('finish', count);
    res.on('close', () => {
      count();
      controller.abort();
    });
    this.#watchBody(req, res);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://agent');
    } catch {
      sendError(res, 400, 'bad_url', 'the request URL is malformed');
      return;
    }
    // Route on the path as sent: URL parsing resolves `.` and `..` segments (even `%2E%2E`), which
    // turned `PUT /v1/kv/a/%2E%2E/b` into a write of key `b`. An absolute-form target
    // (`GET http://host/path`) has no raw path to keep, so it takes the parsed one.
    const rawPath = req.url?.startsWith('/') ? req.url.split(/[?#]/, 1)[0] : url.pathname;
    const match = router.match(req.method ?? 'GET', rawPath);
    // the token before anything that tells routes apart: without it every path but the open
    // routes (/v1/health, /metrics) is a 401, so 404/405/400 cannot be used to list routes
    const open = match !== undefined && 'route' in match && match.route.auth === false;
    if (!open && !tokenMatches(req.headers.authorization, token)) {
      if (match && 'route' in match) routeLabel = `${match.route.method} ${match.route.path}`;
      res.setHeader('www-authenticate', 'Bearer');
      sendError(res, 401, 'unauthorized', 'missing or wrong bearer token (see DATA/admin.token)');
      return;
    }
    if (!match) {
      sendError(res, 404, 'not_found', `no route ${req.method} ${rawPath}`);
      return;
    }
    if ('badEncoding' in match) {
      sendError(
        res,
        400,
        'bad_path',
        `${rawPath}: not valid percent-encoded UTF-8 (encode every byte outside A-Z a-z 0-9 -._~ as %XX)`,
      );
      return;
    }
    if ('allowed' in match) {
      res.setHeader('allow', match.allowed.join(', '));
      sendError(
        res,
        405,
        'method_not_allowed',
        `${req.method} is not allowed on ${rawPath}; use ${match.allowed.join(' or ')}`,
      );
      return;
    }
    routeLabel = `${match.route.method} ${match.route.path}`;
    // a compressed body was read as it came: gzip bytes in a "bad_json" message, or stored as is
    const encoding = req.headers['content-encoding'];
    if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
      sendError(
        res,
        415,
        'unsupported_encoding',
        `content-encoding ${JSON.stringify(encoding)} is not supported; send the body uncompressed`,
      );
      return;
    }
    const unknown = unknownParam(match.route, url.searchParams);
    if (unknown !== undefined) {
      const q = match.route.query;
      const takes = Array.isArray(q) && q.length > 0 ? `; it takes ${q.join(', ')}` : '';
      sendError(
        res,
        400,
        'invalid_query',
        `unknown query parameter ${JSON.stringify(unknown)} for ${req.method} ${rawPath}${takes}`,
      );
      return;
    }
    const ctx: RequestContext = {
      req,
      res,
      params: match.params,
      query: url.searchParams,
      signal: controller.signal,
      log: logger,
      body: (limit) => readBody(req, limit),
      json: async (schema, limit = MAX_JSON_BODY) => {
        const raw = await readBody(req, limit);
        let value: unknown;
        try {
          value = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
        } catch (err) {
          throw new HttpError(
            400,
            'bad_json',
            `request body is not valid JSON: ${(err as Error).message}`,
          );
        }
        if (value === undefined)
          throw new HttpError(400, 'bad_json', 'request body is empty; expected a JSON object');
        const parsed = schema.safeParse(value);
        if (!parsed.success)
          throw new HttpError(400, 'invalid_body', describeZodError(parsed.error));
        return parsed.data;
      },
    };
    try {
      const reply = await match.route.handler(ctx);
      if (reply) await this.#reply(res, reply);
    } catch (err) {
      this.#fail(res, err, routeLabel);
    }
  }

  async #reply(res: ServerResponse, reply: Reply): Promise<void> {
    const status = reply.status ?? 200;
    if (reply.json !== undefined) {
      sendJson(res, status, reply.json, reply.headers);
      return;
    }
    const body = reply.body;
    if (body === undefined) {
      res.writeHead(status, { ...reply.headers, 'content-length': 0 });
      res.end();
    } else if (typeof body === 'string' || body instanceof Uint8Array) {
      const buf = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(status, {
        'content-type': 'application/octet-stream',
        ...reply.headers,
        'content-length': buf.length,
      });
      res.end(buf);
    } else {
      res.writeHead(status, { 'content-type': 'application/octet-stream', ...reply.headers });
      await pipeline(body as Readable, res);
    }
  }

  #fail(res: ServerResponse, err: unknown, route: string): void {
    if (res.destroyed || res.writableEnded) {
      // the client went away (or the answer was already sent): nothing to tell anyone
      this.#opts.logger.debug({ err: (err as Error).message, route }, 'request ended early');
      return;
    }
    if (err instanceof HttpError) {
      sendError(res, err.status, err.code, err.message);
    } else if (err instanceof z.ZodError) {
      sendError(res, 400, 'invalid_request', describeZodError(err));
    } else if (err instanceof EdgeswarmError && 'status' in err && typeof err.status === 'number') {
      sendError(res, err.status, err.code, err.message);
    } else if (err instanceof ChunkStoreFailedError) {
      // sticky until the store is reopened (storage/chunks/committer.ts says why), which the
      // image service does by itself
      this.#opts.logger.error({ err: err.message, route }, 'chunk store failed');
      const full = isOutOfSpace(err) ? ' (the disk was full)' : '';
      sendError(
        res,
        503,
        'chunk_store_failed',
        `the image store is read-only after a failed write${full}; the agent is reopening it, retry in a few seconds`,
      );
    } else if (err instanceof StoreClosedError) {
      // a store being reopened (above), or the agent stopping
      sendError(
        res,
        503,
        'store_unavailable',
        'the store is closed for a moment (being reopened, or the agent is stopping); retry',
      );
    } else if (isOutOfSpace(err)) {
      // the operator's problem to fix, not a bug: say so
      this.#opts.logger.error({ err: (err as Error).message, route }, 'out of disk space');
      sendError(
        res,
        507,
        'insufficient_storage',
        'no space left on the device holding the data directory; free some and retry',
      );
    } else if (err instanceof StoreFailedError) {
      // refused after a failed write other than a full disk (that is the 507 above), until the
      // store has reopened itself
      sendError(
        res,
        503,
        'store_failed',
        'the store is read-only after a failed write; the agent is reopening it, retry in a few seconds',
      );
    } else {
      this.#opts.logger.error({ err, route }, 'internal error handling request');
      sendError(res, 500, 'internal', 'internal error; see the agent log');
    }
  }
}
