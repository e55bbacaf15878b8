// Agents for tests and benchmarks: in this process (Agent objects) or as child processes of the
// built binary, on loopback with ports picked by the OS. cleanup() stops them all and removes their
// data (test/helpers/agents.ts registers it with afterEach).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from '../../agent/agent.js';
import { agentConfigSchema, type AgentConfigInput } from '../../agent/config/schema.js';
import { generateClusterKey } from '../../agent/identity.js';
import { silentLogger } from '../../agent/logger.js';
import { AgentProcess, END_SIGNAL, requireBuild } from './agent-process.js';

export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface InProcessAgentOptions extends Partial<AgentConfigInput> {
  /** Extra keys merged into the config (for capability sections). */
  extra?: Record<string, unknown>;
}

export interface ProcessAgentOptions {
  name?: string;
  site?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Reuse a data directory (restart an agent). */
  dataDir?: string;
  join?: string[];
  /** Wrap the node invocation, e.g. ['ip', 'netns', 'exec', 'h1', process.execPath]. */
  command?: string[];
  listen?: string;
  api?: string;
  dns?: string;
  clusterKeyFile?: string;
}

export class TestCluster {
  readonly root: string;
  readonly #cleanupRoot: () => void;
  readonly keyFile: string;
  readonly agents: Agent[] = [];
  readonly processes: AgentProcess[] = [];
  #n = 0;

  constructor() {
    const t = tempDir('edgeswarm-cluster-');
    this.root = t.dir;
    this.#cleanupRoot = t.cleanup;
    this.keyFile = join(this.root, 'cluster.key');
    writeFileSync(this.keyFile, generateClusterKey(), { mode: 0o600 });
  }

  /** A fresh data directory under the cluster root. */
  dataDir(name: string): string {
    const d = join(this.root, `${name}-${++this.#n}`);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Starts an agent in this process on loopback with OS-chosen ports. */
  async startAgent(opts: InProcessAgentOptions = {}): Promise<Agent> {
    const name = opts.name ?? `agent-${this.agents.length + 1}`;
    const { extra, ...rest } = opts;
    const config = agentConfigSchema.parse({
      name,
      data: this.dataDir(name),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      dns: '127.0.0.1:0',
      clusterKey: this.keyFile,
      logLevel: 'silent',
      ...rest,
      ...extra,
    });
    const agent = new Agent({ config, logger: silentLogger() });
    this.agents.push(agent);
    await agent.start();
    return agent;
  }

  /** Starts an agent as a child process of the built binary and waits for "agent started". */
  async spawnAgent(opts: ProcessAgentOptions = {}): Promise<AgentProcess> {
    requireBuild();
    const name = opts.name ?? `proc-${this.processes.length + 1}`;
    const dataDir = opts.dataDir ?? this.dataDir(name);
    const args = [
      '--name',
      name,
      '--data',
      dataDir,
      '--listen',
      opts.listen ?? '/ip4/127.0.0.1/tcp/0',
      '--api',
      opts.api ?? '127.0.0.1:0',
      '--dns',
      opts.dns ?? '127.0.0.1:0',
      '--cluster-key',
      opts.clusterKeyFile ?? this.keyFile,
      ...(opts.site ? ['--site', opts.site] : []),
      ...(opts.join ?? []).flatMap((j) => ['--join', j]),
      ...(opts.args ?? []),
    ];
    const p = new AgentProcess(name, dataDir, args, opts.env, opts.command);
    this.processes.push(p);
    return p.started();
  }

  /** Stops every agent and process and removes all data. Safe to call more than once. */
  async cleanup(): Promise<void> {
    await Promise.allSettled([
      ...this.agents.map((a) => a.stop({ leave: false })),
      ...this.processes.map((p) => p.stop(END_SIGNAL)),
    ]);
    this.agents.length = 0;
    this.processes.length = 0;
    this.#cleanupRoot();
  }
}
