// The image replication scenario of the lab test and the images benchmark: one agent per site,
// each host's link shaped with tc tbf, an image pushed at site 1 (from inside that host, so the push
// itself does not cross the shaped link), and the time until every site holds a verified copy,
// from the agents' own log timestamps.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../agent/version.js';
import { CLI, type AgentProcess } from './agent-process.js';
import type { Host, Lab } from './lab.js';
import { waitFor } from './wait.js';

export interface SiteAgent {
  host: Host;
  agent: AgentProcess;
  site: string;
}

export async function startSites(lab: Lab, n: number, args: string[] = []): Promise<SiteAgent[]> {
  const hosts = Array.from({ length: n }, (_, i) => lab.addHost(`s${i + 1}`));
  const agents = await lab.startCluster(hosts, (h) => h.name, args);
  return agents.map((agent, i) => ({ agent, host: hosts[i], site: `s${i + 1}` }));
}

/** Writes `bytes` random bytes to `file`. */
export function randomFile(file: string, bytes: number): void {
  const fd = openSync(file, 'w');
  const block = 4 << 20;
  for (let o = 0; o < bytes; o += block) writeSync(fd, randomBytes(Math.min(block, bytes - o)));
  closeSync(fd);
}

/** Rewrites `fraction` of a file's bytes in `places` random regions (an "update" of an image). */
export function scatterUpdate(file: string, fraction: number, places: number): number {
  const fd = openSync(file, 'r+');
  try {
    const size = Number(spawnSync('stat', ['-c', '%s', file], { encoding: 'utf8' }).stdout.trim());
    const per = Math.max(1, Math.floor((size * fraction) / places));
    for (let p = 0; p < places; p++) {
      const pos = Math.floor(((p + Math.random()) / places) * (size - per));
      writeSync(fd, randomBytes(per), 0, per, pos);
    }
    const probe = Buffer.alloc(1);
    readSync(fd, probe, 0, 1, 0);
    return per * places;
  } finally {
    closeSync(fd);
  }
}

/** Pushes `file` as `ref` at `at`, from inside its host; returns the agent's "image pushed" log line time (ms). */
export async function pushFrom(
  lab: Lab,
  at: SiteAgent,
  file: string,
  ref: string,
): Promise<{ pushedAt: number; version: number }> {
  const mark = at.agent.logs.length;
  const r = spawnSync(
    'ip',
    [
      'netns',
      'exec',
      at.host.ns,
      process.execPath,
      CLI,
      'image',
      'push',
      file,
      ref,
      '--api',
      at.agent.api,
      '--data',
      at.agent.dataDir,
      '--json',
    ],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  if (r.status !== 0) throw new Error(`push failed: ${r.stderr}`);
  // only a log line written after this push counts (an earlier push of the same tag logged too)
  const line = await waitFor(
    () => at.agent.logs.slice(mark).find((l) => l.msg === 'image pushed'),
    {
      timeout: 10_000,
      message: `"image pushed" from ${at.agent.name}`,
    },
  );
  const version = (JSON.parse(r.stdout) as { version: number }).version;
  if (Number(line.version) !== version)
    throw new Error(
      `push answered version ${version} but the agent logged ${String(line.version)}`,
    );
  return { pushedAt: Date.parse(String(line.time)), version };
}

/** Waits until every agent logged "pull complete" for ref@version (the origin has it already). */
export async function waitComplete(
  sites: SiteAgent[],
  ref: string,
  version: number,
  timeoutMs: number,
): Promise<Map<string, number>> {
  const done = new Map<string, number>();
  await waitFor(
    () => {
      for (const s of sites.slice(1)) {
        if (done.has(s.site)) continue;
        const l = s.agent.logs.find(
          (x) => x.msg === 'pull complete' && x.image === ref && Number(x.version) === version,
        );
        if (l) done.set(s.site, Date.parse(String(l.time)));
      }
      return done.size === sites.length - 1;
    },
    {
      timeout: timeoutMs,
      interval: 200,
      message: () =>
        `every site to complete ${ref} v${version} (done: ${[...done.keys()].join(',')})`,
    },
  );
  return done;
}

export async function metricSum(a: AgentProcess, re: RegExp): Promise<number> {
  const text = await (await fetch(`${a.api}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

export async function verifyAll(
  sites: SiteAgent[],
  ref: string,
): Promise<Array<{ site: string; ok: boolean; error?: string }>> {
  const i = ref.lastIndexOf(':');
  const path = `/v1/images/${encodeURIComponent(ref.slice(0, i))}/${encodeURIComponent(ref.slice(i + 1))}/verify`;
  return Promise.all(
    sites.map(async (s) => {
      const r = (await s.agent.http('POST', path)).json as { ok: boolean; error?: string };
      return { site: s.site, ok: r.ok, error: r.error };
    }),
  );
}

export const TCP_BLAST = join(projectRoot(), 'dist', 'bench', 'harness', 'tcp-blast.js');
