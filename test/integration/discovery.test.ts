// Service discovery with real agents: registration, replication, health checks, DNS with dig.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import dnsPacket, { type DecodedPacket } from 'dns-packet';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import { RCODE } from '../../agent/dns/answer.js';
import { CATALOG_TOPIC, serviceKey } from '../../membership/catalog/replication.js';
import { CATALOG_PROTOCOL } from '../../membership/catalog/sync.js';
import { DIRECT_TOPIC_SUFFIX, type CatalogChange } from '../../membership/index.js';
import { countDials, useCluster } from '../helpers/agents.js';
import { waitFor } from '../helpers/wait.js';

const cluster = useCluster();

async function cluster3() {
  const c = cluster.current;
  const a = await c.startAgent({ name: 'a', site: 'paris' });
  const b = await c.startAgent({ name: 'b', site: 'paris', join: [a.addrs()[0]] });
  const d = await c.startAgent({ name: 'd', site: 'berlin', join: [a.addrs()[0]] });
  const all = [a, b, d];
  await waitFor(() => all.every((x) => x.membership.counts().alive === 3), {
    timeout: 5000,
    message: 'three alive everywhere',
  });
  return { a, b, d, all };
}

/** Agent a in paris and d in berlin, both with `catalog` settings, alive to each other. */
async function twoSites(catalog: { dhtAnnounce: boolean; syncInterval: string }) {
  const c = cluster.current;
  const a = await c.startAgent({ name: 'a', site: 'paris', catalog });
  const d = await c.startAgent({ name: 'd', site: 'berlin', join: [a.addrs()[0]], catalog });
  await waitFor(() => d.membership.counts().alive === 2, { timeout: 5000 });
  return { a, d };
}

const rcode = (p: DecodedPacket) => (p.flags ?? 0) & 0xf;

/** One DNS query over UDP to `agent`'s DNS interface, and how long the answer took (ms). */
async function dnsQuery(
  agent: Agent,
  name: string,
  type: 'A' | 'SRV',
): Promise<{ answer: DecodedPacket; ms: number }> {
  const { host, port } = agent.dnsAddress!;
  const sock = createSocket('udp4');
  try {
    const t0 = Date.now();
    const got = new Promise<Buffer>((resolve, reject) => {
      sock.once('message', resolve);
      setTimeout(() => reject(new Error(`no DNS answer for ${name} in 5 s`)), 5000).unref();
    });
    sock.send(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type, name }] }), port, host);
    const answer = dnsPacket.decode(await got);
    return { answer, ms: Date.now() - t0 };
  } finally {
    sock.close();
  }
}

const ids = (
  agent: Agent,
  name: string,
  q: Partial<Parameters<Agent['catalog']['discoverLocal']>[0]> = {},
) => agent.catalog.discoverLocal({ name, strategy: 'nearest', ...q }).map((i) => i.id);

