// `npm run bench -- images [--mib 256] [--sites 8] [--rate 100mbit] [--skip-lab] [--skip-central]`
//   (a) lab: time to get an image to all sites (one agent per site, every link shaped with tc tbf),
//       beside a central master sending the whole image to every site (real TCP, same links) and
//       the single-link time (raw TCP over one shaped link); origin upload / image size;
//   (b) an update rewriting 1% of the image in 100 scattered places, pushed as a new version: bytes
//       crossing the WAN per receiving site / image size, beside rsync's bytes for the same update;
//   (c) one pull over loopback (no shaping) beside raw TCP and rsync over ssh, as ratios;
//   (d) chunking throughput per core and the chunk-level cost of the update (bench/chunking.ts).
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chunkingReport } from './chunking.js';
import {
  metricSum,
  pushFrom,
  randomFile,
  scatterUpdate,
  startSites,
  TCP_BLAST,
  verifyAll,
  waitComplete,
  type SiteAgent,
} from './harness/image-lab.js';
import { Lab, labAvailability } from './harness/lab.js';
import { LocalCluster } from './harness/local-cluster.js';
import { LoopbackSshd } from './harness/sshd.js';
import { benchOptions, BenchUsageError, writeReport, type BenchReport } from './lib.js';

const MiB = 1024 * 1024;

/** Chunk and manifest bytes each agent received from other sites so far. */
function wanBytesIn(sites: SiteAgent[]): Promise<number[]> {
  return Promise.all(
    sites.map((s) =>
      metricSum(s.agent, /^edgeswarm_replication_bytes_total\{direction="in",scope="wan"\} (\d+)/),
    ),
  );
}

function rateBits(rate: string): number {
  const m = /^(\d+(?:\.\d+)?)(k|m|g)bit$/i.exec(rate);
  if (!m) throw new BenchUsageError(`--rate: expected e.g. 100mbit, got ${JSON.stringify(rate)}`);
  return Number(m[1]) * { k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase() as 'k' | 'm' | 'g'];
}

/** Starts tcp-blast receivers (in namespaces when given) and one sender; returns the slowest ms. */
async function blast(
  file: string,
  bytes: number,
  from: string[] | undefined,
  to: Array<{ ns?: string; host: string }>,
): Promise<number> {
  const wrap = (ns: string | undefined, args: string[]) =>
    (ns ? ['ip', ['netns', 'exec', ns, process.execPath, ...args]] : [process.execPath, args]) as [
      string,
      string[],
    ];
  const port = 29000 + Math.floor(Math.random() * 1000);
  const receivers = to.map((t) => {
    const [cmd, args] = wrap(t.ns, [TCP_BLAST, 'recv', t.host, String(port), String(bytes)]);
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! });
    const ready = new Promise<void>((r) => lines.once('line', () => r()));
    const done = new Promise<number>((r) =>
      lines.on('line', (l) => l.includes('"ms"') && r((JSON.parse(l) as { ms: number }).ms)),
    );
    return { ready, done };
  });
  await Promise.all(receivers.map((r) => r.ready));
  const [cmd, args] = from
    ? [
        'ip',
        [
          'netns',
          'exec',
          from[0],
          process.execPath,
          TCP_BLAST,
          'send',
          file,
          ...to.map((t) => `${t.host}:${port}`),
        ],
      ]
    : [process.execPath, [TCP_BLAST, 'send', file, ...to.map((t) => `${t.host}:${port}`)]];
  const t0 = performance.now();
  const sender = spawn(cmd as string, args as string[], { stdio: 'inherit' });
  await Promise.all(receivers.map((r) => r.done));
  sender.kill();
  return performance.now() - t0;
}

