// How the HTTP server answers errors a route did not map itself: a full disk is the operator's to
// fix (507, naming it), a chunk store made read-only by a failed write says it is being reopened
// (503), as does a store closed for that moment (503),
// anything else is a 500 that points at the log.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpApiServer } from '../../../agent/http/server.js';
import { Router } from '../../../agent/http/router.js';
import { silentLogger } from '../../../agent/logger.js';
import { AgentMetrics } from '../../../agent/metrics.js';
import { ChunkStoreFailedError, StoreClosedError } from '../../../storage/index.js';

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
  bug: new TypeError('x is undefined'),
};

describe('HTTP server: errors no route mapped', () => {
  let server: HttpApiServer;
  let base: string;
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
    server = new HttpApiServer({
      host: '127.0.0.1',
      port: 0,
      router,
      token: 'not-used-here-0123456789',
      logger: silentLogger(),
      metrics: new AgentMetrics(),
    });
    await server.start();
    base = `http://127.0.0.1:${server.address!.port}`;
  });
  afterAll(async () => {
    await server.stop();
  });

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

  it('anything else is a 500 pointing at the log, with no detail leaked', async () => {
    const [status, error] = await get('bug');
    expect(status).toBe(500);
    expect(error).toEqual({ code: 'internal', message: 'internal error; see the agent log' });
  });
});