function httpServer(status: { code: number }): Promise<Server> {
  const s = createServer((_req, res) => {
    res.statusCode = status.code;
    res.end('ok');
  });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

describe('service discovery', () => {
  it('a registration is visible on every agent; nearest puts the same site first', async () => {
    const { a, b, d, all } = await cluster3();
    await a.catalog.register('web-a', { name: 'web', port: 8080 });
    await d.catalog.register('web-d', { name: 'web', port: 8081 });
    await waitFor(() => all.every((x) => ids(x, 'web').length === 2), {
      timeout: 3000,
      message: 'both instances everywhere',
    });
    expect(ids(b, 'web')).toEqual(['web-a', 'web-d']);
    expect(ids(d, 'web')).toEqual(['web-d', 'web-a']);
    expect(ids(b, 'web', { site: 'berlin' })).toEqual(['web-d']);
    await a.catalog.deregister('web-a');
    await waitFor(() => all.every((x) => ids(x, 'web').length === 1), {
      timeout: 3000,
      message: 'deregistration everywhere',
    });
  });

  it("the config file's services: one it no longer lists is deregistered at the next start; API ones stay", async () => {
    const c = cluster.current;
    const data = c.dataDir('cfg');
    const a1 = await c.startAgent({
      name: 'a',
      data,
      extra: {
        services: [
          { id: 'api-1', name: 'api', port: 9000 },
          { name: 'cache', port: 6379 },
        ],
      },
    });
    await a1.catalog.register('by-hand', { name: 'manual', port: 7000 });
    const local = (x: typeof a1) => x.catalog.local().map((s) => [s.id, s.port, s.source]);
    expect(local(a1)).toEqual([
      ['api-1', 9000, 'config'],
      ['by-hand', 7000, undefined],
      ['cache', 6379, 'config'],
    ]);
    await a1.stop();
    const a2 = await c.startAgent({
      name: 'a',
      data,
      extra: { services: [{ id: 'api-1', name: 'api', port: 9001 }] },
    });
    expect(local(a2)).toEqual([
      ['api-1', 9001, 'config'],
      ['by-hand', 7000, undefined],
    ]);
  });

  it('a failing http check drops the instance within one interval and it comes back', async () => {
    const { a, d } = await cluster3();
    const status = { code: 200 };
    const srv = await httpServer(status);
    const port = (srv.address() as AddressInfo).port;
    try {
      await a.catalog.register('api-1', {
        name: 'api',
        port,
        check: { http: `http://127.0.0.1:${port}/health`, interval: 500 },
      });
      await waitFor(() => ids(d, 'api').length === 1, {
        timeout: 3000,
        message: 'api passing on d',
      });
      status.code = 500;
      const t0 = Date.now();
      await waitFor(() => ids(d, 'api').length === 0, {
        timeout: 3000,
        interval: 10,
        message: 'api dropped on d',
      });
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(
        d.catalog.discoverLocal({ name: 'api', strategy: 'nearest', all: true })[0].health,
      ).toBe('failing');
      status.code = 204;
      await waitFor(() => ids(d, 'api').length === 1, { timeout: 3000, message: 'api back on d' });
    } finally {
      srv.close();
    }
  });

  it('ttl checks fail until passed and expire', async () => {
    const { a } = await cluster3();
    await a.catalog.register('job', { name: 'job', port: 9000, check: { ttl: 300 } });
    expect(ids(a, 'job')).toEqual([]);
    a.catalog.ttl('job', 'passing');
    await waitFor(() => ids(a, 'job').length === 1, { timeout: 1000 });
    await waitFor(() => ids(a, 'job').length === 0, { timeout: 2000, message: 'ttl to expire' });
  });

  it("a dead agent's instances drop everywhere; a restarted agent answers from its stored catalog at once", async () => {
    const { a, b, d } = await cluster3();
    await b.catalog.register('cache', { name: 'cache', port: 6379 });
    await waitFor(() => ids(a, 'cache').length === 1 && ids(d, 'cache').length === 1, {
      timeout: 3000,
    });
    await b.stop({ leave: false });
    await waitFor(() => ids(a, 'cache').length === 0 && ids(d, 'cache').length === 0, {
      timeout: 8000,
      message: 'cache dropped',
    });
    // restart d from its data: before it hears from anyone its catalog already has the instance
    await d.catalog.register('own', { name: 'own', port: 1 });
    const dir = d.dataDir;
    await d.stop({ leave: false });
    const d2 = await cluster.current.startAgent({ name: 'd', site: 'berlin', data: dir });
    expect(ids(d2, 'own')).toEqual(['own']);
    expect(d2.catalog.state.instances('cache')).toHaveLength(1);
  });

  it('a name this agent has never seen is found through DHT provider records', async () => {
    const { a, d } = await cluster3();
    await a.catalog.register('rare-1', { name: 'rare', port: 7001 });
    await waitFor(() => ids(d, 'rare').length === 1, { timeout: 3000 });
    // make d forget a's catalog, as if it had never seen it (a large cluster that does not hold
    // every catalog): the next query asks the DHT who provides "rare" and fetches that catalog
    await d.catalog.forget(a.peerId);
    expect(d.catalog.knows('rare')).toBe(false);
    const found = await waitFor(
      async () => {
        const r = await d.catalog.discover({ name: 'rare', strategy: 'nearest' });
        return r.length === 1 ? r : undefined;
      },
      { timeout: 15_000, interval: 500, message: 'rare through the DHT' },
    );
    expect(found[0]).toMatchObject({ id: 'rare-1', node: 'a' });
  });

  it("announces a name on the DHT's closest members without a walk, the same members a walk finds", async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 'paris' });
    const others: Agent[] = [];
    for (const name of ['b', 'd', 'e', 'f', 'g'])
      others.push(await c.startAgent({ name, site: 'berlin', join: [a.addrs()[0]] }));
    const all = [a, ...others];
    await waitFor(() => all.every((x) => x.membership.counts().alive === 6), {
      timeout: 10_000,
      message: 'six alive everywhere',
    });
    // three names: with 5 candidates for 4 places, a wrong metric picks the right set 1 time in 5
    const names = ['spread', 'wide', 'far'];
    for (const [i, name] of names.entries())
      await a.catalog.register(`${name}-1`, { name, port: 7004 + i });
    await waitFor(() => a.catalog.announced.direct === 3, { timeout: 5000, message: 'announced' });
    expect(a.catalog.announced.walk).toBe(0);
    // who holds a record: kad-dht's provider store (a member of its KadDHT class, not of the
    // interface), read on each agent; a record is stored when the message has been read there
    type Key = Awaited<ReturnType<typeof serviceKey>>;
    type Providers = { getProviders(k: Key): Promise<Array<{ toString(): string }>> };
    for (const name of names) {
      const key = await serviceKey(name);
      const holders = await waitFor(
        async () => {
          const h: string[] = [];
          for (const x of others) {
            const store = (x.node.services.dht as unknown as { providers: Providers }).providers;
            if ((await store.getProviders(key)).some((p) => p.toString() === a.peerId))
              h.push(x.peerId);
          }
          return h.length === 4 ? h : undefined;
        },
        { timeout: 5000, message: `the record of ${name} on 4 members` },
      );
      // the members a DHT walk from a ends at
      const walked: string[] = [];
      for await (const ev of a.node.services.dht.getClosestPeers(key.multihash.bytes))
        if (ev.name === 'FINAL_PEER') walked.push(ev.peer.id.toString());
      expect(holders.sort(), name).toEqual(walked.sort());
    }
    // and a member that forgot a's catalog finds it through them
    const g = others[others.length - 1];
    await g.catalog.forget(a.peerId);
    const found = await g.catalog.discover({ name: 'spread', strategy: 'nearest' });
    expect(found.map((x) => x.id)).toEqual(['spread-1']);
  });

  it('a DNS query for a name this agent has never seen is answered through the DHT', async () => {
    const { a, d } = await cluster3();
    await a.catalog.register('rare-dns', { name: 'raredns', port: 7003, address: '10.9.8.7' });
    await waitFor(() => ids(d, 'raredns').length === 1, { timeout: 3000 });
    await d.catalog.forget(a.peerId);
    expect(d.catalog.knows('raredns')).toBe(false);
    // the provider record may still be on its way: ask again until it is there
    const { answer } = await waitFor(
      async () => {
        const r = await dnsQuery(d, 'raredns.service.edgeswarm', 'A');
        return rcode(r.answer) === RCODE.NOERROR ? r : undefined;
      },
      { timeout: 20_000, interval: 500, message: 'raredns through the DHT over DNS' },
    );
    expect(answer.answers?.map((x) => (x as { data: unknown }).data)).toEqual(['10.9.8.7']);
    // a name nobody provides: NXDOMAIN after a bounded lookup, then at once while the miss is
    // remembered
    const first = await dnsQuery(d, 'nobody.service.edgeswarm', 'A');
    expect(rcode(first.answer)).toBe(RCODE.NXDOMAIN);
    expect(first.ms).toBeLessThan(2500);
    const again = await dnsQuery(d, 'nobody.service.edgeswarm', 'A');
    expect(rcode(again.answer)).toBe(RCODE.NXDOMAIN);
    expect(again.ms).toBeLessThan(500);
  });

  it("a catalog fetched through the DHT reaches watchers as via 'lookup'", async () => {
    // anti-entropy off the test's timescale: once d forgets a's catalog, only a lookup brings it back
    const { a, d } = await twoSites({ dhtAnnounce: true, syncInterval: '10m' });
    await a.catalog.register('found-1', { name: 'found', port: 7004 });
    await waitFor(() => ids(d, 'found').length === 1, { timeout: 3000, message: 'by gossip' });
    await d.catalog.forget(a.peerId);
    const via: string[] = [];
    d.catalog.addEventListener('change', (e) => {
      const c = (e as CustomEvent<CatalogChange>).detail;
      if (c.names.includes('found')) via.push(c.via);
    });
    const found = await waitFor(
      async () => {
        const r = await d.catalog.discover({ name: 'found', strategy: 'nearest' });
        return r.length === 1 ? r : undefined;
      },
      { timeout: 15_000, interval: 500, message: 'found through the DHT' },
    );
    expect(found[0]).toMatchObject({ id: 'found-1', node: 'a' });
    expect(via).toEqual(['lookup']);
  });

  it('with catalog.dhtAnnounce off, names are not announced in the DHT; gossip still carries them', async () => {
    // anti-entropy off the test's timescale, so that only the DHT could bring the name back
    const { a, d } = await twoSites({ dhtAnnounce: false, syncInterval: '10m' });
    await a.catalog.register('quiet-1', { name: 'quiet', port: 7002 });
    await waitFor(() => ids(d, 'quiet').length === 1, { timeout: 3000, message: 'by gossip' });
    await d.catalog.forget(a.peerId);
    // the lookup asks the DHT (2 s at most) and finds no provider
    expect(await d.catalog.discover({ name: 'quiet', strategy: 'nearest' })).toEqual([]);
  });

  it('anti-entropy rounds send a digest and open an exchange only when catalogs differ', async () => {
    const { a, d } = await twoSites({ dhtAnnounce: false, syncInterval: '200ms' });
    // each agent's own (empty) catalog may miss the gossip while the mesh forms: wait for the rounds
    // to even that out
    await waitFor(() => a.catalog.state.digestHash() === d.catalog.state.digestHash(), {
      timeout: 5000,
      message: 'the same catalogs on both',
    });
    // a digest sent just before they became equal may still be on its way, and open an exchange
    await new Promise((r) => setTimeout(r, 500));
    // the exchanges (streams of the catalog protocol) each agent opens from here on
    const exchanges = countDials([a, d], CATALOG_PROTOCOL);
    // ~10 rounds each with the same catalogs: digests only
    await new Promise((r) => setTimeout(r, 2000));
    expect(exchanges).toEqual([0, 0]);
    // d stops listening to the gossip (both topics of the channel): a's registration reaches it
    // only by anti-entropy
    d.node.services.pubsub.unsubscribe(CATALOG_TOPIC);
    d.node.services.pubsub.unsubscribe(CATALOG_TOPIC + DIRECT_TOPIC_SUFFIX);
    await new Promise((r) => setTimeout(r, 200));
    const via: string[] = [];
    d.catalog.addEventListener('change', (e) => {
      const c = (e as CustomEvent<CatalogChange>).detail;
      if (c.names.includes('missed')) via.push(c.via);
    });
    await a.catalog.register('missed-1', { name: 'missed', port: 7003 });
    await waitFor(() => ids(d, 'missed').length === 1, {
      timeout: 5000,
      message: 'the registration that missed the gossip to reach d by anti-entropy',
    });
    expect(exchanges[0] + exchanges[1]).toBeGreaterThan(0);
    // d's watchers are told how the change came: repaired by a round, not gossiped
    expect(via).toEqual(['sync']);
  });

  it('catalog watches stream changes as server-sent events', async () => {
    const p = await cluster.current.spawnAgent({ name: 'w' });
    const t0 = Date.now();
    const events: string[] = [];
    const ac = new AbortController();
    const res = await fetch(`${p.api}/v1/catalog/watch?name=web`, {
      headers: { authorization: `Bearer ${p.token}` },
      signal: ac.signal,
    });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reading = (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
          for (const l of dec.decode(chunk).split('\n'))
            if (l.startsWith('data: ')) events.push(l.slice(6));
      } catch {
        // aborted
      }
    })();
    await p.http('PUT', '/v1/services/other', { name: 'other', port: 1 });
    await p.http('PUT', '/v1/services/web-1', { name: 'web', port: 80 });
    await p.http('DELETE', '/v1/services/web-1');
    await waitFor(() => events.length >= 2, { timeout: 3000 });
    ac.abort();
    await reading;
    const changes = events.map((e) => JSON.parse(e) as CatalogChange);
    expect(changes.map((c) => c.names)).toEqual([['web'], ['web']]);
    expect(changes.map((c) => c.via)).toEqual(['local', 'local']);
    // each change says when the agent applied it
    expect(changes[0].at).toBeGreaterThanOrEqual(t0);
    expect(changes[1].at).toBeGreaterThanOrEqual(changes[0].at);
    expect(changes[1].at).toBeLessThanOrEqual(Date.now());
    // a name no service can have, or a misspelt parameter, is a 400, not a watch that never fires
    // or one of everything
    expect((await p.http('GET', '/v1/catalog/watch?name=Web')).status).toBe(400);
    expect((await p.http('GET', '/v1/catalog/watch?nmae=web')).status).toBe(400);
    expect((await p.http('GET', '/v1/watch?prefx=app/')).status).toBe(400);
  });

  it('the HTTP API validates registrations and discovery queries, naming the field', async () => {
    const p = await cluster.current.spawnAgent({ name: 'v' });
    const bad = async (body: unknown, re: RegExp, id = 'svc') => {
      const r = await p.http('PUT', `/v1/services/${id}`, body);
      expect(r.status).toBe(400);
      expect((r.json as { error: { message: string } }).error.message).toMatch(re);
    };
    await bad({ port: 80 }, /^name: required \(string\)$/);
    await bad({ name: 'Web', port: 80 }, /^name: must be a lower-case DNS label/);
    await bad({ name: 'web', port: 70000 }, /^port: must be 1-65535/);
    // the key's own rule, not zod's "Invalid key in record"
    await bad({ name: 'web', port: 80, meta: { é: 'x' } }, /^meta\.é: meta keys are 1-63 of /);
    // a key zod's record dropped without a word (200 with meta {})
    await bad(
      '{"name":"web","port":80,"meta":{"__proto__":"x"}}',
      /^meta\.__proto__: not allowed as a meta key$/,
    );
    await bad(
      { name: 'web', port: 80, address: 'nowhere' },
      /^address: expected an IPv4 or IPv6 address/,
    );
    await bad(
      { name: 'web', port: 80, check: { http: 'ftp://x' } },
      /^check\.http: expected an http/,
    );
    await bad(
      { name: 'web', port: 80, check: { http: 'http://x', tcp: 'x:1' } },
      /^check: give exactly one of http, tcp or ttl/,
    );
    await bad(
      { name: 'web', port: 80, check: { ttl: 'soon' } },
      /^check\.ttl: expected a duration/,
    );
    // Node's timers cannot hold more than ~24.8 days and fire after 1 ms instead: bounded at 24h
    await bad(
      { name: 'web', port: 80, check: { tcp: '127.0.0.1:1', interval: '1000h' } },
      /^check\.interval: must be at most 24h/,
    );
    await bad({ name: 'web', port: 80, check: { ttl: 1e300 } }, /^check\.ttl: must be at most 24h/);
    await bad(
      { name: 'web', port: 80, check: { http: 'http://x', timeout: '25h' } },
      /^check\.timeout: must be at most 24h/,
    );
    await bad(
      { name: 'web', port: 80, check: { ttl: '30s', interval: '10s' } },
      /^check\.interval: not used by a ttl check/,
    );
    await bad({ name: 'web', port: 80, colour: 'red' }, /^colour: unknown field/);
    await bad({ name: 'web', port: 80 }, /^id: /, 'bad%20id');
    const ok = await p.http('PUT', '/v1/services/web-1', {
      name: 'web',
      port: 80,
      tags: ['v1'],
      check: { tcp: '127.0.0.1:1', interval: '1s' },
    });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      id: 'web-1',
      name: 'web',
      port: 80,
      tags: ['v1'],
      check: { tcp: '127.0.0.1:1', interval: 1000, timeout: 1000 },
    });
    const list = await p.http('GET', '/v1/services');
    expect((list.json as Array<{ id: string }>).map((s) => s.id)).toEqual(['web-1']);
    // what GET answers is what PUT takes: the check goes back as it came (it was {kind, target})
    const [listed] = list.json as Array<{ check: unknown }>;
    const again = await p.http('PUT', '/v1/services/web-1', {
      name: 'web',
      port: 80,
      check: listed.check,
    });
    expect(again.status).toBe(200);
    expect((again.json as { check: unknown }).check).toEqual(listed.check);
    const ttl = await p.http('PUT', '/v1/services/t', {
      name: 't',
      port: 1,
      check: { ttl: '30s' },
    });
    expect((ttl.json as { check: unknown }).check).toEqual({ ttl: 30_000 });
    // the output of a ttl report is kept (it was validated, then replaced by "ttl reported failing")
    const fail = await p.http('PUT', '/v1/services/t/ttl', { status: 'fail', output: 'disk full' });
    expect(fail.json).toMatchObject({ health: 'failing', output: 'disk full' });
    const pass = await p.http('PUT', '/v1/services/t/ttl', { status: 'pass' });
    expect(pass.json).toMatchObject({ health: 'passing', output: 'ttl passed' });
    expect((await p.http('DELETE', '/v1/services/t')).status).toBe(200);
    // a catalog peers would refuse (over 512 KiB) is refused here, naming why; before, it was
    // accepted, refused by every peer, and sent again at every anti-entropy round
    const meta = Object.fromEntries(
      Array.from({ length: 32 }, (_, k) => [`k${k}`.padEnd(63, 'x'), 'v'.repeat(512)]),
    );
    let refused: { status: number; json: unknown } | undefined;
    let accepted = 0;
    for (let i = 0; i < 40 && !refused; i++) {
      const r = await p.http('PUT', `/v1/services/big-${i}`, { name: 'big', port: 1, meta });
      if (r.status === 200) accepted++;
      else refused = r;
    }
    expect(accepted).toBeGreaterThan(20);
    expect(refused?.status).toBe(413);
    expect((refused?.json as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'catalog_full',
      message: expect.stringMatching(/catalog would reach \d+ bytes, over the 524288/),
    });
    const after = (await p.http('GET', '/v1/services')).json as Array<{ id: string }>;
    expect(after).toHaveLength(1 + accepted);
    expect((await p.http('GET', '/v1/discover/web?strategy=fastest')).status).toBe(400);
    expect((await p.http('GET', '/v1/discover/web?limit=-1')).status).toBe(400);
    // a whole number, only too large: the message gives the range (it said "expected a whole number")
    const huge = await p.http('GET', '/v1/discover/web?limit=99999999999');
    expect((huge.json as { error: { message: string } }).error.message).toBe(
      'limit: expected a whole number from 1 to 999999, got "99999999999"',
    );
    expect((await p.http('GET', '/v1/discover/web?all=maybe')).status).toBe(400);
    // a tag no instance could have is a mistake, named, not a filter that quietly matches nothing
    const emptyTag = await p.http('GET', '/v1/discover/web?tag=');
    expect(emptyTag.status).toBe(400);
    expect((emptyTag.json as { error: { message: string } }).error.message).toMatch(/^tag: "" /);
    expect((await p.http('GET', '/v1/discover/web?tag=a%20b')).status).toBe(400);
    const all = await p.http('GET', '/v1/discover/web?all=true');
    expect(all.status).toBe(200);
    expect(
      (all.json as Array<{ id: string; health: string }>).map((i) => [i.id, i.health]),
    ).toEqual([['web-1', 'failing']]);
    expect((await p.http('PUT', '/v1/services/web-1/ttl', { status: 'pass' })).status).toBe(409);
    expect((await p.http('PUT', '/v1/services/nope/ttl', { status: 'pass' })).status).toBe(404);
    expect((await p.http('DELETE', '/v1/services/nope')).status).toBe(404);
    expect((await p.http('DELETE', '/v1/services/web-1')).status).toBe(200);
  });

  it('dig gets A, SRV with additional A records, and NXDOMAIN; garbage packets change nothing', async () => {
    const hasDig = spawnSync('sh', ['-c', 'command -v dig']).status === 0;
    if (!hasDig)
      console.log(
        'dig not installed (apt-get install dnsutils): checking with the DNS client only',
      );
    const p = await cluster.current.spawnAgent({ name: 'dns' });
    await p.http('PUT', '/v1/services/web-1', { name: 'web', port: 8080, address: '10.1.2.3' });
    await p.http('PUT', '/v1/services/web-2', { name: 'web', port: 8081, address: '10.1.2.4' });
    const [host, port] = p.dns.split(':');
    const dig = (...args: string[]) =>
      spawnSync('dig', [`@${host}`, '-p', port, '+tries=1', '+time=2', ...args], {
        encoding: 'utf8',
      }).stdout;
    // garbage first: random bytes over UDP must not disturb the answers that follow
    const { createSocket } = await import('node:dgram');
    const sock = createSocket('udp4');
    for (let i = 0; i < 50; i++)
      sock.send(
        Buffer.from(Array.from({ length: 1 + i * 7 }, () => Math.floor(Math.random() * 256))),
        Number(port),
        host,
      );
    await new Promise((r) => setTimeout(r, 100));
    sock.close();
    if (!hasDig) return;
    const a = dig('web.service.edgeswarm', 'A', '+short');
    expect(a.trim().split('\n').sort()).toEqual(['10.1.2.3', '10.1.2.4']);
    const srv = dig('web.service.default.edgeswarm', 'SRV');
    expect(srv).toMatch(/status: NOERROR/);
    expect(srv).toMatch(/SRV\s+1 1 8080 0a010203\.addr\.edgeswarm\./);
    expect(srv).toMatch(
      /ADDITIONAL SECTION:[\s\S]*0a010203\.addr\.edgeswarm\.\s+0\s+IN\s+A\s+10\.1\.2\.3/,
    );
    expect(dig('nothing.service.edgeswarm', 'A')).toMatch(/status: NXDOMAIN/);
    // a site no member is in (a typo) was an empty NOERROR, as a known site with nothing running
    expect(dig('web.service.defualt.edgeswarm', 'A')).toMatch(/status: NXDOMAIN/);
    expect(dig('web.service.edgeswarm', 'A', '+tcp', '+short').trim().split('\n')).toHaveLength(2);
    const metrics = await (await fetch(`${p.api}/metrics`)).text();
    expect(metrics).toMatch(/edgeswarm_dns_malformed_total\{transport="udp"\} [1-9]/);
  });
});
