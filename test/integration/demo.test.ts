// `npm run demo`: it starts three agents in two sites, shows each capability, prints commands that
// work when pasted (from any directory), and stops every agent it started on Ctrl-C, also when
// that comes while the agents are still starting.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../../agent/version.js';
import { onExit } from '../../bench/harness/exit-cleanup.js';
import { requireBuild } from '../../bench/harness/agent-process.js';
import { waitFor } from '../helpers/wait.js';

const DEMO = join(projectRoot(), 'dist', 'agent', 'cli', 'demo.js');

/** Whether a TCP port on loopback can be listened on now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A base port with the demo's 23 ports free, below the ephemeral range (no TIME-WAIT clashes). */
async function freeBase(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const base = 20_000 + Math.floor(Math.random() * 120) * 100;
    const ports = Array.from({ length: 23 }, (_, i) => base + i);
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) return base;
  }
  throw new Error('no free range of 23 ports for the demo');
}

/** The pids of processes whose command line contains `text` (the demo's agents, by data dir). */
function pidsWith(text: string): number[] {
  const r = spawnSync('pgrep', ['-f', text], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .filter(Boolean)
    .map(Number)
    .filter((p) => p !== process.pid);
}

interface Demo {
  child: ChildProcess;
  dir: string;
  out: () => string;
  exited: Promise<number | null>;
}

const demos: Demo[] = [];

function startDemo(base: number): Demo {
  requireBuild();
  const dir = mkdtempSync(join(tmpdir(), 'edgeswarm-demo-'));
  let out = '';
  const child = spawn(process.execPath, [DEMO], {
    cwd: dir,
    env: { ...process.env, DEMO_BASE_PORT: String(base), DEMO_DIR: join(dir, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString('utf8')));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const d = { child, dir, out: () => out, exited };
  demos.push(d);
  return d;
}

/** Kills whatever a demo left (it should leave nothing) and removes its directory. */
function cleanUp(d: Demo): void {
  d.child.kill('SIGKILL');
  for (const pid of pidsWith(join(d.dir, 'state'))) process.kill(pid, 'SIGKILL');
  rmSync(d.dir, { recursive: true, force: true });
}

const dropHook = onExit(() => demos.forEach(cleanUp));
afterEach(() => {
  while (demos.length > 0) cleanUp(demos.pop()!);
});
process.once('beforeExit', dropHook);

describe('npm run demo', () => {
  it('shows every capability, prints hints that work, and stops its agents on Ctrl-C', async () => {
    const d = startDemo(await freeBase());
    await waitFor(() => d.out().includes('Press Ctrl-C to stop.') || d.child.exitCode !== null, {
      timeout: 120_000,
      message: 'the demo to finish its tour',
    });
    const out = d.out();
    expect(out).toMatch(/membership: .*paris-1@paris alive/);
    expect((out.match(/ alive/g) ?? []).length).toBeGreaterThanOrEqual(3);
    expect(out).toMatch(/discovery: "web" registered on paris-2 and berlin-1/);
    expect(out).toMatch(/from paris-1, nearest first: {2}paris-2:8080, berlin-1:8081/);
    expect(out).toMatch(
      /kv: demo\/greeting written at paris-1 .* read at berlin-1: "hello from paris"/,
    );
    expect(out).toMatch(
      /images: pushed 16 MiB as demo\/disk:v1 at paris-1; a full copy in every site/,
    );

    // the hints, pasted into a shell in another directory (not the clone: npx would not find the
    // CLI there); dig where it is installed
    const hints = out.slice(out.indexOf('Try, in another terminal:')).split('\n').slice(1);
    const block = hints
      .map((l) => l.trim())
      .filter((l) => l.startsWith('alias') || l.startsWith('export') || l.startsWith('edgeswarm'));
    const alias = block.find((l) => l.startsWith('alias'))!;
    const exp = block.find((l) => l.startsWith('export'))!;
    const sh = (cmd: string) =>
      spawnSync('bash', ['-O', 'expand_aliases', '-c', `${alias}\n${exp}\n${cmd}`], {
        cwd: tmpdir(),
        encoding: 'utf8',
        timeout: 20_000,
      });
    const members = sh('edgeswarm members --json');
    expect(members.status).toBe(0);
    expect((JSON.parse(members.stdout) as unknown[]).length).toBe(3);
    const kv = sh('edgeswarm kv get demo/greeting');
    expect([kv.status, kv.stdout.trim()]).toEqual([0, 'hello from paris']);
    for (const cmd of block.filter((l) => l.startsWith('edgeswarm')))
      expect(sh(cmd).status, cmd).toBe(0);
    const digHint = hints.map((l) => l.trim()).find((l) => l.startsWith('dig '));
    if (digHint && spawnSync('sh', ['-c', 'command -v dig']).status === 0) {
      const dig = spawnSync('sh', ['-c', `${digHint} +short`], { encoding: 'utf8' });
      expect(dig.stdout.trim().split('\n')).toHaveLength(2);
    }
    // the kill hint names berlin-1's pid, not a pattern that could match another agent
    const killHint = hints.map((l) => l.trim()).find((l) => l.startsWith('kill -9'))!;
    const pid = Number(/^kill -9 (\d+) /.exec(killHint)?.[1]);
    expect(pidsWith('berlin-1')).toContain(pid);

    const agents = pidsWith(join(d.dir, 'state'));
    expect(agents).toHaveLength(3);
    d.child.kill('SIGINT');
    expect(await d.exited).toBe(0);
    expect(pidsWith(join(d.dir, 'state'))).toEqual([]);
  }, 180_000); // ~10 s on a quiet machine; a busy one takes minutes to start four processes

  it('a Ctrl-C while the agents start stops the ones already running', async () => {
    // the handler was installed only after all three had started: the demo exited and left
    // paris-1 and paris-2 running
    const d = startDemo(await freeBase());
    await waitFor(() => d.out().includes('started paris-1'), {
      timeout: 30_000,
      message: 'the first agent to start',
    });
    d.child.kill('SIGINT');
    expect(await d.exited).toBe(0);
    await waitFor(() => pidsWith(join(d.dir, 'state')).length === 0, {
      timeout: 2000,
      message: 'no demo agent left',
    });
  });

  it('an agent that cannot start says why (a port in use), not only where its log is', async () => {
    const base = await freeBase();
    const blocker = createServer().listen(base + 20, '127.0.0.1');
    try {
      const d = startDemo(base);
      expect(await d.exited).toBe(1);
      expect(d.out()).toMatch(
        new RegExp(
          `demo failed: paris-1 exited with 1: .*127\\.0\\.0\\.1:${base + 20}.*in use.*DEMO_BASE_PORT=N moves them`,
        ),
      );
    } finally {
      blocker.close();
    }
  });
});
