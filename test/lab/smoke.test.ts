// Lab smoke: three hosts in namespaces on a bridge; their agents connect across it; a DROP rule
// between two hosts stops their traffic and removing it brings it back.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { Lab, labAvailability, type Host } from './lab.js';

const avail = labAvailability();
if (!avail.ok) console.log(`lab tests skipped: ${avail.reason}`);

function pingOk(lab: Lab, from: Host, to: Host): boolean {
  const r = spawnSync('ip', ['netns', 'exec', from.ns, 'ping', '-c', '1', '-W', '1', to.ip], {
    encoding: 'utf8',
  });
  return r.status === 0;
}

async function connections(api: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`)).text();
  const m = /^edgeswarm_peer_connections (\d+)/m.exec(text);
  return m ? Number(m[1]) : -1;
}

describe.skipIf(!avail.ok)('lab smoke', () => {
  let lab: Lab;
  beforeAll(() => {
    lab = new Lab();
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('three agents connect across the bridge; a DROP rule cuts two of them and removing it heals', async () => {
    const [h1, h2, h3] = ['h1', 'h2', 'h3'].map((n) => lab.addHost(n));
    expect(pingOk(lab, h1, h2)).toBe(true);
    const a1 = await lab.startAgent(h1);
    const a2 = await lab.startAgent(h2, { join: [lab.addr(h1)] });
    const a3 = await lab.startAgent(h3, { join: [lab.addr(h1)] });
    await waitFor(async () => (await connections(a1.api)) >= 2, {
      timeout: 10_000,
      message: 'h1 connected to h2 and h3',
    });
    expect(await connections(a2.api)).toBeGreaterThanOrEqual(1);
    expect(await connections(a3.api)).toBeGreaterThanOrEqual(1);

    lab.cut(h1, h2);
    expect(pingOk(lab, h1, h2)).toBe(false);
    expect(pingOk(lab, h2, h1)).toBe(false);
    expect(pingOk(lab, h1, h3)).toBe(true);
    lab.heal(h1, h2);
    await waitFor(() => pingOk(lab, h1, h2), {
      timeout: 5000,
      message: 'h1 and h2 to reach each other again',
    });

    lab.loss(h3, 1.0);
    expect(pingOk(lab, h1, h3)).toBe(false);
    // the runner still reaches h3's API through the gateway
    expect((await fetch(`${a3.api}/v1/health`)).status).toBe(200);
    lab.healAll();
    expect(pingOk(lab, h1, h3)).toBe(true);
  });
});
