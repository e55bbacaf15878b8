// How the HTTP server answers errors a route did not map itself: a full disk is the operator's to
// fix (507, naming it), a chunk store made read-only by a failed write says it is being reopened
// (503), as does a store closed for that moment (503),
// anything else is a 500 that points at the log.
import { connect } from 'node:net';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpApiServer } from '../../../agent/http/server.js';
import { Router } from '../../../agent/http/router.js';
import { silentLogger } from '../../../agent/logger.js';
import { AgentMetrics } from '../../../agent/metrics.js';
import {
  ChunkStoreFailedError,
  StoreClosedError,
  StoreFailedError,
} from '../../../storage/index.js';

const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), {
  code: 'ENOSPC',
});
// what classic-level throws: only its message says what happened
const levelFull = Object.assign(
  new Error('IO error: /data/db/000003.log: No space left on device'),
  { code: 'LEVEL_IO_ERROR' },
);
const THROWS: Record<string, unknown> = {
  enospc,
  level: levelFull,
  store: new ChunkStoreFailedError(levelFull),
  'store-later': new ChunkStoreFailedError('an earlier commit failed'),
  closed: new StoreClosedError(),
  'db-full': new StoreFailedError(levelFull),
  'db-io': new StoreFailedError(new Error('IO error: /data/db/000003.log: Input/output error')),
  bug: new TypeError('x is undefined'),
};

