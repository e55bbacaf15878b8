// `npm run bench -- membership [--sizes 10,50] [--kills 10] [--no-memberlist] [--sim 1000,10000]`
//   (a) SIGKILL → `dead` on every other member, edgeswarm agent processes on loopback, N=10 and 50,
//       median and p99 over --kills kills, beside hashicorp/memberlist (DefaultLANConfig) measured
//       the same way in the same run (Go + golang-github-hashicorp-memberlist-dev, when installed);
//   (b) from the simulator: time for an update to reach 99% of 10,000 nodes at 5% loss, detection,
//       and messages per member per second at 1,000 and 10,000 nodes.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { projectRoot } from '../agent/version.js';
import { LocalCluster } from './harness/local-cluster.js';
import { sleep, waitFor } from './harness/wait.js';
import {
  benchOptions,
  coresUsed,
  median,
  percentile,
  writeReport,
  type BenchReport,
} from './lib.js';

/** CPU of a converged cluster doing nothing but membership, measured over this long (ms). */
const IDLE_WINDOW_MS = 10_000;

/** Cores used by the converged, idle cluster of these processes (printed and returned). */
async function idleCluster(label: string, pids: Array<number | undefined>): Promise<number> {
  const cores = await coresUsed(
    pids.map((p) => p ?? 0),
    IDLE_WINDOW_MS,
  );
  console.log(`  ${label}: ${cores} cores used by the idle cluster`);
  return cores;
}

interface Detection {
  /** Per kill: the time until the last other member logged the victim dead (ms). */
  times: number[];
  /** Cores used by all N processes of the converged cluster before the first kill. */
  idleCores: number;
}

async function edgeswarmDetection(n: number, kills: number): Promise<Detection> {
  const cluster = new LocalCluster();
  const out: number[] = [];
  let idleCores = NaN;
  try {
    console.log(`edgeswarm: starting ${n} agents`);
    const agents = await cluster.start({ n, logLevel: 'info' });
    await cluster.converged(n, 180_000);
    await sleep(3000);
    idleCores = await idleCluster(
      `N=${n}`,
      agents.map((a) => a.child.pid),
    );
    for (let k = 0; k < kills; k++) {
      const idx = 1 + ((k * 7) % (n - 1));
      const victim = cluster.agents[idx];
      const others = cluster.agents.filter((a) => a !== victim);
      const marks = others.map((a) => a.logs.length);
      const t0 = Date.now();
      victim.kill('SIGKILL');
      const seen = await waitFor(
        () => {
          const times: number[] = [];
          for (let i = 0; i < others.length; i++) {
            const line = others[i].logs
              .slice(marks[i])
              .find((l) => l.msg === 'member:down' && l.id === victim.peerId);
            if (!line) return undefined;
            times.push(Date.parse(String(line.time)));
          }
          return times;
        },
        { timeout: 60_000, interval: 20, message: `${victim.name} dead everywhere` },
      );
      const ms = Math.max(...seen) - t0;
      out.push(ms);
      console.log(
        `  N=${n} kill ${k + 1}/${kills}: dead on all ${others.length} others after ${ms} ms`,
      );
      await victim.exited;
      const restarted = await cluster.spawn(
        victim.name,
        'default',
        ['--log-level', 'info'],
        agents[0].addrs[0],
        victim.dataDir,
      );
      cluster.agents[idx] = restarted;
      await waitFor(
        async () => {
          const r = await agents[0].http('GET', '/v1/members');
          return (
            (r.json as Array<{ state: string }>).filter((m) => m.state === 'alive').length === n
          );
        },
        { timeout: 60_000, interval: 250 },
      );
      await sleep(2000);
    }
    void agents;
  } finally {
    await cluster.stop();
  }
  return { times: out, idleCores };
}

interface MlNode {
  name: string;
  port: number;
  child: ChildProcess;
  events: Array<{ event: string; node: string; t: number }>;
}

