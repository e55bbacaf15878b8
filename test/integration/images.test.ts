// Image replication with real agents: push on A, pull on B; resume after SIGKILL; a corrupt chunk
// at one source is fetched from another; removal.
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../../agent/agent.js';
import {
  IMAGE_SYNC_INTERVAL_MS,
  MANIFEST_LOCAL_BACKOFF_MS,
  PULL_LOCAL_BACKOFF_MS,
} from '../../edge-sites/images/options.js';
import { digestKey } from '../../edge-sites/images/providers.js';
import { IndexDb } from '../../storage/chunks/index-db.js';
import { ChunkStore, corruptChunkForTest, quarantinedChunks } from '../../storage/chunks/index.js';
import { metricSum, useCluster } from '../helpers/agents.js';
import { sleep, waitFor } from '../helpers/wait.js';

const cluster = useCluster();

async function* chunksOf(buf: Buffer, size = 256 * 1024) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function readAll(it: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of it) parts.push(p);
  return Buffer.concat(parts);
}

async function local(agent: Agent, name: string, tag: string) {
  return (await agent.images.status(name, tag))?.local;
}

/** Members of `site` with a full copy of NAME:v1, as `agent`'s status has them. */
async function copiesOn(agent: Agent, name: string, site: string): Promise<string[]> {
  return (
    (await agent.images.status(name, 'v1'))?.sites.find((s) => s.site === site)?.complete ?? []
  );
}