describe('HTTP server: errors no route mapped', () => {
  let server: HttpApiServer;
  let base: string;
  let metrics: AgentMetrics;
  beforeAll(async () => {
    const router = new Router();
    for (const [name, err] of Object.entries(THROWS))
      router.add({
        method: 'GET',
        path: `/t/${name}`,
        auth: false,
        handler: () => {
          throw err;
        },
      });
    // a route that takes one query parameter, and one that takes any
    router.add(
      {
        method: 'GET',
        path: '/t/q/one',
        auth: false,
        query: ['prefix'],
        handler: () => ({ json: {} }),
      },
      { method: 'GET', path: '/t/q/any', auth: false, query: 'any', handler: () => ({ json: {} }) },
    );
    // a route that reads its whole body, and one that streams until its client goes away
    router.add(
      {
        method: 'PUT',
        path: '/t/body/:name',
        auth: false,
        handler: async (ctx) => ({ json: { bytes: (await ctx.body(1 << 20)).length } }),
      },
      {
        method: 'GET',
        path: '/t/stream',
        auth: false,
        handler: (ctx) => {
          ctx.res.writeHead(200, { 'content-type': 'text/event-stream' });
          ctx.res.write(': open\n\n');
          return undefined;
        },
      },
    );
    // one that needs the token, as every route but /v1/health and /metrics does
    router.add({ method: 'GET', path: '/t/secret/:id', handler: () => ({ json: {} }) });
    metrics = new AgentMetrics();
    server = new HttpApiServer({
      host: '127.0.0.1',
      port: 0,
      router,
      token: 'not-used-here-0123456789',
      logger: silentLogger(),
      metrics,
      bodyIdleTimeoutMs: 400,
      headersTimeoutMs: 600,
    });
    await server.start();
    base = `http://127.0.0.1:${server.address!.port}`;
  });
  afterAll(async () => {
    await server.stop();
  });

  const auth = { authorization: 'Bearer not-used-here-0123456789' };

  async function get(name: string): Promise<[number, { code: string; message: string }]> {
    const res = await fetch(`${base}/t/${name}`);
    return [res.status, ((await res.json()) as { error: { code: string; message: string } }).error];
  }

  it('a full disk is a 507 that says so, whether Node or LevelDB reported it', async () => {
    for (const name of ['enospc', 'level']) {
      const [status, error] = await get(name);
      expect(status, name).toBe(507);
      expect(error.code).toBe('insufficient_storage');
      expect(error.message).toMatch(/no space left on the device holding the data directory/);
    }
  });

  it('a chunk store read-only after a failed write is a 503 that says it is being reopened', async () => {
    const [status, error] = await get('store');
    expect(status).toBe(503);
    expect(error).toEqual({
      code: 'chunk_store_failed',
      message:
        'the image store is read-only after a failed write (the disk was full); the agent is reopening it, retry in a few seconds',
    });
    const [later, laterError] = await get('store-later');
    expect(later).toBe(503);
    expect(laterError.message).not.toMatch(/disk was full/);
    // while it is closed for the reopen
    const [closed, closedError] = await get('closed');
    expect(closed).toBe(503);
    expect(closedError.code).toBe('store_unavailable');
  });

  it('a database refusing writes after a failed one: 507 while the disk is full, else 503', async () => {
    const [full, fullError] = await get('db-full');
    expect([full, fullError.code]).toEqual([507, 'insufficient_storage']);
    const [io, ioError] = await get('db-io');
    expect(io).toBe(503);
    expect(ioError).toEqual({
      code: 'store_failed',
      message:
        'the store is read-only after a failed write; the agent is reopening it, retry in a few seconds',
    });
  });

  it('a param that is not valid percent-encoded UTF-8 is a 400 bad_path, not a 404', async () => {
    for (const path of ['/t/body/%FF', '/t/body/%ED%A0%80', '/t/body/%ZZ']) {
      const res = await fetch(`${base}${path}`, { method: 'PUT', body: 'x', headers: auth });
      expect(res.status, path).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_path');
    }
  });

  it('a compressed body is a 415, not read as it came', async () => {
    const res = await fetch(`${base}/t/body/x`, {
      method: 'PUT',
      headers: { 'content-encoding': 'gzip' },
      body: new Uint8Array([0x1f, 0x8b, 8, 0]),
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'unsupported_encoding',
    );
    const plain = await fetch(`${base}/t/body/x`, {
      method: 'PUT',
      headers: { 'content-encoding': 'identity' },
      body: 'abc',
    });
    expect(await plain.json()).toEqual({ bytes: 3 });
  });

  it('a query parameter the route does not take is a 400 naming it and what the route takes', async () => {
    // `?prefx=` on a watch was ignored: the client watched everything
    const [typo, typoError] = await get('q/one?prefx=a');
    expect(typo).toBe(400);
    expect(typoError).toEqual({
      code: 'invalid_query',
      message: 'unknown query parameter "prefx" for GET /t/q/one; it takes prefix',
    });
    expect((await get('q/one?prefix=a'))[0]).toBe(200);
    // a route that declares none takes none
    const [none, noneError] = await get('bug?x=1');
    expect(none).toBe(400);
    expect(noneError.message).toBe('unknown query parameter "x" for GET /t/bug');
    expect((await get('q/any?whatever=1'))[0]).toBe(200);
    // the path as sent, not the route's pattern (it said "for PUT /v1/kv/*key")
    const res = await fetch(`${base}/t/body/a%20b?x=1`, { method: 'PUT', body: 'x' });
    expect(((await res.json()) as { error: { message: string } }).error.message).toBe(
      'unknown query parameter "x" for PUT /t/body/a%20b',
    );
  });

  it('a body that stops arriving is a 408 after the idle timeout; a slow steady one is not cut', async () => {
    // 3 of 5 bytes, then nothing
    const t0 = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(server.address!.port, '127.0.0.1', () =>
        sock.write('PUT /t/body/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nabc'),
      );
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString()));
      sock.on('close', () => resolve(got));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/"request_timeout"/);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    // 20 pieces 150 ms apart: three seconds in all, never idle for 400 ms
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        { port: server.address!.port, host: '127.0.0.1', method: 'PUT', path: '/t/body/b' },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      let k = 0;
      const iv = setInterval(() => {
        req.write('x'.repeat(100));
        if (++k === 20) {
          clearInterval(iv);
          req.end();
        }
      }, 150);
    });
    expect(status).toBe(200);
  });

  it('a stream its client leaves is counted in the request metric', async () => {
    const ctl = new AbortController();
    const res = await fetch(`${base}/t/stream`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    ctl.abort();
    await new Promise((r) => setTimeout(r, 200));
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/edgeswarm_http_requests_total\{route="GET \/t\/stream",code="200"\} 1/);
  });

  it('without the token every path but the open routes is a 401, whether it exists or not', async () => {
    // 404, 405 and 400 bad_path before the token check let anyone list the routes
    for (const [method, path] of [
      ['GET', '/t/secret/a'],
      ['DELETE', '/t/secret/a'],
      ['GET', '/t/secret/%FF'],
      ['GET', '/t/nowhere'],
      ['GET', '/v1/kv/x'],
      ['POST', '/'],
    ]) {
      const res = await fetch(`${base}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      const wrong = await fetch(`${base}${path}`, {
        method,
        headers: { authorization: 'Bearer not-it' },
      });
      expect(wrong.status, `${method} ${path} with a wrong token`).toBe(401);
    }
    // with it: what each one is
    const status = async (method: string, path: string) =>
      (await fetch(`${base}${path}`, { method, headers: auth })).status;
    expect(await status('GET', '/t/secret/a')).toBe(200);
    expect(await status('DELETE', '/t/secret/a')).toBe(405);
    expect(await status('GET', '/t/secret/%FF')).toBe(400);
    expect(await status('GET', '/t/nowhere')).toBe(404);
    // routes that take no token still answer without one
    expect((await fetch(`${base}/t/q/any`)).status).toBe(200);
  });

  it('headers that do not all arrive are a 408 and a closed connection after the headers timeout', async () => {
    // requestTimeout 0 (bodies may take hours) made Node's headersTimeout 0 too: a client that
    // sent half a header line held its connection for ever
    for (const partial of ['GET /t/q/any HTTP/1.1\r\nHost: x', 'GET /t/q/a', '']) {
      const t0 = Date.now();
      const answer = await new Promise<string>((resolve) => {
        const sock = connect(server.address!.port, '127.0.0.1', () => {
          if (partial) sock.write(partial);
        });
        let got = '';
        sock.on('data', (d: Buffer) => (got += d.toString()));
        sock.on('error', () => {});
        sock.on('close', () => resolve(got));
        setTimeout(() => sock.destroy(), 5000);
      });
      const took = Date.now() - t0;
      expect(took, JSON.stringify(partial)).toBeLessThan(2000);
      expect(took).toBeGreaterThanOrEqual(550);
      if (partial) expect(answer).toMatch(/^HTTP\/1\.1 408 [^]*"request_timeout"/);
    }
  });

  it('anything else is a 500 pointing at the log, with no detail leaked', async () => {
    const [status, error] = await get('bug');
    expect(status).toBe(500);
    expect(error).toEqual({ code: 'internal', message: 'internal error; see the agent log' });
  });
});
