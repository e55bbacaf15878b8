// The harnesses never leave agents behind: a bench or test process that is ended (by a signal, as
// `timeout` and Ctrl-C do, or by exiting early) takes its agent processes and its cluster directory
// with it (bench/harness/exit-cleanup.ts).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../../agent/version.js';
import { waitFor } from '../helpers/wait.js';

const CLUSTER = join(projectRoot(), 'dist', 'bench', 'harness', 'local-cluster.js');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a process that starts a one-agent LocalCluster, then ends it the way `how` says. */
async function endWhileRunning(how: 'SIGTERM' | 'SIGINT' | 'exit'): Promise<void> {
  const script = `
    const { LocalCluster } = await import(${JSON.stringify(CLUSTER)});
    const c = new LocalCluster();
    const [a] = await c.start({ n: 1 });
    console.log(JSON.stringify({ pid: a.child.pid, root: c.root }));
    // 'exit' waits for the test's go (a line on stdin), so the test sees the running state first
    if (${JSON.stringify(how)} === 'exit') process.stdin.once('data', () => process.exit(3));
    setInterval(() => {}, 1000);
  `;
  const bench = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let agent: { pid: number; root: string } | undefined;
  try {
    const lines = createInterface({ input: bench.stdout });
    agent = await new Promise<{ pid: number; root: string }>((resolve, reject) => {
      lines.once('line', (l) => resolve(JSON.parse(l) as { pid: number; root: string }));
      bench.once('exit', (code) => reject(new Error(`exited with ${code} before starting`)));
    });
    expect(alive(agent.pid)).toBe(true);
    expect(existsSync(agent.root)).toBe(true);
    const exited = new Promise<[number | null, string | null]>((r) =>
      bench.once('exit', (code, signal) => r([code, signal])),
    );
    if (how === 'exit') bench.stdin?.write('go\n');
    else bench.kill(how);
    // the process still ends as the signal (or its exit code) says
    expect(await exited).toEqual(how === 'exit' ? [3, null] : [null, how]);
    const { pid, root } = agent;
    await waitFor(() => !alive(pid), { timeout: 5000, message: 'the agent to be gone' });
    expect(existsSync(root)).toBe(false);
  } finally {
    bench.kill('SIGKILL');
    if (agent && alive(agent.pid)) process.kill(agent.pid, 'SIGKILL');
  }
}

describe('harness clean-up', () => {
  it('a bench ended by SIGTERM takes its agents and directory with it', async () => {
    await endWhileRunning('SIGTERM');
  });
  it('so does one ended by SIGINT (Ctrl-C)', async () => {
    await endWhileRunning('SIGINT');
  });
  it('and one that exits before stopping its cluster', async () => {
    await endWhileRunning('exit');
  });
});
