// The replicated KV store in the lab: 6 agents in 3 sites. One site is cut off for 30 s while both
// sides write the same and different keys; after healing every agent holds the same data within
// 5 s. An agent SIGKILLed right after an acknowledged write has it after restart, and so do the
// others.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentProcess } from '../helpers/agents.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { Lab, labAvailability, type Host } from './lab.js';

const avail = labAvailability();
if (!avail.ok) console.log(`lab tests skipped: ${avail.reason}`);

async function put(a: AgentProcess, key: string, value: string): Promise<void> {
  const r = await fetch(`${a.api}/v1/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${a.token}` },
    body: value,
  });
  expect(r.status).toBe(200);
}

/** A digest of everything an agent holds. */
async function fingerprint(a: AgentProcess): Promise<string> {
  const list = (await a.http('GET', '/v1/kv')).json as Array<{ key: string; version: string }>;
  const h = createHash('sha256');
  for (const e of list) h.update(`${e.key}=${e.version}\n`);
  return `${list.length}:${h.digest('hex').slice(0, 12)}`;
}

describe.skipIf(!avail.ok)('lab: replicated key/value store, 6 agents in 3 sites', () => {
  let lab: Lab;
  let hosts: Host[];
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    lab = new Lab();
    hosts = ['a1', 'a2', 'b1', 'b2', 'c1', 'c2'].map((n) => lab.addHost(n));
    agents.push(...(await lab.startCluster(hosts, (h) => h.name[0])));
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  it('a site cut off for 30 s writes on both sides; after healing all hold the same data within 5 s', async () => {
    const [a1, a2, b1, , c1, c2] = agents;
    lab.isolate([hosts[4], hosts[5]]);
    const t0 = Date.now();
    let i = 0;
    while (Date.now() - t0 < 30_000) {
      // both sides write the same key, and keys of their own
      await put(a1, 'shared/config', `majority-${i}`);
      await put(c1, 'shared/config', `cut-off-${i}`);
      await put(b1, `majority/${i}`, `m${i}`);
      await put(c2, `cutoff/${i}`, `c${i}`);
      if (i % 5 === 0) {
        const del = `majority/${i - 5}`;
        if (i >= 5)
          expect(
            (
              await fetch(`${a2.api}/v1/kv/${encodeURIComponent(del)}`, {
                method: 'DELETE',
                headers: { authorization: `Bearer ${a2.token}` },
              })
            ).status,
          ).toBe(200);
      }
      i++;
      await sleep(500);
    }
    // the cut-off site kept answering and accepting writes
    expect((await c2.http('GET', '/v1/kv/cutoff/0')).text).toBe('c0');
    lab.healAll();
    const healed = Date.now();
    await waitFor(async () => new Set(await Promise.all(agents.map(fingerprint))).size === 1, {
      timeout: 5_000 + 3_000,
      interval: 100,
      message: 'identical data everywhere',
    });
    const took = Date.now() - healed;
    console.log(
      `lab: after healing, all 6 agents identical in ${took} ms (${await fingerprint(a1)})`,
    );
    expect(took).toBeLessThan(5_000);
    // the last write to the shared key wins everywhere, whichever side made it
    const values = await Promise.all(
      agents.map(async (a) => (await a.http('GET', '/v1/kv/shared/config')).text),
    );
    expect(new Set(values).size).toBe(1);
    expect((await b1.http('GET', `/v1/kv/cutoff/${i - 1}`)).text).toBe(`c${i - 1}`);
    expect((await c1.http('GET', `/v1/kv/majority/${i - 1}`)).text).toBe(`m${i - 1}`);
    expect((await c1.http('GET', '/v1/kv/majority/0')).status).toBe(404);
  });

  it('SIGKILL right after an acknowledged write: the write is there after restart, and on every other agent', async () => {
    const victim = agents[3];
    await put(victim, 'durable/key', 'acknowledged');
    victim.kill('SIGKILL');
    await victim.exited;
    const back = await lab.startAgent(hosts[3], {
      site: 'b',
      dataDir: victim.dataDir,
      join: [lab.addr(hosts[0])],
    });
    agents[3] = back;
    expect((await back.http('GET', '/v1/kv/durable/key')).text).toBe('acknowledged');
    await waitFor(
      async () =>
        (
          await Promise.all(
            agents.map(async (a) => (await a.http('GET', '/v1/kv/durable/key')).text),
          )
        ).every((v) => v === 'acknowledged'),
      {
        timeout: 15_000,
        interval: 200,
        message: 'the write on every agent',
      },
    );
  });
});
