// Membership with real agents on loopback: join, full member list, failure detection, leave.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { metricSum, useCluster } from '../helpers/agents.js';
import { sleep, waitFor } from '../helpers/wait.js';

const cluster = useCluster();

describe('membership over libp2p', () => {
  it('joining through one member gives the full member list within a second', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 'x' });
    const b = await c.startAgent({ name: 'b', site: 'x', join: [a.addrs()[0]] });
    await waitFor(
      () => a.membership.state(b.peerId) === 'alive' && b.membership.state(a.peerId) === 'alive',
      {
        timeout: 3000,
        message: 'a and b to see each other alive',
      },
    );
    const t0 = Date.now();
    const d = await c.startAgent({ name: 'd', site: 'y', join: [b.addrs()[0]] });
    await waitFor(() => d.membership.members().filter((m) => m.state === 'alive').length === 3, {
      timeout: 1000 + (Date.now() - t0),
      interval: 10,
      message: 'd to know all three members',
    });
    const names = d.membership
      .members()
      .map((m) => `${m.name}@${m.site}`)
      .sort();
    expect(names).toEqual(['a@x', 'b@x', 'd@y']);
  });

  it('an agent killed in its first seconds comes back knowing its members, with no --join', async () => {
    // the member snapshot was first saved after 30 s: killed before, it came back alone, took
    // itself for the only member of its site and pulled every image placed there
    const c = cluster.current;
    const p1 = await c.spawnAgent({ name: 'p1' });
    const p2 = await c.spawnAgent({ name: 'p2', join: [p1.addrs[0]] });
    await waitFor(
      async () =>
        ((await p2.http('GET', '/v1/members')).json as Array<{ state: string }>).filter(
          (m) => m.state === 'alive',
        ).length === 2,
      { timeout: 5000, message: 'p2 to see p1' },
    );
    // the snapshot is saved within 1 s of p1 coming up at p2: room for a loaded machine
    await sleep(3000);
    await p2.stop('SIGKILL');
    const again = await c.spawnAgent({ name: 'p2', dataDir: p2.dataDir });
    await waitFor(
      async () =>
        (
          (await again.http('GET', '/v1/members')).json as Array<{ id: string; state: string }>
        ).some((m) => m.id === p1.peerId && m.state === 'alive'),
      { timeout: 5000, message: 'the restarted p2 to rejoin p1 through its snapshot' },
    );
  });

  it('a stopped agent is marked dead everywhere; a leaving one is marked left', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a' });
    const others = await Promise.all(
      ['b', 'c', 'd'].map((n) => c.startAgent({ name: n, join: [a.addrs()[0]] })),
    );
    const all = [a, ...others];
    await waitFor(() => all.every((x) => x.membership.counts().alive === 4), {
      timeout: 5000,
      message: 'all four alive everywhere',
    });
    const [b, cc, d] = others;
    const bId = b.peerId;
    await b.stop({ leave: false });
    const rest = [a, cc, d];
    await waitFor(() => rest.every((x) => x.membership.state(bId) === 'dead'), {
      timeout: 8000,
      message: 'b dead everywhere',
    });
    // the failure detector's own counters are on /metrics (they were kept but not exported)
    const swim = (name: string) => `edgeswarm_swim_${name}`;
    for (const x of rest) {
      const text = await x.metrics.text();
      for (const name of ['health_score', 'refutations_total'])
        expect(text).toMatch(new RegExp(`^${swim(name)} \\d+$`, 'm'));
      expect(await metricSum(x, swim('probes_total '))).toBeGreaterThan(0);
    }
    // b was suspected by at least one of them after a probe of it failed
    const sum = async (name: string) =>
      (await Promise.all(rest.map((x) => metricSum(x, swim(`${name} `))))).reduce((a, n) => a + n);
    expect(await sum('probe_failures_total')).toBeGreaterThan(0);
    expect(await sum('suspicions_raised_total')).toBeGreaterThan(0);
    expect(await sum('indirect_probes_total')).toBeGreaterThan(0);
    const dId = d.peerId;
    await d.stop({ leave: true });
    await waitFor(() => [a, cc].every((x) => x.membership.state(dId) === 'left'), {
      timeout: 2000,
      message: 'd left everywhere',
    });
  });

  it('two agents with the same name each warn about the other', async () => {
    const c = cluster.current;
    const p1 = await c.spawnAgent({ name: 'twin', site: 'east' });
    const p2 = await c.spawnAgent({ name: 'twin', site: 'west', join: [p1.addrs[0]] });
    const warned = (p: typeof p1, other: typeof p1) =>
      p.waitForLog((l) => /uses this agent's name/.test(l.msg) && l.id === other.peerId, 5000);
    await Promise.all([warned(p1, p2), warned(p2, p1)]);
  });

  it('a join that fails says why in words, not in libp2p internals', async () => {
    const p = await cluster.current.spawnAgent({ name: 'j' });
    const api = new URL(p.api);
    const wrongId = p.addrs[0].replace(
      /\/p2p\/.*$/,
      '/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo',
    );
    const res = await p.http('POST', '/v1/join', {
      addrs: [`${api.hostname}:${api.port}`, wrongId],
    });
    expect(res.status).toBe(502);
    const msg = (res.json as { error: { message: string } }).error.message;
    // an HTTP server there was "Message length length too long - 7 > 2" or "Missing newline"
    expect(msg).toContain(
      `${api.hostname}:${api.port}: the handshake failed: not an edgeswarm agent (it answered "HTTP/1.1 400 Bad Request")`,
    );
    // "Payload identity key ... does not match expected remote identity key ..."
    expect(msg).toContain(`${wrongId}: the agent there has another peer id than the address names`);
    // one peer through two addresses is one join (it answered joined: 2, the peer twice)
    const q = await cluster.current.spawnAgent({ name: 'q' });
    const twice = await p.http('POST', '/v1/join', { addrs: [q.addrs[0], q.addrs[0]] });
    expect(twice.json).toMatchObject({ joined: 1, peers: [q.peerId] });
  });

  it('sites: a site whose members all left counts no images it should hold', async () => {
    const c = cluster.current;
    const p1 = await c.spawnAgent({ name: 'p1', site: 'east' });
    const p2 = await c.spawnAgent({ name: 'p2', site: 'west', join: [p1.addrs[0]] });
    const put = await fetch(`${p1.api}/v1/images/app/v1?sites=all`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p1.token}` },
      body: new Uint8Array(1000),
    });
    expect(put.status).toBe(200);
    type Site = { site: string; members: { left: number }; images: { total: number } };
    const sites = async () => (await p1.http('GET', '/v1/sites')).json as Site[];
    await waitFor(async () => (await sites()).every((s) => s.images.total === 1), {
      timeout: 10_000,
      message: 'both sites to count the image',
    });
    await p2.stop();
    await waitFor(async () => (await sites()).find((s) => s.site === 'west')?.members.left === 1, {
      timeout: 5000,
      message: 'p1 to see p2 leave',
    });
    // it counted 0 of 1 complete at west, a site nobody is in any more
    expect((await sites()).map((s) => [s.site, s.images])).toEqual([
      ['east', { complete: 1, total: 1 }],
      ['west', { complete: 0, total: 0 }],
    ]);
  });

  it('the members API and metrics report the cluster', async () => {
    const c = cluster.current;
    const t0 = Date.now();
    const p1 = await c.spawnAgent({ name: 'p1', site: 'east' });
    const p2 = await c.spawnAgent({ name: 'p2', site: 'west', join: [p1.addrs[0]] });
    await waitFor(
      async () => ((await p2.http('GET', '/v1/members')).json as unknown[]).length === 2,
      { timeout: 5000 },
    );
    const members = (await p1.http('GET', '/v1/members')).json as Array<{
      name: string;
      site: string;
      state: string;
      incarnation: number;
      id: string;
      stateChangedAt: number;
    }>;
    expect(members.map((m) => [m.name, m.site, m.state]).sort()).toEqual([
      ['p1', 'east', 'alive'],
      ['p2', 'west', 'alive'],
    ]);
    // when p1 saw each state change, on the wall clock: since this test began
    for (const m of members) expect(m.stateChangedAt).toBeGreaterThanOrEqual(t0);
    for (const m of members) expect(m.stateChangedAt).toBeLessThanOrEqual(Date.now());
    const sites = (await p1.http('GET', '/v1/sites')).json as Array<{
      site: string;
      members: { alive: number };
    }>;
    expect(sites.map((s) => [s.site, s.members.alive])).toEqual([
      ['east', 1],
      ['west', 1],
    ]);
    const metrics = await (await fetch(`${p1.api}/metrics`)).text();
    expect(metrics).toMatch(/edgeswarm_members\{state="alive"\} 2/);
    expect(metrics).toMatch(/edgeswarm_gossip_messages_total\{direction="out"\} [1-9]/);
    for (const name of [
      'edgeswarm_member_failures_detected_total',
      'edgeswarm_replication_bytes_total',
      'edgeswarm_kv_keys',
      'edgeswarm_images',
      'edgeswarm_http_requests_total',
    ])
      expect(metrics).toContain(`# TYPE ${name}`);
    // the exposition passes promtool's linter where it is installed (CI installs it)
    if (spawnSync('sh', ['-c', 'command -v promtool']).status === 0) {
      const r = spawnSync('promtool', ['check', 'metrics'], { input: metrics, encoding: 'utf8' });
      expect(r.stdout + r.stderr).toBe('');
      expect(r.status).toBe(0);
    } else console.log('promtool not installed (apt-get install prometheus): metrics lint skipped');
  });
});
