// The http and tcp health checks (membership/catalog/checks.ts) against real sockets on loopback:
// what passes, and that every failure says what happened in a word an operator can act on.
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HTTP_CHECK_MAX_REDIRECTS,
  runHttpCheck,
  runTcpCheck,
} from '../../../membership/catalog/checks.js';

const port = (s: Server | NetServer) => (s.address() as AddressInfo).port;
const listen = <S extends Server | NetServer>(s: S, p = 0) =>
  new Promise<S>((r) => s.listen(p, '127.0.0.1', () => r(s)));

describe('health checks', () => {
  let web: Server;
  let garbage: NetServer;
  let silent: NetServer;
  let closedPort: number;
  beforeAll(async () => {
    web = await listen(
      createHttpServer((req, res) => {
        const hops = /^\/hop\/(\d+)$/.exec(req.url ?? '');
        if (hops && Number(hops[1]) > 0) {
          res.writeHead(302, { location: `/hop/${Number(hops[1]) - 1}` }).end();
          return;
        }
        res.writeHead(req.url === '/down' ? 503 : 200).end('ok');
      }),
    );
    garbage = await listen(createServer((c) => c.end('garbage\r\n\r\n')));
    silent = await listen(createServer(() => undefined));
    const probe = await listen(createServer());
    closedPort = port(probe);
    await new Promise((r) => probe.close(r));
  });
  afterAll(() => {
    web.closeAllConnections();
    web.close();
    garbage.close();
    silent.close();
  });

  it('http: 2xx passes and anything else fails with the status', async () => {
    const base = `http://127.0.0.1:${port(web)}`;
    expect(await runHttpCheck(`${base}/health`, 2000)).toEqual(['passing', 'HTTP 200']);
    expect(await runHttpCheck(`${base}/down`, 2000)).toEqual(['failing', 'HTTP 503']);
  });

  it('http: follows redirects, up to a limit', async () => {
    const base = `http://127.0.0.1:${port(web)}`;
    const max = HTTP_CHECK_MAX_REDIRECTS;
    expect(await runHttpCheck(`${base}/hop/${max}`, 2000)).toEqual(['passing', 'HTTP 200']);
    expect(await runHttpCheck(`${base}/hop/${max + 1}`, 2000)).toEqual(['failing', 'HTTP 302']);
  });

  it('http: a failure names its cause (fetch said only "fetch failed")', async () => {
    expect(await runHttpCheck(`http://127.0.0.1:${closedPort}/`, 2000)).toEqual([
      'failing',
      'ECONNREFUSED',
    ]);
    expect(await runHttpCheck(`http://127.0.0.1:${port(garbage)}/`, 2000)).toEqual([
      'failing',
      'not an HTTP answer (HPE_INVALID_CONSTANT)',
    ]);
    expect(await runHttpCheck(`http://127.0.0.1:${port(silent)}/`, 300)).toEqual([
      'failing',
      'no answer within 300ms',
    ]);
  });

  it('http: checks a service on a port fetch refuses to reach (6000, X11)', async (ctx) => {
    const x11 = createHttpServer((_req, res) => res.end('ok'));
    const ok = await new Promise<boolean>((r) => {
      x11.once('error', () => r(false));
      x11.listen(6000, '127.0.0.1', () => r(true));
    });
    if (!ok) return ctx.skip('port 6000 is in use here');
    try {
      expect(await runHttpCheck('http://127.0.0.1:6000/', 2000)).toEqual(['passing', 'HTTP 200']);
    } finally {
      x11.close();
    }
  });

  it('tcp: a listener passes, a closed port fails naming the cause', async () => {
    expect(await runTcpCheck(`127.0.0.1:${port(silent)}`, 2000)).toEqual(['passing', 'connected']);
    expect(await runTcpCheck(`127.0.0.1:${closedPort}`, 2000)).toEqual(['failing', 'ECONNREFUSED']);
  });
});