async function labPart(
  mib: number,
  nSites: number,
  rate: string,
  central: boolean,
  dir: string,
  figures: BenchReport['figures'],
  targets: NonNullable<BenchReport['targets']>,
): Promise<void> {
  const lab = new Lab();
  try {
    const sites = await startSites(lab, nSites);
    for (const s of sites) lab.shape(s.host, rate);
    const bytes = mib * MiB;
    const file = join(dir, 'image.bin');
    randomFile(file, bytes);
    const ref = 'bench/disk:v1';
    console.log(`(a) pushing ${mib} MiB at site 1, ${nSites} sites, links ${rate}`);
    const { pushedAt, version } = await pushFrom(lab, sites[0], file, ref);
    const done = await waitComplete(sites, ref, version, 900_000);
    const allMs = Math.max(...done.values()) - pushedAt;
    const originOut = await metricSum(
      sites[0].agent,
      /^edgeswarm_replication_bytes_total\{direction="out"[^}]*\} (\d+)/,
    );
    const verified = await verifyAll(sites, ref);
    const boundS = (bytes * 8) / rateBits(rate);
    console.log(`    all sites complete after ${(allMs / 1000).toFixed(1)} s; measuring baselines`);
    const singleMs = await blast(
      file,
      bytes,
      [sites[0].host.ns],
      [{ ns: sites[1].host.ns, host: sites[1].host.ip }],
    );
    figures.a_image_mib = mib;
    figures.a_sites = nSites;
    figures.a_link = rate;
    figures.a_all_sites_s = round(allMs / 1000);
    figures.a_single_link_raw_tcp_s = round(singleMs / 1000);
    figures.a_single_link_bound_s = round(boundS);
    figures.a_ratio_to_single_link = round(allMs / singleMs, 2);
    figures.a_origin_upload_over_image = round(originOut / bytes, 2);
    figures.a_verified_sites = verified.filter((v) => v.ok).length;
    if (central) {
      const centralMs = await blast(
        file,
        bytes,
        [sites[0].host.ns],
        sites.slice(1).map((s) => ({ ns: s.host.ns, host: s.host.ip })),
      );
      figures.a_central_master_s = round(centralMs / 1000);
      figures.a_speedup_over_central_master = round(centralMs / allMs, 2);
    }
    targets.push({
      what: `${mib} MiB to ${nSites} sites / single-link time`,
      target: '<= 1.25',
      measured: String(figures.a_ratio_to_single_link),
      met: allMs / singleMs <= 1.25,
    });
    targets.push({
      what: 'origin upload / image size',
      target: '<= 1.5',
      measured: String(figures.a_origin_upload_over_image),
      met: originOut / bytes <= 1.5,
    });

    // (b) the 1% scattered update, as a new version of the same tag
    const old = join(dir, 'old.bin');
    copyFileSync(file, old);
    const changed = scatterUpdate(file, 0.01, 100);
    const before = await wanBytesIn(sites.slice(1));
    console.log('(b) pushing the 1%-in-100-places update');
    const v2 = await pushFrom(lab, sites[0], file, ref);
    const done2 = await waitComplete(sites, ref, v2.version, 600_000);
    const after = await wanBytesIn(sites.slice(1));
    const perSite = after.map((a, i) => a - before[i]);
    const meanWan = perSite.reduce((x, y) => x + y, 0) / perSite.length;
    const rs = rsyncBytes(old, file, dir);
    figures.b_changed_bytes = changed;
    figures.b_wan_bytes_per_site_mean = Math.round(meanWan);
    figures.b_wan_bytes_per_site_max = Math.max(...perSite);
    figures.b_wan_pct_of_image = round((100 * meanWan) / bytes, 2);
    figures.b_rsync_bytes = rs;
    figures.b_rsync_pct_of_image = round((100 * rs) / bytes, 2);
    figures.b_update_all_sites_s = round((Math.max(...done2.values()) - v2.pushedAt) / 1000);
    targets.push({
      what: 'WAN bytes of a 1% scattered update (per site) / image',
      target: '<= 3%',
      measured: `${figures.b_wan_pct_of_image}%`,
      met: (100 * meanWan) / bytes <= 3,
    });
  } finally {
    await lab.destroy();
  }
}

/** Bytes rsync moves (sent + received) to turn `old` into `updated`, delta algorithm on. */
function rsyncBytes(old: string, updated: string, dir: string): number {
  const dst = join(dir, 'rsync-dst.bin');
  copyFileSync(old, dst);
  const r = spawnSync('rsync', ['--no-whole-file', '--stats', updated, dst], { encoding: 'utf8' });
  const sent = Number(/Total bytes sent: ([\d,]+)/.exec(r.stdout)?.[1].replace(/,/g, '') ?? NaN);
  const recv = Number(
    /Total bytes received: ([\d,]+)/.exec(r.stdout)?.[1].replace(/,/g, '') ?? NaN,
  );
  return sent + recv;
}

