// Membership in the lab: 10 agent processes in network namespaces. SIGKILL → dead everywhere;
// SIGTERM → left everywhere within 1 s; 2 of 10 isolated for 30 s → all alive again afterwards
// with no operator action; 10% random packet loss on every host → no member ever marked dead.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AgentProcess } from '../helpers/agents.js';
import { sleep, waitFor } from '../helpers/wait.js';
import { Lab, labAvailability, type Host } from './lab.js';

const avail = labAvailability();
if (!avail.ok) console.log(`lab tests skipped: ${avail.reason}`);

/** Seconds of the 10%-loss soak (the issue asks for 5 minutes; EDGESWARM_LAB_SOAK_SECONDS overrides). */
const SOAK_SECONDS = Number(process.env.EDGESWARM_LAB_SOAK_SECONDS ?? 300);
const N = 10;

type Member = { id: string; name: string; state: string; stateChangedAt: number };

async function members(a: AgentProcess): Promise<Member[]> {
  return (await a.http('GET', '/v1/members')).json as Member[];
}

async function stateEverywhere(agents: AgentProcess[], id: string): Promise<string[]> {
  return Promise.all(
    agents.map(async (a) => (await members(a)).find((m) => m.id === id)?.state ?? 'unknown'),
  );
}

describe.skipIf(!avail.ok)('lab: membership with 10 agent processes', () => {
  let lab: Lab;
  let hosts: Host[];
  const agents: AgentProcess[] = [];

  beforeAll(async () => {
    lab = new Lab();
    hosts = Array.from({ length: N }, (_, i) => lab.addHost(`m${i}`));
    agents.push(await lab.startAgent(hosts[0], { site: 'a' }));
    const rest = await Promise.all(
      hosts
        .slice(1)
        .map((h, i) => lab.startAgent(h, { site: i % 2 ? 'a' : 'b', join: [lab.addr(hosts[0])] })),
    );
    agents.push(...rest);
    await waitFor(
      async () =>
        (await Promise.all(agents.map(members))).every(
          (ms) => ms.filter((m) => m.state === 'alive').length === N,
        ),
      {
        timeout: 30_000,
        interval: 250,
        message: 'all 10 alive everywhere',
      },
    );
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  async function restart(i: number): Promise<void> {
    const old = agents[i];
    agents[i] = await lab.startAgent(hosts[i], {
      site: i % 2 ? 'b' : 'a',
      dataDir: old.dataDir,
      join: [lab.addr(hosts[(i + 1) % N])],
    });
    await waitFor(
      async () => (await stateEverywhere(agents, agents[i].peerId)).every((s) => s === 'alive'),
      { timeout: 20_000, interval: 250, message: `${old.name} back` },
    );
  }

  it('SIGKILL: every other member marks the agent dead', async () => {
    const victim = agents[3];
    const t0 = Date.now();
    victim.kill('SIGKILL');
    const others = agents.filter((a) => a !== victim);
    try {
      await waitFor(
        async () => (await stateEverywhere(others, victim.peerId)).every((s) => s === 'dead'),
        {
          timeout: 15_000,
          interval: 100,
          message: 'the killed agent dead everywhere',
        },
      );
      console.log(
        `lab: SIGKILL → dead on all ${others.length} others after ~${Date.now() - t0} ms (polled)`,
      );
    } finally {
      // back in the cluster even when this test failed: the tests after it use all 10 agents
      await victim.exited;
      await restart(3);
    }
  });

  it('SIGTERM: every other member marks the agent left within 1 s', async () => {
    const victim = agents[5];
    const others = agents.filter((a) => a !== victim);
    const t0 = Date.now();
    victim.kill('SIGTERM');
    // Each agent says when it marked the victim left (stateChangedAt, its wall clock: the same host
    // clock as ours). Judging by when a poll came back instead measured the poll: an agent restarted
    // by the test before is still busy starting, and took up to 1.8 s to answer under load while it
    // had held the victim left since 30-130 ms (seen in the lab under load).
    let last: Array<Member | undefined> = [];
    try {
      await waitFor(
        async () => {
          last = await Promise.all(
            others.map(async (a) => (await members(a)).find((m) => m.id === victim.peerId)),
          );
          return last.every((m) => m?.state === 'left');
        },
        {
          timeout: 10_000,
          interval: 50,
          message: () =>
            `left everywhere (last poll: ${others.map((a, k) => `${a.name} ${last[k]?.state}`).join(', ')})`,
        },
      );
      const after = last.map((m) => m!.stateChangedAt - t0);
      expect(after.every(Number.isFinite)).toBe(true);
      console.log(
        `lab: SIGTERM → left on all others after ${Math.max(...after)} ms (each agent's own record; polled ${Date.now() - t0} ms)`,
      );
      const late = others
        .map((a, k) => `${a.name} ${after[k]} ms`)
        .filter((_, k) => after[k] > 1000);
      expect(late).toEqual([]);
      await victim.exited;
      expect(victim.exitCode).toBe(0);
    } finally {
      await victim.exited;
      await restart(5);
    }
  });

  it('2 of 10 isolated for 30 s: afterwards all 10 are alive everywhere with no operator action', async () => {
    const group = [hosts[7], hosts[8]];
    lab.isolate(group);
    const cut = [agents[7], agents[8]];
    const rest = agents.filter((a) => !cut.includes(a));
    await waitFor(
      async () => (await stateEverywhere(rest, cut[0].peerId)).every((s) => s === 'dead'),
      { timeout: 20_000, interval: 250, message: 'the cut pair dead on the majority' },
    );
    await sleep(30_000 - 0);
    lab.healAll();
    const t0 = Date.now();
    await waitFor(
      async () =>
        (await Promise.all(agents.map(members))).every(
          (ms) => ms.length === N && ms.every((m) => m.state === 'alive'),
        ),
      {
        timeout: 60_000,
        interval: 250,
        message: 'all 10 alive everywhere after healing',
      },
    );
    console.log(`lab: partition healed; all 10 alive everywhere after ${Date.now() - t0} ms`);
  });

  it(
    `10% random packet loss on every host for ${SOAK_SECONDS} s: no member is ever marked dead`,
    { timeout: (SOAK_SECONDS + 120) * 1000 },
    async () => {
      const marks = agents.map((a) => a.logs.length);
      for (const h of hosts) lab.loss(h, 0.1);
      const deadline = Date.now() + SOAK_SECONDS * 1000;
      let samples = 0;
      try {
        while (Date.now() < deadline) {
          await sleep(5000);
          const views = await Promise.all(agents.map(members));
          samples++;
          const dead = views.flatMap((ms, i) =>
            ms
              .filter((m) => m.state === 'dead')
              .map((m) => `${agents[i].name} sees ${m.name} dead`),
          );
          expect(dead).toEqual([]);
        }
      } finally {
        lab.healAll();
      }
      const downs = agents.flatMap((a, i) =>
        a.logs
          .slice(marks[i])
          .filter((l) => l.msg === 'member:down')
          .map((l) => `${a.name}: ${String(l.member)} down`),
      );
      const suspects = agents.reduce(
        (n, a, i) => n + a.logs.slice(marks[i]).filter((l) => l.msg === 'member:suspect').length,
        0,
      );
      console.log(
        `lab: ${SOAK_SECONDS} s at 10% loss: ${suspects} suspicions (all refuted), ${downs.length} dead verdicts, ${samples} samples`,
      );
      expect(downs).toEqual([]);
    },
  );
});
