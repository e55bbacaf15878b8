// Starting real agents for tests: in this process (Agent objects) or as separate child processes
// (the built `edgeswarm` binary), on loopback with ports picked by the OS. Everything started
// through a TestCluster is stopped and its data removed by cluster.cleanup(), which useCluster()
// registers with afterEach so it runs even when a test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach } from 'vitest';
import { Agent } from '../../agent/agent.js';
import { agentConfigSchema, type AgentConfigInput } from '../../agent/config/schema.js';
import { generateClusterKey } from '../../agent/identity.js';
import { silentLogger } from '../../agent/logger.js';
import { projectRoot } from '../../agent/version.js';
import { tempDir } from './tmp.js';
import { waitFor } from './wait.js';

export const CLI = join(projectRoot(), 'dist', 'agent', 'cli', 'main.js');

export function requireBuild(): void {
  if (!existsSync(CLI))
    throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does it)`);
}

export interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

export class AgentProcess {
  readonly name: string;
  readonly dataDir: string;
  readonly child: ChildProcess;
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  peerId = '';
  addrs: string[] = [];
  api = '';
  dns = '';
  exitCode: number | null | undefined;
  exitSignal: NodeJS.Signals | null = null;
  readonly exited: Promise<number | null>;

  constructor(
    name: string,
    dataDir: string,
    args: string[],
    env: NodeJS.ProcessEnv = {},
    command?: string[],
  ) {
    this.name = name;
    this.dataDir = dataDir;
    const [cmd, ...pre] = command ?? [process.execPath];
    this.child = spawn(cmd, [...pre, CLI, 'agent', ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as LogLine);
      } catch {
        this.logs.push({ level: 'raw', msg: line });
      }
    });
    createInterface({ input: this.child.stderr! }).on('line', (line) => this.stderr.push(line));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve(code);
      });
    });
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  get token(): string {
    return readFileSync(join(this.dataDir, 'admin.token'), 'utf8').trim();
  }

  /** Resolves when the agent has logged "agent started"; fills peerId, addrs, api, dns. */
  async started(timeout = 20_000): Promise<this> {
    const line = await waitFor(
      () =>
        this.logs.find((l) => l.msg === 'agent started') ??
        (this.running ? undefined : this.#died()),
      {
        timeout,
        message: () => `${this.name} to start; stderr: ${this.stderr.join(' | ')}`,
      },
    );
    this.peerId = String(line.peerId);
    this.addrs = line.addrs as string[];
    this.api = String(line.api);
    this.dns = String(line.dns);
    return this;
  }

  #died(): never {
    throw new Error(
      `${this.name} exited with ${this.exitCode ?? this.exitSignal}: ${this.stderr.join(' | ')}`,
    );
  }

  waitForLog(pred: (l: LogLine) => boolean, timeout = 10_000): Promise<LogLine> {
    return waitFor(() => this.logs.find(pred), {
      timeout,
      message: `a log line from ${this.name}`,
    });
  }

  /** Calls the agent's HTTP API with its token. */
  async http(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; json: unknown; text: string }> {
    const res = await fetch(this.api + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, json, text };
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeout = 8000): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeout);
    await this.exited;
    clearTimeout(t);
  }
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
      ...this.processes.map((p) => p.stop('SIGKILL')),
    ]);
    this.agents.length = 0;
    this.processes.length = 0;
    this.#cleanupRoot();
  }
}

/** A TestCluster cleaned up after each test, even a failing one. */
export function useCluster(): { readonly current: TestCluster } {
  let cluster: TestCluster | undefined;
  afterEach(async () => {
    await cluster?.cleanup();
    cluster = undefined;
  });
  return {
    get current(): TestCluster {
      cluster ??= new TestCluster();
      return cluster;
    },
  };
}
