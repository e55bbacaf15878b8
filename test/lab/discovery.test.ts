// Service discovery in the lab: 6 agents in 3 sites. A service registered in site a is found from
// site c; `nearest` from site b puts the site-b instance first; a failing http check drops its
// instance within one interval; killing an agent drops its instances everywhere; a cut-off site
// keeps answering for its own services and, marked stale, for the last-known remote ones.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchSse } from '../../bench/harness/sse.js';
import type { AgentProcess } from '../helpers/agents.js';
import { waitFor } from '../helpers/wait.js';
import { Lab, labAvailability, type Host } from './lab.js';

const avail = labAvailability();
if (!avail.ok) console.log(`lab tests skipped: ${avail.reason}`);

type Instance = {
  id: string;
  site: string;
  node: string;
  health: string;
  stale: boolean;
  ageSeconds: number;
};

async function discover(a: AgentProcess, name: string, q = ''): Promise<Instance[]> {
  return (await a.http('GET', `/v1/discover/${name}${q}`)).json as Instance[];
}

/** A tiny HTTP server inside a host: GET /health answers 200 or 500; GET /fail and /pass flip it. */
function healthServer(h: Host, port: number): ChildProcess {
  const src = `let ok = true; require('http').createServer((q, s) => { if (q.url === '/fail') ok = false; if (q.url === '/pass') ok = true; s.statusCode = ok ? 200 : 500; s.end(); }).listen(${port}, '${h.ip}');`;
  return spawn('ip', ['netns', 'exec', h.ns, process.execPath, '-e', src], { stdio: 'ignore' });
}

