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
  // the agent says why it could not start on stderr (a port in use, a bad key file): keep the
  // last line to show, not only the log's name
  let lastErr = '';
  child.stderr!.on('data', (b: Buffer) => {
    log.write(b);
    const lines = b.toString('utf8').trim().split('\n');
    if (lines.at(-1)) lastErr = lines.at(-1)!;
  });
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
      reject(
        new Error(
          `${a.name} exited with ${code}${lastErr ? `: ${lastErr}` : ''} (log: ${a.data}.log; the demo uses ports ${BASE}-${BASE + 22}, DEMO_BASE_PORT=N moves them)`,
        ),
      ),
    );
  });
  a.token = readFileSync(join(a.data, 'admin.token'), 'utf8').trim();
}

async function api(a: DemoAgent, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(a.api + path, {
    method,
    headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} on ${a.name}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

let stopping = false;

/** Stops every agent started so far (SIGTERM: they leave), then exits; SIGKILL after 5 s. */
function shutdown(code: number): void {
  stopping = true;
  const running = AGENTS.filter((a) => a.child && a.child.exitCode === null && !a.child.killed);
  if (running.length === 0) process.exit(code);
  say('\nstopping the demo agents...');
  let left = running.length;
  for (const a of running) {
    a.child!.once('exit', () => --left === 0 && process.exit(code));
    a.child!.kill('SIGTERM');
  }
  setTimeout(() => {
    for (const a of running) a.child!.kill('SIGKILL');
    process.exit(code);
  }, 5000).unref();
}

async function main(): Promise<void> {
  // from the first agent on: a Ctrl-C (or a kill of the demo alone) while they start stops them
  process.once('SIGINT', () => shutdown(0));
  process.once('SIGTERM', () => shutdown(0));
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

  for (const step of DEMO_STEPS) await step(AGENTS);

  say('\nThe cluster is running. Try, in another terminal:');
  for (const hint of demoHints(AGENTS)) say(`  ${hint}`);
  say(`Logs: ${DIR}/<agent>.log. Press Ctrl-C to stop.`);
}

async function waitUntil(
  what: string,
  fn: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Steps each capability adds to the tour; each prints what it shows. */
export const DEMO_STEPS: Array<(agents: DemoAgent[]) => Promise<void>> = [
  // membership
  async (agents) => {
    await waitUntil('all members alive everywhere', async () => {
      for (const a of agents) {
        const ms = (await api(a, 'GET', '/v1/members')) as Array<{ state: string }>;
        if (ms.filter((m) => m.state === 'alive').length !== agents.length) return false;
      }
      return true;
    });
    const ms = (await api(agents[0], 'GET', '/v1/members')) as Array<{
      name: string;
      site: string;
      state: string;
    }>;
    say(`\nmembership: ${ms.map((m) => `${m.name}@${m.site} ${m.state}`).join(', ')}`);
  },
  // service discovery
  async (agents) => {
    const [p1, p2, b1] = agents;
    await api(p2, 'PUT', '/v1/services/web-paris', { name: 'web', port: 8080, tags: ['demo'] });
    await api(b1, 'PUT', '/v1/services/web-berlin', { name: 'web', port: 8081, tags: ['demo'] });
    await waitUntil(
      'web on every agent',
      async () => ((await api(p1, 'GET', '/v1/discover/web')) as unknown[]).length === 2,
    );
    const fromParis = (await api(p1, 'GET', '/v1/discover/web')) as Array<{
      node: string;
      site: string;
      port: number;
    }>;
    const fromBerlin = (await api(b1, 'GET', '/v1/discover/web')) as Array<{
      node: string;
      site: string;
      port: number;
    }>;
    say(`discovery: "web" registered on paris-2 and berlin-1`);
    say(
      `  from paris-1, nearest first:  ${fromParis.map((i) => `${i.node}:${i.port}`).join(', ')}`,
    );
    say(
      `  from berlin-1, nearest first: ${fromBerlin.map((i) => `${i.node}:${i.port}`).join(', ')}`,
    );
  },
  // replicated state
  async (agents) => {
    const [p1, , b1] = agents;
    const put = await fetch(`${p1.api}/v1/kv/demo/greeting`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p1.token}` },
      body: 'hello from paris',
    });
    const { version } = (await put.json()) as { version: string };
    await waitUntil(
      'the key on berlin-1',
      async () =>
        (
          await fetch(`${b1.api}/v1/kv/demo/greeting`, {
            headers: { authorization: `Bearer ${b1.token}` },
          })
        ).ok,
    );
    const v = await (
      await fetch(`${b1.api}/v1/kv/demo/greeting`, {
        headers: { authorization: `Bearer ${b1.token}` },
      })
    ).text();
    say(`kv: demo/greeting written at paris-1 (version ${version}), read at berlin-1: "${v}"`);
  },
  // images
  async (agents) => {
    const [p1] = agents;
    const size = 16 * 1024 * 1024;
    const body = new Uint8Array(size);
    for (let o = 0; o < size; o += 65536)
      crypto.getRandomValues(body.subarray(o, Math.min(size, o + 65536)));
    const t0 = Date.now();
    const res = await fetch(`${p1.api}/v1/images/demo/disk/v1?sites=all`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p1.token}` },
      body,
    });
    if (!res.ok) throw new Error(`image push: ${await res.text()}`);
    await waitUntil(
      'the image at every site',
      async () => {
        const st = (await api(p1, 'GET', '/v1/images/demo/disk/v1')) as {
          sites: Array<{ placed: boolean; wanted: number; complete: string[] }>;
        };
        return st.sites.every((s) => !s.placed || s.complete.length >= s.wanted);
      },
      120_000,
    );
    const st = (await api(p1, 'GET', '/v1/images/demo/disk/v1')) as {
      sites: Array<{ site: string; complete: string[] }>;
    };
    say(
      `images: pushed 16 MiB as demo/disk:v1 at paris-1; a full copy in every site after ${((Date.now() - t0) / 1000).toFixed(1)} s (${st.sites.map((s) => `${s.site}: ${s.complete.join(',')}`).join('; ')})`,
    );
  },
];

/**
 * Commands printed at the end for the user to try, from any directory: the CLI by its path (a bare
 * `npx edgeswarm` works only inside the clone, and elsewhere would look the name up on the
 * registry), and the agent to kill by its pid (a name pattern could match someone else's agent).
 */
export function demoHints(agents: DemoAgent[]): string[] {
  const [p, , b] = agents;
  return [
    `alias edgeswarm="node ${CLI}"`,
    `export EDGESWARM_API=${p.api} EDGESWARM_DATA=${p.data}`,
    'edgeswarm status',
    'edgeswarm members',
    'edgeswarm discover web',
    `dig @127.0.0.1 -p ${BASE + 20} web.service.edgeswarm SRV`,
    'edgeswarm kv get demo/greeting',
    'edgeswarm image status demo/disk:v1',
    `kill -9 ${b.child?.pid ?? '<pid>'} && sleep 2 && edgeswarm members   # ${b.name}: watch it detected`,
  ];
}

main().catch((err: unknown) => {
  if (stopping) return; // an agent exiting because we stop it is not a failure
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  for (const a of AGENTS) a.child?.kill('SIGKILL');
  process.exit(1);
});