async function loopbackPart(
  mib: number,
  dir: string,
  figures: BenchReport['figures'],
): Promise<void> {
  const bytes = mib * MiB;
  const file = join(dir, 'loop.bin');
  randomFile(file, bytes);
  const cluster = new LocalCluster();
  try {
    const a = await cluster.spawn('a', 'sa', ['--log-level', 'info']);
    const b = await cluster.spawn('b', 'sb', ['--log-level', 'info'], a.addrs[0]);
    cluster.agents.push(a, b);
    await cluster.converged(2);
    console.log(`(c) one pull of ${mib} MiB over loopback`);
    const r = spawnSync(
      process.execPath,
      [
        join(process.cwd(), 'dist/agent/cli/main.js'),
        'image',
        'push',
        file,
        'loop/img:v1',
        '--sites',
        'sb',
        '--api',
        a.api,
        '--data',
        a.dataDir,
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`push: ${r.stderr}`);
    const started = await b.waitForLog((l) => l.msg === 'pull started', 60_000);
    const complete = await b.waitForLog((l) => l.msg === 'pull complete', 600_000);
    const pullMs = Date.parse(String(complete.time)) - Date.parse(String(started.time));
    const tcpMs = await blast(file, bytes, undefined, [{ host: '127.0.0.1' }]);
    figures.c_pull_mb_per_s = round(bytes / 1e6 / (pullMs / 1000));
    figures.c_raw_tcp_mb_per_s = round(bytes / 1e6 / (tcpMs / 1000));
    figures.c_pull_over_raw_tcp = round(tcpMs / pullMs, 3);
    const why = LoopbackSshd.available();
    if (why) figures.c_rsync_ssh = `not measured: ${why}`;
    else {
      const sshd = new LoopbackSshd();
      try {
        await sshd.start();
        const t0 = performance.now();
        const rs = spawnSync(
          'rsync',
          ['-e', sshd.rsh, '--whole-file', file, `root@127.0.0.1:${join(dir, 'rsync-copy.bin')}`],
          { encoding: 'utf8' },
        );
        if (rs.status !== 0) throw new Error(`rsync: ${rs.stderr}`);
        const rsMs = performance.now() - t0;
        figures.c_rsync_ssh_mb_per_s = round(bytes / 1e6 / (rsMs / 1000));
        figures.c_pull_over_rsync_ssh = round(rsMs / pullMs, 3);
      } finally {
        sshd.stop();
      }
    }
  } finally {
    await cluster.stop();
  }
}

function round(v: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

export default {
  description:
    'images to 8 sites vs central master and single link; 1% update WAN bytes vs rsync; pull vs raw TCP and rsync/ssh; chunking MB/s',
  async run(args: string[]): Promise<void> {
    const o = benchOptions(args, {
      values: ['mib', 'sites', 'rate'],
      switches: ['skip-lab', 'skip-central', 'skip-loopback'],
    });
    const mib = o.int('mib', 256);
    const nSites = o.int('sites', 8);
    const rate = o.str('rate') ?? '100mbit';
    rateBits(rate); // a bad rate is refused before anything starts
    const startedAt = new Date().toISOString();
    const figures: BenchReport['figures'] = {};
    const targets: NonNullable<BenchReport['targets']> = [];
    const notes: string[] = [
      'times come from the agents\' own log timestamps: from "image pushed" at the origin to the last "pull complete"',
      'WAN bytes are chunk and manifest bytes received from other sites (edgeswarm_replication_bytes_total{direction="in",scope="wan"}); gossip announcements of ~100 B are not counted',
    ];
    const dir = mkdtempSync(join(tmpdir(), 'edgeswarm-bench-img-'));
    try {
      const avail = labAvailability();
      if (o.has('skip-lab')) notes.push('lab part skipped (--skip-lab)');
      else if (!avail.ok) notes.push(`lab part not run: ${avail.reason}`);
      else await labPart(mib, nSites, rate, !o.has('skip-central'), dir, figures, targets);
      if (!o.has('skip-loopback')) await loopbackPart(mib, dir, figures);
      const chunking = await chunkingReport({ sizeMiB: mib });
      for (const [k, v] of Object.entries(chunking.figures)) figures[`d_${k}`] = v;
      targets.push(...(chunking.targets ?? []));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    writeReport({
      name: 'images',
      startedAt,
      host: { cpus: cpus().length, node: process.version },
      figures,
      targets,
      notes,
    });
  },
};