describe('image replication', () => {
  it('push on A: B (placed) pulls a verified copy; the bytes are identical', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    const data = randomBytes(8 * 1024 * 1024);
    const m = await a.images.push('demo/disk', 'v1', chunksOf(data), { sites: 'all', copies: 1 });
    expect(m.size).toBe(data.length);
    await waitFor(async () => (await local(b, 'demo/disk', 'v1'))?.state === 'complete', {
      timeout: 20_000,
      message: 'b to hold a full copy',
    });
    const got = await readAll(b.images.content((await b.images.manifests.get('demo/disk', 'v1'))!));
    expect(got.equals(data)).toBe(true);
    const st = (await a.images.status('demo/disk', 'v1'))!;
    await waitFor(
      async () =>
        (await a.images.status('demo/disk', 'v1'))!.sites.every((s) => s.complete.length === 1),
      { timeout: 5000 },
    );
    expect(st.sites.map((s) => s.site)).toEqual(['s1', 's2']);
    // an update moves only what changed
    const v2 = Buffer.from(data);
    randomBytes(4096).copy(v2, 4 * 1024 * 1024);
    const before = await metricSum(b, 'edgeswarm_replication_bytes_total{direction="in"');
    await a.images.push('demo/disk', 'v1', chunksOf(v2), { sites: 'all' });
    await waitFor(
      async () => {
        const s = await b.images.status('demo/disk', 'v1');
        return s?.version === 2 && s.local.state === 'complete';
      },
      { timeout: 20_000, message: 'b to pull version 2' },
    );
    const moved = (await metricSum(b, 'edgeswarm_replication_bytes_total{direction="in"')) - before;
    expect(moved).toBeLessThan(200 * 1024);
    expect((await b.images.status('demo/disk', 'v1'))!.versions).toEqual([1, 2]);
    // removal spreads
    await a.images.remove('demo/disk', 'v1');
    await waitFor(async () => (await b.images.status('demo/disk', 'v1')) === undefined, {
      timeout: 15_000,
      message: 'removal on b',
    });
  });

  it("an empty image and a restarted holder's copies count in other agents' status at once", async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    // zero bytes: held complete with no chunks, which used to be announced as nothing held
    await a.images.push('empty/img', 'v1', chunksOf(Buffer.alloc(0)), { sites: 'all' });
    await waitFor(async () => (await copiesOn(a, 'empty/img', 's2')).includes('b'), {
      timeout: 5000,
      message: "b's empty copy in a's status",
    });
    expect(await copiesOn(b, 'empty/img', 's1')).toEqual(['a']);
    // a restarted holder says what it holds when it is back, not at the next 30 s round
    await a.images.push('held/img', 'v1', chunksOf(randomBytes(64 * 1024)), { sites: ['s1'] });
    await waitFor(async () => (await copiesOn(b, 'held/img', 's1')).includes('a'), {
      timeout: 5000,
    });
    const dataA = a.dataDir;
    await a.stop();
    await waitFor(async () => (await copiesOn(b, 'held/img', 's1')).length === 0, {
      timeout: 5000,
      message: 'b to forget the copy of the agent that left',
    });
    await c.startAgent({ name: 'a', site: 's1', data: dataA, join: [b.addrs()[0]] });
    await waitFor(async () => (await copiesOn(b, 'held/img', 's1')).includes('a'), {
      timeout: 5000,
      message: "the restarted a's copy in b's status",
    });
  });

  it('an agent that joins learns the images there are at once, not at a later round', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    await a.images.push('before/join', 'v1', chunksOf(randomBytes(64 * 1024)), { sites: ['s1'] });
    const t0 = Date.now();
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    // rounds with a random member come every 10 s (IMAGE_SYNC_INTERVAL_MS)
    await waitFor(async () => (await b.images.manifests.get('before/join', 'v1')) !== undefined, {
      timeout: 4000,
      message: 'b to learn the image',
    });
    expect(Date.now() - t0).toBeLessThan(IMAGE_SYNC_INTERVAL_MS);
    // a's push was announced to nobody; its first member up makes it say again what it holds,
    // rather than at the next holder round (IMAGE_HOLDER_ANNOUNCE_MS, 30 s)
    await waitFor(async () => (await copiesOn(b, 'before/join', 's1'))[0] === 'a', {
      timeout: 4000,
      message: "a's copy in b's status",
    });
  });

  it('an agent that joins a site takes the image from a site-mate, not across the WAN', async () => {
    const c = cluster.current;
    // the origin's WAN is slow, as it is: 8 MiB takes ~4 s across it
    const a = await c.startAgent({
      name: 'a',
      site: 's1',
      extra: { images: { wanRate: '16Mbit' } },
    });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    const size = 8 * 1024 * 1024;
    await a.images.push('join/img', 'v1', chunksOf(randomBytes(size)), { sites: 'all', copies: 2 });
    await waitFor(async () => (await local(b, 'join/img', 'v1'))?.state === 'complete', {
      timeout: 20_000,
      message: 'b to hold a copy',
    });
    const d = await c.startAgent({ name: 'd', site: 's2', join: [a.addrs()[0]] });
    await waitFor(async () => (await local(d, 'join/img', 'v1'))?.state === 'complete', {
      timeout: 20_000,
      message: 'the joiner d to hold a copy',
    });
    // d knew only the origin until b's next holder round (30 s) and took all 8 MiB across the
    // WAN; it now asks the DHT when it knows no holder in its own site, and finds b there
    const wan = await metricSum(d, 'edgeswarm_replication_bytes_total{direction="in",scope="wan"');
    const site = await metricSum(
      d,
      'edgeswarm_replication_bytes_total{direction="in",scope="site"',
    );
    expect(wan + site).toBeGreaterThanOrEqual(size);
    expect(wan).toBeLessThan(size / 2);
  });

  it('with a whole copy in its site, a joiner asks the other site only for what that copy lacks', async () => {
    const c = cluster.current;
    // s1 holds it twice: the origin a (slow WAN) and a2 (fast); s2 once, at b
    const a = await c.startAgent({
      name: 'a',
      site: 's1',
      extra: { images: { wanRate: '8Mbit' } },
    });
    const a2 = await c.startAgent({ name: 'a2', site: 's1', join: [a.addrs()[0]] });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    const size = 8 * 1024 * 1024;
    await a.images.push('mate/img', 'v1', chunksOf(randomBytes(size)), { sites: 'all', copies: 2 });
    for (const x of [a2, b])
      await waitFor(async () => (await local(x, 'mate/img', 'v1'))?.state === 'complete', {
        timeout: 30_000,
        message: `${x.config.name} to hold a copy`,
      });
    // d finds b through the DHT: wait for b's provider record (an empty answer is kept 10 s)
    const key = await digestKey((await a.images.status('mate/img', 'v1'))!.digest);
    await waitFor(
      async () => {
        for await (const ev of a.node.services.dht.findProviders(key, {
          signal: AbortSignal.timeout(2000),
        }))
          if (ev.name === 'PROVIDER' && ev.providers.some((p) => p.id.toString() === b.peerId))
            return true;
        return false;
      },
      { timeout: 15_000, message: "b's provider record" },
    );
    const d = await c.startAgent({ name: 'd', site: 's2', join: [a.addrs()[0]] });
    await waitFor(async () => (await local(d, 'mate/img', 'v1'))?.state === 'complete', {
      timeout: 30_000,
      message: 'the joiner d to hold a copy',
    });
    // before, only the origin was spared: a2, across the WAN, was asked as much as b in d's own
    // site (58% of the image came across the WAN). Now what a2 sends before d learns b's copy is
    // whole: 19% on a quiet machine, 26% once on a loaded one (learning takes longer there)
    const wan = await metricSum(d, 'edgeswarm_replication_bytes_total{direction="in",scope="wan"');
    expect(wan).toBeLessThan(size / 3);
  });

  it('concurrent pushes to one NAME:TAG each get a version of their own', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    // all of them answered version 1, and only one of them was kept
    const bodies = [1, 2, 3].map(() => randomBytes(100_000));
    const pushed = await Promise.all(
      bodies.map((b) => a.images.push('race/img', 'v1', chunksOf(b), { sites: 'all' })),
    );
    expect(pushed.map((m) => m.version).sort()).toEqual([1, 2, 3]);
    expect((await a.images.status('race/img', 'v1'))!.versions).toEqual([1, 2, 3]);
    for (const m of pushed) {
      const kept = await a.images.manifests.get('race/img', 'v1', m.version);
      expect(kept?.digest).toBe(m.digest);
    }
  });

  it("a push counts as a full copy in other agents' status at once", async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    await a.images.push('only/s1', 'v1', chunksOf(randomBytes(256 * 1024)), { sites: ['s1'] });
    // holders repeat this every 30 s (IMAGE_HOLDER_ANNOUNCE_MS); the push itself says it
    await waitFor(async () => (await copiesOn(b, 'only/s1', 's1'))[0] === 'a', {
      timeout: 5000,
      message: "a's copy in b's status",
    });
  });

  it('a pull that fails on a full disk here pauses with a growing backoff, not every 2 s', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    // b's disk is full: every chunk it tries to store fails; the times of its tries are kept
    const tries: number[] = [];
    b.images.chunks.put = async () => {
      tries.push(Date.now());
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    await a.images.push('full/disk', 'v1', chunksOf(randomBytes(4 * 1024 * 1024)), {
      sites: 'all',
    });
    await waitFor(() => tries.length > 0, { timeout: 20_000, message: 'b to start pulling' });
    await sleep(9000);
    // pulls: a burst of failed stores each, 5 s apart, then 10 s (a plain retry came every 2 s)
    const pulls = tries.filter((t, i) => i === 0 || t - tries[i - 1] > 1000);
    expect(pulls.length).toBe(2);
    expect(pulls[1] - pulls[0]).toBeGreaterThanOrEqual(PULL_LOCAL_BACKOFF_MS);
    expect((await local(b, 'full/disk', 'v1'))?.state).not.toBe('complete');
    // a reader of the image on b is told, not left waiting for chunks that cannot be stored
    const m = (await b.images.manifests.get('full/disk', 'v1'))!;
    await expect(readAll(b.images.content(m, AbortSignal.timeout(10_000)))).rejects.toThrow(
      /ENOSPC/,
    );
  });

  it('a pull that would not fit in the free space pauses before fetching anything, and says why', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    // b's disk has 16 MiB free: not the 4 MiB image plus the reserve
    const freeBytes = b.images.chunks.freeBytes.bind(b.images.chunks);
    b.images.chunks.freeBytes = async () => 16 * 2 ** 20;
    let stored = 0;
    const put = b.images.chunks.put.bind(b.images.chunks);
    b.images.chunks.put = (...args) => (stored++, put(...args));
    await a.images.push('small/disk', 'v1', chunksOf(randomBytes(4 * 1024 * 1024)), {
      sites: 'all',
    });
    await waitFor(async () => (await local(b, 'small/disk', 'v1'))?.paused !== undefined, {
      timeout: 20_000,
      message: 'b to pause its pull',
    });
    const st = (await local(b, 'small/disk', 'v1'))!;
    expect(st.state).toBe('pulling');
    expect(st.paused!.reason).toMatch(/no space left .*: 68\.0 MiB needed, 16\.0 MiB free/);
    expect(st.paused!.retryInMs).toBeGreaterThan(0);
    expect(st.paused!.retryInMs).toBeLessThanOrEqual(PULL_LOCAL_BACKOFF_MS);
    expect(stored).toBe(0);
    // a reader is told at once
    const m = (await b.images.manifests.get('small/disk', 'v1'))!;
    await expect(readAll(b.images.content(m, AbortSignal.timeout(10_000)))).rejects.toThrow(
      /68\.0 MiB needed/,
    );
    // space again: the next try pulls it
    b.images.chunks.freeBytes = freeBytes;
    await waitFor(async () => (await local(b, 'small/disk', 'v1'))?.state === 'complete', {
      timeout: 20_000,
      message: 'b to pull once there is space',
    });
    expect((await local(b, 'small/disk', 'v1'))?.paused).toBeUndefined();
  });

  it('a chunk store left read-only by a failed index write is reopened, and the pull completes', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const data = randomBytes(4 * 1024 * 1024);
    await a.images.push('sticky/store', 'v1', chunksOf(data), { sites: 'all' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    const before = b.images.chunks;
    // the next index write in this process fails as LevelDB does on a full disk: b's first commit
    // of pulled chunks (a only serves), which leaves b's store read-only
    const batch = IndexDb.prototype.batch;
    let failed = 0;
    IndexDb.prototype.batch = async function () {
      IndexDb.prototype.batch = batch;
      failed++;
      throw Object.assign(
        new Error('IO error: /data/chunks/index/000003.log: No space left on device'),
        {
          code: 'LEVEL_IO_ERROR',
        },
      );
    };
    try {
      await waitFor(async () => (await local(b, 'sticky/store', 'v1'))?.state === 'complete', {
        timeout: 20_000,
        message: 'b to reopen its store and complete the pull',
      });
    } finally {
      IndexDb.prototype.batch = batch;
    }
    expect(failed).toBe(1);
    expect(b.images.chunks).not.toBe(before);
    const m = (await b.images.manifests.get('sticky/store', 'v1'))!;
    expect((await readAll(b.images.content(m))).equals(data)).toBe(true);
  });

  it('manifest fetches pause when storing one fails on a full disk here, and resume after', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a', site: 's1' });
    const b = await c.startAgent({ name: 'b', site: 's2', join: [a.addrs()[0]] });
    await waitFor(() => a.membership.counts().alive === 2 && b.membership.counts().alive === 2, {
      timeout: 5000,
    });
    // b's manifest store cannot write (LevelDB says so only in its message)
    const put = b.images.manifests.put.bind(b.images.manifests);
    let tries = 0;
    b.images.manifests.put = async () => {
      tries++;
      throw new Error('IO error: /data/images/000012.log: No space left on device');
    };
    await a.images.push('full/manifests', 'v1', chunksOf(randomBytes(256 * 1024)), {
      sites: ['s1'],
    });
    // the announcement's fetch fails to store it, which pauses fetches
    await waitFor(() => tries > 0, { timeout: 10_000, message: 'b to fetch the manifest' });
    const t0 = Date.now();
    await sleep(200); // a timer's round that was already under way
    const failed = tries;
    const aId = a.node.peerId.toString();
    // anti-entropy rounds while paused fetch nothing (before, each fetched the manifest again)
    for (let k = 0; k < 3; k++) expect(await b.images.syncOnce(aId)).toBe(0);
    expect(tries).toBe(failed);
    // space again: after the pause the next round (this one or the timer's) stores it
    b.images.manifests.put = put;
    await sleep(Math.max(0, t0 + MANIFEST_LOCAL_BACKOFF_MS - Date.now()));
    await b.images.syncOnce(aId);
    expect(await b.images.manifests.get('full/manifests', 'v1')).toBeDefined();
  });

  it('a pull killed half way resumes without refetching what it has; a corrupt chunk at one source is fetched from another', async () => {
    const c = cluster.current;
    const a = await c.spawnAgent({ name: 'a', site: 's1' });
    const b = await c.spawnAgent({
      name: 'b',
      site: 's2',
      join: [a.addrs[0]],
      args: ['--config', writeConfig(c.root, 'slow.yaml', 'images:\n  uploadRate: 4MiB\n')],
    });
    await waitFor(
      async () => ((await b.http('GET', '/v1/members')).json as unknown[]).length === 2,
      { timeout: 8000 },
    );
    const data = randomBytes(12 * 1024 * 1024);
    const res = await fetch(`${a.api}/v1/images/big/v1?sites=all`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${a.token}` },
      body: data,
    });
    expect(res.status).toBe(200);
    // the origin uploads at 4 MiB/s: kill b when it has some but not all, and some of what it
    // has is durable (stored chunks are committed in groups, so a kill may lose the newest)
    let durable = 0;
    await waitFor(
      async () => {
        const s = (await b.http('GET', '/v1/images/big/v1')).json as
          { local?: { durableChunks: number } } | undefined;
        durable = s?.local?.durableChunks ?? 0;
        return durable > 50;
      },
      { timeout: 20_000, interval: 50, message: 'b to have some durable chunks' },
    );
    b.kill('SIGKILL');
    await b.exited;
    // what the killed agent left: some chunks, every one of them whole
    const left = await ChunkStore.open(join(b.dataDir, 'chunks'));
    // at least what it reported durable
    expect(left.stats().chunks).toBeGreaterThanOrEqual(durable);
    for await (const h of left.list())
      expect(
        createHash('sha256')
          .update((await left.get(h))!)
          .digest('hex'),
      ).toBe(h);
    await left.close();
    const b2 = await c.spawnAgent({
      name: 'b',
      site: 's2',
      dataDir: b.dataDir,
      join: [a.addrs[0]],
    });
    await waitFor(
      async () =>
        ((await b2.http('GET', '/v1/images/big/v1')).json as { local?: { state: string } }).local
          ?.state === 'complete',
      {
        timeout: 30_000,
        message: 'b to finish after restart',
      },
    );
    const metrics = await (await fetch(`${b2.api}/metrics`)).text();
    const received = Number(
      /edgeswarm_replication_bytes_total\{direction="in",scope="wan"\} (\d+)/.exec(metrics)?.[1] ??
        0,
    );
    expect(received).toBeLessThan(data.length - 40 * 1024);
    const got = Buffer.from(
      await (
        await fetch(`${b2.api}/v1/images/big/v1/content`, {
          headers: { authorization: `Bearer ${b2.token}` },
        })
      ).arrayBuffer(),
    );
    expect(got.equals(data)).toBe(true);

    // corrupt one chunk at b (its bytes inside its pack): reading the image there detects it,
    // quarantines the chunk and fetches it from a
    const victim = await corruptChunkForTest(join(b2.dataDir, 'chunks'));
    const again = Buffer.from(
      await (
        await fetch(`${b2.api}/v1/images/big/v1/content`, {
          headers: { authorization: `Bearer ${b2.token}` },
        })
      ).arrayBuffer(),
    );
    expect(again.equals(data)).toBe(true);
    expect(await quarantinedChunks(join(b2.dataDir, 'chunks'))).toEqual([victim]);
    expect(await (await fetch(`${b2.api}/metrics`)).text()).toMatch(
      /edgeswarm_bad_chunks_total [1-9]/,
    );
    // and a third agent pulling from both gets a full, verified copy (b's copy of the chunk,
    // fetched again, is corrupt again)
    await corruptChunkForTest(join(b2.dataDir, 'chunks'), victim);
    const d = await c.spawnAgent({ name: 'd', site: 's3', join: [a.addrs[0]] });
    await waitFor(
      async () =>
        ((await d.http('GET', '/v1/images/big/v1')).json as { local?: { state: string } }).local
          ?.state === 'complete',
      {
        timeout: 30_000,
        message: 'd to hold a full copy',
      },
    );
    const got2 = Buffer.from(
      await (
        await fetch(`${d.api}/v1/images/big/v1/content`, {
          headers: { authorization: `Bearer ${d.token}` },
        })
      ).arrayBuffer(),
    );
    expect(got2.equals(data)).toBe(true);
  });

  it('the API validates names, tags and placement', async () => {
    const p = await cluster.current.spawnAgent({ name: 'v' });
    const put = (path: string) =>
      fetch(`${p.api}${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${p.token}` },
        body: 'x',
      });
    expect((await put('/v1/images/Bad_Name/v1')).status).toBe(400);
    expect((await put('/v1/images/ok/bad:tag')).status).toBe(400);
    // a tag that GET of the same path reads as a route (x/y:content was pushed, then unreadable)
    for (const [word, method] of [
      ['content', 'GET'],
      ['verify', 'POST'],
    ]) {
      const reserved = await put(`/v1/images/x/y/${word}`);
      expect(reserved.status).toBe(400);
      expect(((await reserved.json()) as { error: { message: string } }).error.message).toBe(
        `tag: "${word}" is reserved (${method} /v1/images/NAME/TAG/${word} is a route of its own)`,
      );
    }
    const copies = await put('/v1/images/ok/v1?copies=0');
    expect(copies.status).toBe(400);
    expect(((await copies.json()) as { error: { message: string } }).error.message).toMatch(
      /^copies:/,
    );
    const badSite = await put('/v1/images/ok/v1?sites=Not_A_Site');
    expect(badSite.status).toBe(400);
    expect(((await badSite.json()) as { error: { message: string } }).error.message).toMatch(
      /^sites: site "Not_A_Site" must be a lower-case DNS label/,
    );
    // "all" is not a site name: all,a was stored as the sites ["a", "all"]
    const mixed = await put('/v1/images/ok/v1?sites=all,a');
    expect(mixed.status).toBe(400);
    expect(((await mixed.json()) as { error: { message: string } }).error.message).toBe(
      'sites: "all" cannot be combined with sites',
    );
    const empty = await fetch(`${p.api}/v1/images/ok/empty`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p.token}` },
      body: '',
    });
    // an empty image is an image (no chunks); its content is empty
    expect(empty.status).toBe(200);
    expect(await empty.json()).toMatchObject({ size: 0, chunks: 0 });
    const body = await fetch(`${p.api}/v1/images/ok/empty/content`, {
      headers: { authorization: `Bearer ${p.token}` },
    });
    expect(body.status).toBe(200);
    expect((await body.arrayBuffer()).byteLength).toBe(0);
    expect((await p.http('GET', '/v1/images/none/v1')).status).toBe(404);
    expect((await p.http('DELETE', '/v1/images/none/v1')).status).toBe(404);
    const ok = await put('/v1/images/library/tiny/v1?sites=a,b&copies=2');
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      name: 'library/tiny',
      tag: 'v1',
      size: 1,
      placement: { sites: ['a', 'b'], copies: 2 },
    });
  });
});

function writeConfig(root: string, name: string, text: string): string {
  const f = join(root, name);
  writeFileSync(f, text);
  return f;
}