function buildMemberlist(): string | undefined {
  const src = join(projectRoot(), 'bench', 'baselines', 'memberlist', 'main.go');
  const bin = join(tmpdir(), 'edgeswarm-memberlist-agent');
  if (!existsSync('/usr/share/gocode/src/github.com/hashicorp/memberlist')) return undefined;
  const r = spawnSync('go', ['build', '-o', bin, src], {
    env: {
      ...process.env,
      GO111MODULE: 'off',
      GOPATH: '/usr/share/gocode',
      GOCACHE: mkdtempSync(join(tmpdir(), 'gocache-')),
    },
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    console.log(`memberlist baseline not built: ${r.stderr || r.error?.message}`);
    return undefined;
  }
  return bin;
}

async function startMl(
  bin: string,
  name: string,
  port: number,
  joinPort?: number,
): Promise<MlNode> {
  const child = spawn(
    bin,
    ['-name', name, '-port', String(port), ...(joinPort ? ['-join', `127.0.0.1:${joinPort}`] : [])],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const node: MlNode = { name, port, child, events: [] };
  let ready!: () => void;
  let failed!: (err: Error) => void;
  const isReady = new Promise<void>((res, rej) => {
    ready = res;
    failed = rej;
  });
  child.on('exit', (code) => failed(new Error(`memberlist node ${name} exited with ${code}`)));
  createInterface({ input: child.stdout! }).on('line', (l) => {
    try {
      const e = JSON.parse(l) as { event: string; node: string; t: number };
      if (e.event === 'ready') ready();
      else node.events.push(e);
    } catch {
      // ignore
    }
  });
  await isReady;
  return node;
}

async function memberlistDetection(bin: string, n: number, kills: number): Promise<Detection> {
  // below Linux's ephemeral range (32768-60999), so that no outgoing connection holds a port
  const base = 20000 + Math.floor(Math.random() * 1000) * 10;
  const nodes: MlNode[] = [];
  const out: number[] = [];
  let idleCores = NaN;
  try {
    console.log(`memberlist: starting ${n} nodes`);
    nodes.push(await startMl(bin, 'm0', base));
    for (let i = 1; i < n; i++) nodes.push(await startMl(bin, `m${i}`, base + i, base));
    await waitFor(
      () =>
        nodes.every(
          (x) => new Set(x.events.filter((e) => e.event === 'join').map((e) => e.node)).size >= n,
        ),
      {
        timeout: 180_000,
        interval: 100,
        message: `memberlist: all ${n} nodes to see each other`,
      },
    );
    await sleep(3000);
    idleCores = await idleCluster(
      `memberlist N=${n}`,
      nodes.map((x) => x.child.pid),
    );
    for (let k = 0; k < kills; k++) {
      const idx = 1 + ((k * 7) % (n - 1));
      const victim = nodes[idx];
      const others = nodes.filter((x) => x !== victim);
      const marks = others.map((x) => x.events.length);
      const t0 = Date.now();
      victim.child.kill('SIGKILL');
      const times = await waitFor(
        () => {
          const ts: number[] = [];
          for (let i = 0; i < others.length; i++) {
            const e = others[i].events
              .slice(marks[i])
              .find((x) => x.event === 'leave' && x.node === victim.name);
            if (!e) return undefined;
            ts.push(e.t);
          }
          return ts;
        },
        { timeout: 120_000, interval: 20, message: `memberlist ${victim.name} dead everywhere` },
      );
      const ms = Math.max(...times) - t0;
      out.push(ms);
      console.log(`  memberlist N=${n} kill ${k + 1}/${kills}: ${ms} ms`);
      if (victim.child.exitCode === null && victim.child.signalCode === null)
        await new Promise((r) => victim.child.once('exit', r));
      // memberlist refuses a name that is still known as dead with the same address: come back under a new name
      const back = await startMl(bin, `${victim.name}r${k}`, victim.port, base);
      nodes[idx] = back;
      await waitFor(
        () => nodes.every((x) => x.events.some((e) => e.event === 'join' && e.node === back.name)),
        { timeout: 60_000, interval: 100 },
      );
      await sleep(2000);
    }
  } finally {
    for (const x of nodes) x.child.kill('SIGKILL');
  }
  return { times: out, idleCores };
}

type SimRow = Record<string, number | Record<string, number>>;

function simFigures(sizes: number[]): SimRow[] {
  const script = join(projectRoot(), 'dist', 'test', 'sim', 'bench-sim.js');
  const r = spawnSync(
    process.execPath,
    ['--max-old-space-size=12000', script, ...sizes.map(String)],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  if (r.status !== 0) throw new Error(`simulator failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as SimRow[];
}

export default {
  description:
    'SIGKILL→dead everywhere at N=10/50 processes beside memberlist; simulator dissemination at 10,000 nodes',
  async run(args: string[]): Promise<void> {
    const o = benchOptions(args, {
      values: ['sizes', 'kills', 'sim'],
      switches: ['no-memberlist'],
    });
    const sizes = o.ints('sizes', [10, 50]).filter((x) => x > 1);
    const kills = o.int('kills', 10);
    const simSizes = o.ints('sim', [1000, 10000]).filter((x) => x > 0);
    const startedAt = new Date().toISOString();
    const figures: Record<string, number | string> = {};
    const targets: NonNullable<BenchReport['targets']> = [];
    const bin = o.has('no-memberlist') ? undefined : buildMemberlist();
    for (const n of sizes) {
      const esRun = await edgeswarmDetection(n, kills);
      const es = esRun.times;
      figures[`edgeswarm_n${n}_detect_median_ms`] = median(es);
      figures[`edgeswarm_n${n}_detect_p99_ms`] = percentile(es, 99);
      figures[`edgeswarm_n${n}_idle_cores`] = esRun.idleCores;
      if (bin) {
        const mlRun = await memberlistDetection(bin, n, kills);
        const ml = mlRun.times;
        figures[`memberlist_n${n}_detect_median_ms`] = median(ml);
        figures[`memberlist_n${n}_detect_p99_ms`] = percentile(ml, 99);
        figures[`memberlist_n${n}_idle_cores`] = mlRun.idleCores;
        figures[`ratio_n${n}_median_edgeswarm_over_memberlist`] =
          Math.round((median(es) / median(ml)) * 100) / 100;
      }
      if (n === 50)
        targets.push({
          what: 'SIGKILL → dead on every member, N=50, lan (p99)',
          target: '<= 3000 ms',
          measured: `${percentile(es, 99)} ms`,
          met: percentile(es, 99) <= 3000,
        });
    }
    if (!bin)
      figures.memberlist = o.has('no-memberlist')
        ? 'not measured (--no-memberlist)'
        : 'not measured: Go or golang-github-hashicorp-memberlist-dev not installed';
    if (simSizes.length > 0) {
      for (const s of simFigures(simSizes)) {
        for (const [k, v] of Object.entries(s)) {
          if (k === 'nodes') continue;
          if (typeof v === 'number') figures[`sim_n${String(s.nodes)}_${k}`] = v;
          else
            for (const [t, x] of Object.entries(v))
              figures[`sim_n${String(s.nodes)}_${k}_${t}`] = x;
        }
        if (s.nodes === 10000 && typeof s.update_99pct_ms === 'number')
          targets.push({
            what: 'update reaches 99% of 10,000 nodes at 5% loss (simulated)',
            target: '<= 1500 ms',
            measured: `${s.update_99pct_ms} ms`,
            met: s.update_99pct_ms <= 1500,
          });
      }
      const small = figures[`sim_n${simSizes[0]}_messages_per_member_per_s`];
      const big = figures[`sim_n${simSizes[simSizes.length - 1]}_messages_per_member_per_s`];
      if (typeof small === 'number' && typeof big === 'number')
        targets.push({
          what: 'messages per member per second do not grow with N (simulated)',
          target: `n${simSizes[simSizes.length - 1]} <= 1.25 × n${simSizes[0]}`,
          measured: `${big} vs ${small}`,
          met: big <= small * 1.25,
        });
    }
    writeReport({
      name: 'membership',
      startedAt,
      host: { cpus: cpus().length, node: process.version },
      figures,
      targets,
      notes: [
        'detection = time from SIGKILL until the last other member logged member:down (agent log timestamps, same clock)',
        'memberlist runs DefaultLANConfig (probe 1 s); edgeswarm runs the lan preset (probe 200 ms) over libp2p (cluster-key private network, Noise, yamux)',
        'idle cores: CPU seconds / wall seconds of all N processes over 10 s after convergence, before the first kill',
        'the 10%-loss false-dead check is the lab test test/lab/membership.test.ts (network namespaces, iptables statistic)',
      ],
    });
  },
};
