// The replicated key/value store with real agents: replication, deletes, durability across SIGKILL,
// catch-up, watches, limits and the CLI.
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KV_PROTOCOL, KV_TOPIC } from '../../edge-sites/state/service.js';
import { encodeBatch, VersionVector } from '../../storage/state/index.js';
import { CLI, countDials, metricSum, useCluster } from '../helpers/agents.js';
import { sleep, waitFor } from '../helpers/wait.js';

const cluster = useCluster();

/** Two agents that see each other alive, with KV anti-entropy rounds every 200 ms. */
async function twoWithFastRounds() {
  const c = cluster.current;
  const kv = { syncInterval: '200ms' };
  const a = await c.startAgent({ name: 'a', extra: { kv } });
  const b = await c.startAgent({ name: 'b', join: [a.addrs()[0]], extra: { kv } });
  await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
    timeout: 5000,
  });
  return { a, b };
}
const td = new TextDecoder();
const te = new TextEncoder();

describe('replicated key/value store', () => {
  it('a write at one agent is readable at every agent; deletes replicate', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 'x' });
    const b = await c.startAgent({ name: 'b', site: 'x', join: [a.addrs()[0]] });
    const d = await c.startAgent({ name: 'd', site: 'y', join: [a.addrs()[0]] });
    const all = [a, b, d];
    await waitFor(() => all.every((x) => x.membership.counts().alive === 3), { timeout: 5000 });
    await b.kv.put('config/app/mode', te.encode('fast'));
    await waitFor(
      async () =>
        (await Promise.all(all.map((x) => x.kv.get('config/app/mode')))).every(
          (v) => v && td.decode(v.value) === 'fast',
        ),
      {
        timeout: 3000,
        message: 'the write everywhere',
      },
    );
    expect((await d.kv.list('config/')).map((e) => e.key)).toEqual(['config/app/mode']);
    await d.kv.del('config/app/mode');
    await waitFor(
      async () =>
        (await Promise.all(all.map((x) => x.kv.get('config/app/mode')))).every(
          (v) => v === undefined,
        ),
      { timeout: 3000 },
    );
  });

  it(
    'with 20 agents on one IP address, a write reaches all by gossip, not anti-entropy',
    { timeout: 180_000 },
    async () => {
      // gossipsub's default score penalises more than 10 peers on one IP (all of these, or a site
      // behind one NAT address) until they graylist each other: writes then waited for anti-entropy
      const c = cluster.current;
      const kv = { syncInterval: '10m' };
      const first = await c.startAgent({ name: 'g0', extra: { kv } });
      const rest = await Promise.all(
        Array.from({ length: 19 }, (_, i) =>
          c.startAgent({ name: `g${i + 1}`, join: [first.addrs()[0]], extra: { kv } }),
        ),
      );
      const all = [first, ...rest];
      await waitFor(() => all.every((x) => x.membership.counts().alive === all.length), {
        // 20 agents in this process, beside the other test files: joining takes a while
        timeout: 120_000,
        message: 'all 20 alive everywhere',
      });
      // let gossipsub form its mesh (one heartbeat is 1 s)
      await new Promise((r) => setTimeout(r, 3000));
      for (let i = 0; i < 3; i++) {
        await all[i * 5].kv.put(`crowd/${i}`, te.encode('v'));
        await waitFor(
          async () => (await Promise.all(all.map((x) => x.kv.get(`crowd/${i}`)))).every(Boolean),
          { timeout: 5000, message: `crowd/${i} on all 20 agents` },
        );
      }
    },
  );

  it('an agent that missed many writes catches up by anti-entropy', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a' });
    const b = await c.startAgent({ name: 'b', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    const dir = b.dataDir;
    await b.stop({ leave: false });
    for (let i = 0; i < 500; i++) await a.kv.put(`k/${i}`, te.encode(`v${i}`));
    const b2 = await c.startAgent({ name: 'b', data: dir, join: [a.addrs()[0]] });
    await waitFor(async () => (await b2.kv.list('k/')).length === 500, {
      timeout: 10_000,
      message: 'b to catch up 500 keys',
    });
    expect(td.decode((await b2.kv.get('k/499'))!.value)).toBe('v499');
  });

  it('a round with nothing to repair sends a digest, no session; one that finds a difference repairs it', async () => {
    const { a, b } = await twoWithFastRounds();
    // count the sessions each agent opens from here on
    const sessions = countDials([a, b], KV_PROTOCOL);
    const same0 = a.kv.digestsReceived.same + b.kv.digestsReceived.same;
    // 10 rounds with the same state (~1 s, longer on a loaded machine): digests only
    await waitFor(() => a.kv.digestsReceived.same + b.kv.digestsReceived.same - same0 >= 10, {
      timeout: 10_000,
      message: '10 digests that found nothing to repair',
    });
    expect(sessions).toEqual([0, 0]);
    // a write that was never broadcast (straight into a's store): the next digest differs
    await a.kv.state.write('missed/1', te.encode('v'));
    await waitFor(async () => (await b.kv.get('missed/1')) !== undefined, {
      timeout: 5000,
      message: 'the write that missed the gossip to reach b by anti-entropy',
    });
    expect(a.kv.digestsReceived.differ + b.kv.digestsReceived.differ).toBeGreaterThan(0);
    expect(sessions[0] + sessions[1]).toBeGreaterThan(0);
  });

  it('an acknowledged write survives SIGKILL and reaches the others after restart', async () => {
    const c = cluster.current;
    const p1 = await c.spawnAgent({ name: 'p1' });
    const p2 = await c.spawnAgent({ name: 'p2', join: [p1.addrs[0]] });
    await waitFor(
      async () => ((await p1.http('GET', '/v1/members')).json as unknown[]).length === 2,
      { timeout: 5000 },
    );
    // cut p2 off by killing it right after the acknowledgement
    const put = await fetch(`${p2.api}/v1/kv/acked`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p2.token}` },
      body: 'durable',
    });
    expect(put.status).toBe(200);
    p2.kill('SIGKILL');
    await p2.exited;
    const p2b = await c.spawnAgent({ name: 'p2', dataDir: p2.dataDir, join: [p1.addrs[0]] });
    expect((await p2b.http('GET', '/v1/kv/acked')).text).toBe('durable');
    await waitFor(async () => (await p1.http('GET', '/v1/kv/acked')).text === 'durable', {
      timeout: 8000,
      message: 'the write on p1',
    });
  });

  it('a member that comes back holding a write nobody has: every other member fetches it, though it serves one at a time', async () => {
    const c = cluster.current;
    // rounds far apart: only the sessions a comeback starts can carry the write in time
    const kv = { syncInterval: '60s' };
    const a = await c.startAgent({ name: 'a', extra: { kv } });
    const join = [a.addrs()[0]];
    const rest = await Promise.all(
      ['b', 'c', 'd'].map((name) => c.startAgent({ name, join, extra: { kv } })),
    );
    const [b, cc, d] = rest;
    await waitFor(() => [a, ...rest].every((x) => x.membership.counts().alive === 4), {
      timeout: 10_000,
    });
    // a write that was never broadcast, as when the agent crashed right after acknowledging it
    await d.kv.state.write('comeback/1', te.encode('only-on-d'));
    const dir = d.dataDir;
    await d.stop({ leave: false });
    await waitFor(() => [a, b, cc].every((x) => x.membership.state(d.peerId) === 'dead'), {
      timeout: 10_000,
      message: 'd dead everywhere',
    });
    // a, b and c all reach for d when it is back; d turns away all but one at a time
    const d2 = await c.startAgent({ name: 'd', data: dir, join, extra: { kv } });
    await waitFor(
      async () =>
        (await Promise.all([a, b, cc].map((x) => x.kv.get('comeback/1')))).every(
          (v) => v !== undefined && td.decode(v.value) === 'only-on-d',
        ),
      { timeout: 10_000, message: 'the write from d on a, b and c' },
    );
    expect(d2.membership.counts().alive).toBe(4);
  });

  it('an agent started from an older copy of its data directory takes back its later writes', async () => {
    const c = cluster.current;
    const { a, b } = await twoWithFastRounds();
    const kv = { syncInterval: '200ms' };
    const join = [a.addrs()[0]];
    const onA = (key: string, want: string) =>
      waitFor(async () => td.decode((await a.kv.get(key))?.value ?? new Uint8Array()) === want, {
        timeout: 5000,
        message: `${key}=${want} on a`,
      });
    await b.kv.put('restore/1', te.encode('v1'));
    await b.kv.put('restore/2', te.encode('v1'));
    await onA('restore/2', 'v1');
    await b.stop({ leave: false });
    const copy = c.dataDir('b-copy');
    cpSync(b.dataDir, copy, { recursive: true }); // the backup
    const b2 = await c.startAgent({ name: 'b', data: b.dataDir, join, extra: { kv } });
    await b2.kv.put('restore/2', te.encode('v2'));
    await b2.kv.put('restore/3', te.encode('after the copy'));
    await onA('restore/3', 'after the copy');
    await b2.stop({ leave: false });

    // b comes back from the copy: it takes its own later writes back from a (it kept the
    // copy's restore/2 and never had restore/3, for good, before)
    const b3 = await c.startAgent({ name: 'b', data: copy, join, extra: { kv } });
    const onB3 = async () =>
      (await Promise.all(['restore/2', 'restore/3'].map((k) => b3.kv.get(k)))).map((v) =>
        v === undefined ? undefined : td.decode(v.value),
      );
    let seen: Array<string | undefined> = [];
    await waitFor(async () => (seen = await onB3()).join() === 'v2,after the copy', {
      timeout: 10_000,
      message: () => `b's later writes on b (it has ${JSON.stringify(seen)})`,
    });
    // and it writes on as before (the version floor itself is unit-tested in state-store.test.ts)
    await b3.kv.put('restore/4', te.encode('next'));
    await onA('restore/4', 'next');
  });

  it('an agent whose disk is full pauses its sessions instead of being sent the difference every round', async () => {
    const { a, b } = await twoWithFastRounds();
    const inBefore = await metricSum(b, 'edgeswarm_replication_bytes_total{direction="in"');
    // b's store fails as LevelDB does on a full disk; each try is one call. Set before the writes:
    // a fast round between two of them brought full/0 to b while its store still worked
    const tries: number[] = [];
    let offered = 0;
    b.kv.state.apply = async (records) => {
      tries.push(Date.now());
      for (const r of records) offered += r.value?.length ?? 0;
      throw Object.assign(new Error('IO error: /data/db/000003.log: No space left on device'), {
        code: 'LEVEL_IO_ERROR',
      });
    };
    // writes that were never broadcast: only a session can bring them to b
    for (let i = 0; i < 20; i++) await a.kv.state.write(`full/${i}`, te.encode('x'.repeat(1000)));
    await waitFor(() => tries.length > 0, { timeout: 5000, message: 'a session to reach b' });
    await sleep(4000);
    // paused 5 s after the first failure: the difference was not sent again (it was, every round)
    expect(tries.filter((t) => t - tries[0] > 1000)).toEqual([]);
    expect(await b.kv.get('full/0')).toBeUndefined();
    // the bytes of the failed session crossed the network all the same, and are counted: at least
    // the values it brought (how many of the 20 depends on when the first session ran: one that
    // ran between two writes brought only those before it, and the pause kept out the rest)
    expect(offered).toBeGreaterThanOrEqual(1000);
    expect(
      (await metricSum(b, 'edgeswarm_replication_bytes_total{direction="in"')) - inBefore,
    ).toBeGreaterThan(offered);
  });

  it("records gossiped in another agent's name are dropped; that agent's writes still arrive", async () => {
    const c = cluster.current;
    const a1 = await c.startAgent({ name: 'a1' });
    const a2 = await c.startAgent({ name: 'a2', join: [a1.addrs()[0]] });
    const x = await c.startAgent({ name: 'x', join: [a1.addrs()[0]] });
    const all = [a1, a2, x];
    await waitFor(() => all.every((n) => n.membership.counts().alive === 3), { timeout: 5000 });
    await waitFor(
      () =>
        [a1, a2].every(
          (n) => n.node.services.pubsub.getSubscribers(KV_TOPIC + '/direct').length > 0,
        ),
      { timeout: 5000 },
    );
    // x, a key holder, publishes 1000 records in a2's name at a2's next versions
    const origin = a2.node.peerId.toString();
    const records = Array.from({ length: 1000 }, (_, i) => ({
      key: `forged/${i + 1}`,
      value: te.encode('x'),
      hlc: { wall: Date.now(), counter: i },
      origin,
      seq: i + 1,
    }));
    const bytes = encodeBatch({ records, cleared: new VersionVector() });
    for (const topic of [KV_TOPIC, KV_TOPIC + '/direct'])
      await x.node.services.pubsub.publish(topic, bytes);
    await waitFor(
      async () =>
        (await metricSum(
          a1,
          'edgeswarm_peer_messages_dropped_total{protocol="kv",reason="forged_origin"',
        )) > 0,
      { timeout: 3000, message: 'the forged records counted' },
    );
    expect(await a1.kv.list('forged/')).toEqual([]);
    await a2.kv.put('victim-key', te.encode('real'));
    await waitFor(
      async () => {
        const v = await a1.kv.get('victim-key');
        return v !== undefined && td.decode(v.value) === 'real';
      },
      { timeout: 5000, message: "a2's write at a1" },
    );
  });

  it('records refused in a session for clock drift are counted', async () => {
    const { a, b } = await twoWithFastRounds();
    // b's store refuses what a session brings as stamped too far ahead (as its clock check does)
    b.kv.state.apply = async (records) => ({
      changes: [],
      applied: 0,
      superseded: 0,
      duplicates: 0,
      rejected: records.length,
      clockDrift: records.length,
      cleared: 0,
      forged: 0,
      ownClaimed: 0,
    });
    // a write that was never broadcast: only a session brings it to b
    await a.kv.state.write('drift/0', te.encode('x'));
    await waitFor(
      async () =>
        (await metricSum(
          b,
          'edgeswarm_peer_messages_dropped_total{protocol="kv",reason="clock_drift"',
        )) > 0,
      { timeout: 5000, message: 'the refusal to be counted on b' },
    );
  });

  it('kv watch prints changes, and says so when the agent ends the watch', async () => {
    const p = await cluster.current.spawnAgent({ name: 'w' });
    const watch = spawn(process.execPath, [
      CLI,
      'kv',
      'watch',
      'w/',
      '--api',
      p.api,
      '--data',
      p.dataDir,
    ]);
    let out = '';
    let err = '';
    watch.stdout.on('data', (d: Buffer) => (out += d.toString()));
    watch.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => watch.once('exit', (code) => r(code)));
    try {
      // the watch may not be open yet when the first put lands: put until one is seen
      await waitFor(
        async () => {
          await p.http('PUT', '/v1/kv/w/a', 'x');
          return out.includes('put w/a (1 bytes)');
        },
        { timeout: 10_000, interval: 300, message: 'the watch to print a put' },
      );
      await p.stop();
      // it was "edgeswarm: terminated"
      expect(await exited).toBe(1);
      expect(err).toBe('edgeswarm: the agent closed the watch (it stopped or restarted)\n');
    } finally {
      watch.kill('SIGKILL');
    }
  });

  it('limits, errors, watches and the CLI', async () => {
    const c = cluster.current;
    const p = await c.spawnAgent({ name: 'k' });
    const big = await fetch(`${p.api}/v1/kv/big`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p.token}` },
      body: new Uint8Array(1024 * 1024 + 1),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('value_too_large');
    expect((await p.http('GET', '/v1/kv/absent')).status).toBe(404);
    expect((await p.http('DELETE', '/v1/kv/absent')).status).toBe(404);
    // a key no write would take is a 400 for a read or delete too, not a 404 "no key"
    for (const method of ['GET', 'DELETE', 'PUT'] as const) {
      const bad = await p.http(method, '/v1/kv/tab%09x');
      expect(bad.status, method).toBe(400);
      expect((bad.json as { error: { code: string } }).error).toEqual({
        code: 'invalid_key',
        message: 'key: has a control character (U+0009)',
      });
    }
    // the path is routed as sent: `..` in a key is part of the key, not a step up (fetch would
    // resolve it before sending, so this goes through node:http)
    const raw = (method: string, path: string, body?: string) =>
      new Promise<number>((resolve, reject) => {
        const api = new URL(p.api);
        const req = httpRequest({
          host: api.hostname,
          port: api.port,
          path,
          method,
          headers: { authorization: `Bearer ${p.token}` },
        });
        req.on('response', (r) => {
          r.resume();
          resolve(r.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end(body);
      });
    expect(await raw('PUT', '/v1/kv/dots/%2E%2E/up', 'v')).toBe(200);
    expect(await raw('PUT', '/v1/kv/dots/../plain', 'w')).toBe(200);
    expect((await p.http('GET', '/v1/kv/up')).status).toBe(404);
    expect((await p.http('GET', '/v1/kv/plain')).status).toBe(404);
    const dotted = (await p.http('GET', '/v1/kv?prefix=dots/')).json as Array<{ key: string }>;
    expect(dotted.map((e) => e.key)).toEqual(['dots/../plain', 'dots/../up']);
    expect(await raw('GET', '/v1/../v1/agent')).toBe(404);
    // a watch sees changes under its prefix only
    const events: string[] = [];
    const ac = new AbortController();
    const res = await fetch(`${p.api}/v1/watch?prefix=app/`, {
      headers: { authorization: `Bearer ${p.token}` },
      signal: ac.signal,
    });
    const reading = (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          for (const line of dec.decode(chunk).split('\n'))
            if (line.startsWith('data: ')) events.push(line.slice(6));
        }
      } catch {
        // aborted
      }
    })();
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, ...args, '--api', p.api, '--data', p.dataDir], {
        encoding: 'utf8',
        timeout: 15_000,
      });
    expect(cli('kv', 'put', 'app/x', 'hello').status).toBe(0);
    expect(cli('kv', 'put', 'other', 'y').status).toBe(0);
    const got = cli('kv', 'get', 'app/x');
    expect(got.status).toBe(0);
    expect(got.stdout).toBe('hello');
    expect(cli('kv', 'get', 'nope').status).toBe(1);
    expect(cli('kv', 'put', 'app/y').status).toBe(2);
    // --json gives a value that is not UTF-8 as base64, not as replacement characters
    const binary = Buffer.from([0x62, 0x69, 0x6e, 0x00, 0xff]);
    const binFile = join(p.dataDir, 'value.bin');
    writeFileSync(binFile, binary);
    expect(cli('kv', 'put', 'bin', '--file', binFile).status).toBe(0);
    expect(JSON.parse(cli('kv', 'get', 'bin', '--json').stdout)).toMatchObject({
      key: 'bin',
      valueBase64: binary.toString('base64'),
    });
    expect(JSON.parse(cli('kv', 'get', 'app/x', '--json').stdout)).toMatchObject({
      value: 'hello',
    });
    // a key a URL would resolve away is named, exit 2 (it was "no route PUT /v1/")
    const dots = cli('kv', 'put', '..', 'v');
    expect(dots.status).toBe(2);
    expect(dots.stderr).toMatch(/KEY "\.\." cannot be sent in a URL/);
    // a reader that goes away early (`| head`) ends the CLI quietly: it was an unhandled EPIPE
    // with a stack trace (the JSON of a 1 MiB value is bigger than a pipe holds)
    writeFileSync(binFile, Buffer.alloc(1024 * 1024, 0x61));
    expect(cli('kv', 'put', 'big', '--file', binFile).status).toBe(0);
    for (const json of ['', '--json']) {
      const piped = spawnSync(
        'bash',
        [
          '-c',
          `"$0" "$1" kv get big ${json} --api "$2" --data "$3" | head -c 10 >/dev/null; echo "exit \${PIPESTATUS[0]}" >&2`,
          process.execPath,
          CLI,
          p.api,
          p.dataDir,
        ],
        { encoding: 'utf8', timeout: 15_000 },
      );
      expect(piped.stderr, json).toBe('exit 0\n');
    }
    const ls = cli('kv', 'ls', 'app/', '--json');
    expect(JSON.parse(ls.stdout).map((e: { key: string }) => e.key)).toEqual(['app/x']);
    expect(cli('kv', 'del', 'app/x').status).toBe(0);
    await waitFor(() => events.length >= 2, { timeout: 3000, message: 'two watch events' });
    ac.abort();
    await reading;
    expect(
      events.map((e) => JSON.parse(e)).map((e: { op: string; key: string }) => `${e.op} ${e.key}`),
    ).toEqual(['put app/x', 'del app/x']);
  });
});
