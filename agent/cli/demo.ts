#!/usr/bin/env node
// `npm run demo`: starts a small two-site cluster of local agents on loopback, exercises it, and
// leaves it running until Ctrl-C, printing how to query it. State lives in ./.edgeswarm-demo.
import '../polyfill.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { generateClusterKey } from '../identity.js';

const BASE = Number(process.env.DEMO_BASE_PORT ?? 17000);
const DIR = resolve(process.env.DEMO_DIR ?? '.edgeswarm-demo');
const CLI = join(fileURLToPath(new URL('.', import.meta.url)), 'main.js');

interface DemoAgent {
  name: string;
  site: string;
  index: number;
  child?: ChildProcess;
  api: string;
  dns: string;
  p2p: string;
  data: string;
  token?: string;
  peerId?: string;
}

const AGENTS: DemoAgent[] = [
  ['paris-1', 'paris'],
  ['paris-2', 'paris'],
  ['berlin-1', 'berlin'],
].map(([name, site], index) => ({
  name,
  site,
  index,
  api: `http://127.0.0.1:${BASE + 10 + index}`,
  dns: `127.0.0.1:${BASE + 20 + index}`,
  p2p: `/ip4/127.0.0.1/tcp/${BASE + index}`,
  data: join(DIR, name),
}));

function say(msg = ''): void {
  process.stdout.write(`${msg}\n`);
}

async function start(a: DemoAgent, keyFile: string, joinAddr?: string): Promise<void> {
  mkdirSync(a.data, { recursive: true });
  const args = [
    CLI,
    'agent',
    '--name',
    a.name,
    '--site',
    a.site,
    '--data',
    a.data,
    '--listen',
    a.p2p,
    '--api',
    a.api.replace('http://', ''),
    '--dns',
    a.dns,
    '--cluster-key',
    keyFile,
    '--tag',
    `demo=yes`,
    ...(joinAddr ? ['--join', joinAddr] : []),
  ];
  const log = createWriteStream(`${a.data}.log`);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  a.child = child;
  child.stderr!.pipe(log);
  await new Promise<void>((resolveStarted, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      log.write(`${line}\n`);
      try {
        const obj = JSON.parse(line) as { msg?: string; peerId?: string };
        if (obj.msg === 'agent started') {
          a.peerId = obj.peerId;
          resolveStarted();
        }
      } catch {
        // not JSON
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`${a.name} exited with ${code}; see ${a.data}.log`)),
    );
  });
  a.token = readFileSync(join(a.data, 'admin.token'), 'utf8').trim();
}

export async function api(
  a: DemoAgent,
  method: string,
  path: string,
  body?: unknown,
): Promise<unknown> {
  const res = await fetch(a.api + path, {
    method,
    headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} on ${a.name}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function main(): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  const keyFile = join(DIR, 'cluster.key');
  if (!existsSync(keyFile)) writeFileSync(keyFile, generateClusterKey(), { mode: 0o600 });

  say(`edgeswarm demo: ${AGENTS.length} agents in 2 sites on loopback (state in ${DIR})`);
  const [first, ...rest] = AGENTS;
  await start(first, keyFile);
  say(
    `  started ${first.name.padEnd(9)} site ${first.site.padEnd(7)} api ${first.api}  dns ${first.dns}`,
  );
  for (const a of rest) {
    await start(a, keyFile, first.p2p);
    say(`  started ${a.name.padEnd(9)} site ${a.site.padEnd(7)} api ${a.api}  dns ${a.dns}`);
  }
  const shutdown = () => {
    say('\nstopping the demo agents...');
    for (const a of AGENTS) a.child?.kill('SIGTERM');
    setTimeout(() => process.exit(0), 5500).unref();
    let left = AGENTS.length;
    for (const a of AGENTS) a.child?.once('exit', () => --left === 0 && process.exit(0));
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);

  for (const step of DEMO_STEPS) await step(AGENTS);

  const p = AGENTS[0];
  say('\nThe cluster is running. Try, in another terminal:');
  say(`  export EDGESWARM_API=${p.api} EDGESWARM_DATA=${p.data}`);
  say('  npx edgeswarm status');
  for (const hint of DEMO_HINTS) say(`  ${hint}`);
  say(`Logs: ${DIR}/<agent>.log. Press Ctrl-C to stop.`);
}

/** Steps each capability adds to the tour; each prints what it shows. */
export const DEMO_STEPS: Array<(agents: DemoAgent[]) => Promise<void>> = [
  async (agents) => {
    for (const a of agents) {
      const info = (await api(a, 'GET', '/v1/agent')) as { id: string; name: string };
      say(`  ${info.name} is ${info.id}`);
    }
  },
];

/** Commands printed at the end for the user to try. */
export const DEMO_HINTS: string[] = [];

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  for (const a of AGENTS) a.child?.kill('SIGKILL');
  process.exit(1);
});
