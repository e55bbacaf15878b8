// A cluster of agent processes on loopback for the benchmarks: a shared cluster key in a temporary
// directory, every agent joining the first, all removed by stop().
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { generateClusterKey } from '../../agent/identity.js';
import { AgentProcess, END_SIGNAL, requireBuild } from './agent-process.js';
import { onExit } from './exit-cleanup.js';
import { waitFor } from './wait.js';

export interface LocalClusterOptions {
  n: number;
  /** Site of agent i (default: all in "default"). */
  site?: (i: number) => string;
  /** Extra agent flags. */
  args?: string[];
  /** Agents started at once. */
  parallel?: number;
  logLevel?: string;
}

export class LocalCluster {
  readonly root = mkdtempSync(joinPath(tmpdir(), 'edgeswarm-bench-'));
  readonly keyFile = joinPath(this.root, 'cluster.key');
  readonly agents: AgentProcess[] = [];

  /** Removes the directory if the process ends before stop() (after the agents are killed). */
  readonly #forgetRoot = onExit(() => rmSync(this.root, { recursive: true, force: true }));

  constructor() {
    writeFileSync(this.keyFile, generateClusterKey(), { mode: 0o600 });
  }

  args(
    name: string,
    site: string,
    extra: string[],
    join?: string,
    dataDir?: string,
  ): { dataDir: string; args: string[] } {
    const d = dataDir ?? joinPath(this.root, name);
    mkdirSync(d, { recursive: true });
    const args = [
      '--name',
      name,
      '--site',
      site,
      '--data',
      d,
      '--listen',
      '/ip4/127.0.0.1/tcp/0',
      '--api',
      '127.0.0.1:0',
      '--dns',
      '127.0.0.1:0',
      '--cluster-key',
      this.keyFile,
      ...extra,
    ];
    if (join) args.push('--join', join);
    return { dataDir: d, args };
  }

  async spawn(
    name: string,
    site: string,
    extra: string[] = [],
    joinAddr?: string,
    dataDir?: string,
  ): Promise<AgentProcess> {
    requireBuild();
    const a = this.args(name, site, extra, joinAddr, dataDir);
    const p = new AgentProcess(name, a.dataDir, a.args);
    try {
      return await p.started(180_000);
    } catch (err) {
      // not in this.agents yet: stop() would not know it (it needs log level info or lower)
      p.kill('SIGKILL');
      throw err;
    }
  }

  async start(opts: LocalClusterOptions): Promise<AgentProcess[]> {
    const site = opts.site ?? (() => 'default');
    const extra = ['--log-level', opts.logLevel ?? 'info', ...(opts.args ?? [])];
    const first = await this.spawn('n0', site(0), extra);
    this.agents.push(first);
    const parallel = opts.parallel ?? 4;
    for (let i = 1; i < opts.n; i += parallel) {
      const batch = [];
      for (let j = i; j < Math.min(opts.n, i + parallel); j++)
        batch.push(this.spawn(`n${j}`, site(j), extra, first.addrs[0]));
      this.agents.push(...(await Promise.all(batch)));
    }
    return this.agents;
  }

  /** Waits until every agent sees `n` alive members (polling the API at a gentle rate). */
  async converged(n: number, timeout = 60_000): Promise<void> {
    await waitFor(
      async () => {
        for (const a of this.agents.filter((x) => x.running)) {
          const r = await a.http('GET', '/v1/members');
          const alive = (r.json as Array<{ state: string }>).filter(
            (m) => m.state === 'alive',
          ).length;
          if (alive !== n) return false;
        }
        return true;
      },
      { timeout, interval: 500, message: `all agents to see ${n} alive members` },
    );
  }

  async stop(): Promise<void> {
    await Promise.allSettled(this.agents.map((a) => a.stop(END_SIGNAL)));
    rmSync(this.root, { recursive: true, force: true });
    this.#forgetRoot();
  }
}
