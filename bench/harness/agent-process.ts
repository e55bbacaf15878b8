// A real agent as a child process of the built `edgeswarm` binary, with its JSON log lines parsed.
// Used by the tests, the lab and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../agent/version.js';
import { onExit } from './exit-cleanup.js';
import { waitFor } from './wait.js';

export const CLI = join(projectRoot(), 'dist', 'agent', 'cli', 'main.js');

/**
 * Extra node flags for every agent a harness spawns, from EDGESWARM_NODE_ARGS (e.g.
 * "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile; stop agents with SIGTERM so profiles are written).
 */
export const NODE_ARGS = (process.env.EDGESWARM_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** How harnesses end their agents: SIGKILL is quickest, but a profiled agent needs SIGTERM. */
export const END_SIGNAL: NodeJS.Signals = NODE_ARGS.length > 0 ? 'SIGTERM' : 'SIGKILL';

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
    const [cmd, ...pre] = command ?? [process.execPath, ...NODE_ARGS];
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
    // an agent never outlives the harness that started it (exit-cleanup.ts)
    const child = this.child;
    const forget = onExit(() => child.kill('SIGKILL'));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        forget();
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

  /**
   * Ends the agent with `signal`, and with SIGKILL after `timeout` ms. With EDGESWARM_NODE_ARGS set
   * the default is 2 minutes: 30 profiled agents writing their profiles at once on 2 cores took
   * longer than 8 s, and were killed before they had written any.
   */
  async stop(
    signal: NodeJS.Signals = 'SIGTERM',
    timeout = NODE_ARGS.length > 0 ? 120_000 : 8000,
  ): Promise<void> {
    if (!this.running) return;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeout);
    await this.exited;
    clearTimeout(t);
  }
}