describe.skipIf(!avail.ok)('lab: service discovery, 6 agents in 3 sites', () => {
  let lab: Lab;
  let hosts: Host[];
  const agents: AgentProcess[] = [];
  let server: ChildProcess | undefined;

  beforeAll(async () => {
    lab = new Lab();
    hosts = ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'].map((n) => lab.addHost(n));
    agents.push(...(await lab.startCluster(hosts, (h) => h.name[0])));
  });

  afterAll(async () => {
    server?.kill();
    await lab?.destroy();
  });

  it('registered in site a, found from site c; nearest from site b gives the site-b instance first', async () => {
    const [a1, , b1, b2, c1] = agents;
    expect((await a1.http('PUT', '/v1/services/web-a', { name: 'web', port: 8080 })).status).toBe(
      200,
    );
    await waitFor(async () => (await discover(c1, 'web')).length === 1, {
      timeout: 5000,
      message: 'web on c1',
    });
    expect((await discover(c1, 'web'))[0]).toMatchObject({
      id: 'web-a',
      site: 'a',
      node: 'a1',
      health: 'passing',
    });
    expect((await b2.http('PUT', '/v1/services/web-b', { name: 'web', port: 8080 })).status).toBe(
      200,
    );
    await waitFor(async () => (await discover(b1, 'web')).length === 2, { timeout: 5000 });
    expect((await discover(b1, 'web', '?strategy=nearest')).map((i) => i.site)).toEqual(['b', 'a']);
    expect((await discover(a1, 'web', '?strategy=nearest')).map((i) => i.site)).toEqual(['a', 'b']);
  });

  it('a failing http check drops its instance everywhere within one interval', async () => {
    const host = hosts[3];
    server = healthServer(host, 9090);
    const b2 = agents[3];
    await waitFor(async () => (await fetch(`http://${host.ip}:9090/health`)).status === 200, {
      timeout: 5000,
    });
    const r = await b2.http('PUT', '/v1/services/api-b', {
      name: 'api',
      port: 9090,
      check: { http: `http://${host.ip}:9090/health`, interval: '1s' },
    });
    expect((r.json as { health: string }).health).toBe('passing');
    await waitFor(
      async () =>
        (await Promise.all(agents.map((a) => discover(a, 'api')))).every((l) => l.length === 1),
      { timeout: 5000 },
    );
    // each agent's catalog changes with when it applied them (`at`, its wall clock: the host's)
    const applied: number[][] = agents.map(() => []);
    const watches = await Promise.all(
      agents.map((a, k) =>
        watchSse(`${a.api}/v1/catalog/watch?name=api`, a.token, (data) => {
          applied[k].push((JSON.parse(data) as { at: number }).at);
        }),
      ),
    );
    const t0 = Date.now();
    await fetch(`http://${host.ip}:9090/fail`);
    try {
      await waitFor(
        async () =>
          (await Promise.all(agents.map((a) => discover(a, 'api')))).every((l) => l.length === 0),
        { timeout: 10_000, interval: 50, message: 'api dropped everywhere' },
      );
      await waitFor(() => applied.every((ats) => ats.some((at) => at >= t0)), {
        timeout: 5000,
        message: 'the change on every watch',
      });
    } finally {
      for (const w of watches) w.close();
    }
    // Judged by when each agent applied the change, not by when a poll of six APIs came back (one
    // slow answer stretched that). The last change each saw is the drop, or later: an upper bound.
    const took = Math.max(...applied.map((ats) => ats.at(-1)! - t0));
    console.log(`lab: failing check dropped everywhere after ${took} ms (interval 1000 ms)`);
    expect(took).toBeLessThan(1000 + 500);
    expect((await discover(agents[0], 'api', '?all=true'))[0].health).toBe('failing');
    await fetch(`http://${host.ip}:9090/pass`);
    await waitFor(async () => (await discover(agents[0], 'api')).length === 1, { timeout: 5000 });
  });

  it('killing an agent drops its instances everywhere', async () => {
    const c2 = agents[5];
    await c2.http('PUT', '/v1/services/cache-c2', { name: 'cache', port: 6379 });
    await waitFor(
      async () =>
        (await Promise.all(agents.map((a) => discover(a, 'cache')))).every((l) => l.length === 1),
      { timeout: 5000 },
    );
    c2.kill('SIGKILL');
    await c2.exited;
    const rest = agents.filter((a) => a !== c2);
    await waitFor(
      async () =>
        (await Promise.all(rest.map((a) => discover(a, 'cache')))).every((l) => l.length === 0),
      {
        timeout: 10_000,
        interval: 100,
        message: 'cache dropped everywhere',
      },
    );
  });

  it('a cut-off site keeps answering for its own services and, as stale, for the last-known remote ones', async () => {
    const c1 = agents[4];
    await c1.http('PUT', '/v1/services/local-c', { name: 'local', port: 7000 });
    await waitFor(async () => (await discover(agents[0], 'local')).length === 1, { timeout: 5000 });
    // site c is c1 alone now (c2 was killed): cut it off from a and b
    lab.isolate([hosts[4], hosts[5]]);
    // c1 alone cannot get its suspicions confirmed, and every probe it sends fails, so Lifeguard
    // stretches its probe interval up to 9x: the four remote members take tens of seconds, not
    // seconds, to be declared dead from here (detection speed is the membership lab's business).
    const cut = Date.now();
    await waitFor(
      async () =>
        ((await c1.http('GET', '/v1/members')).json as Array<{ site: string; state: string }>)
          .filter((m) => m.site !== 'c')
          .every((m) => m.state === 'dead'),
      {
        timeout: 90_000,
        interval: 250,
        message: 'c1 to see the other sites dead',
      },
    );
    console.log(`lab: a lone cut-off agent saw the other sites dead after ${Date.now() - cut} ms`);
    expect((await discover(c1, 'local')).map((i) => [i.id, i.stale])).toEqual([['local-c', false]]);
    const web = await discover(c1, 'web');
    expect(web.map((i) => i.id).sort()).toEqual(['web-a', 'web-b']);
    expect(web.every((i) => i.stale)).toBe(true);
    const res = await c1.http('GET', '/v1/discover/web');
    expect(
      Number(
        (
          await fetch(`${c1.api}/v1/discover/web`, {
            headers: { authorization: `Bearer ${c1.token}` },
          })
        ).headers.get('x-edgeswarm-stale'),
      ),
    ).toBe(2);
    void res;
    // and the other side, which can still reach its own instances, answers fresh
    expect((await discover(agents[2], 'web')).every((i) => !i.stale)).toBe(true);
    lab.healAll();
  });
});
