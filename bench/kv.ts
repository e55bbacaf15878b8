// `npm run bench -- kv`: the replicated key/value store.
//   (a) time from a write at one agent to visible on every agent, N agent processes (default 50),
//       beside the naive baseline of the client writing the value to every agent itself;
//   (b) catch-up of an agent that missed K changed keys (default 10,000): time, and bytes exchanged
//       beside the changed data (keys + values), and beside raw TCP moving the same bytes.
import { randomBytes } from 'node:crypto';
import { createServer, connect } from 'node:net';
import { cpus } from 'node:os';
import type { AgentProcess } from './harness/agent-process.js';
import { LocalCluster } from './harness/local-cluster.js';
import { watchSse } from './harness/sse.js';
import { sleep, waitFor } from './harness/wait.js';
import { benchOptions, median, percentile, writeReport, type BenchReport } from './lib.js';

async function put(a: AgentProcess, key: string, value: Uint8Array): Promise<void> {
  const res = await fetch(`${a.api}/v1/kv/${encodeURIComponent(key)}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${a.token}` },
    body: value as Uint8Array<ArrayBuffer>,
  });
  if (!res.ok) throw new Error(`put ${key}: ${res.status}`);
  await res.arrayBuffer();
}

async function metric(a: AgentProcess, re: RegExp): Promise<number> {
  const text = await (await fetch(`${a.api}/metrics`)).text();
  let total = 0;
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m) total += Number(m[1]);
  }
  return total;
}

/** Raw TCP between two sockets on loopback: ms to move `bytes`. */
async function rawTcp(bytes: number): Promise<number> {
  const payload = randomBytes(Math.min(bytes, 1 << 20));
  return new Promise((resolve, reject) => {
    let got = 0;
    let t0 = 0;
    const server = createServer((sock) => {
      sock.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= bytes) {
          const ms = performance.now() - t0;
          sock.destroy();
          server.close();
          resolve(ms);
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      const c = connect(port, '127.0.0.1', () => {
        t0 = performance.now();
        let sent = 0;
        const write = () => {
          while (sent < bytes) {
            const n = Math.min(payload.length, bytes - sent);
            sent += n;
            if (!c.write(payload.subarray(0, n))) return c.once('drain', write);
          }
          c.end();
        };
        write();
      });
      c.on('error', reject);
    });
  });
}

async function propagation(n: number, writes: number): Promise<Record<string, number>> {
  const cluster = new LocalCluster();
  try {
    console.log(`starting ${n} agents...`);
    const agents = await cluster.start({ n, logLevel: 'info' });
    await cluster.converged(n, 120_000);
    await sleep(2000);
    const arrivals = new Map<string, number[]>();
    const watches = await Promise.all(
      agents.map((a) =>
        watchSse(`${a.api}/v1/watch?prefix=bench/`, a.token, (data, at) => {
          const e = JSON.parse(data) as { key: string };
          let list = arrivals.get(e.key);
          if (!list) arrivals.set(e.key, (list = []));
          list.push(at);
        }),
      ),
    );
    const visible: number[] = [];
    const naive: number[] = [];
    const value = randomBytes(64);
    for (let i = 0; i < writes; i++) {
      const key = `bench/p/${i}`;
      const writer = agents[Math.floor(Math.random() * agents.length)];
      const t0 = performance.now();
      await put(writer, key, value);
      await waitFor(() => (arrivals.get(key)?.length ?? 0) >= n, {
        timeout: 10_000,
        interval: 5,
        message: `${key} on every agent`,
      });
      visible.push(Math.max(...arrivals.get(key)!) - t0);
      // baseline: the client itself writes the value to every agent, one after the other
      const t1 = performance.now();
      for (const a of agents) await put(a, `bench/naive/${i}`, value);
      naive.push(performance.now() - t1);
      await sleep(50);
    }
    for (const w of watches) w.close();
    return {
      agents: n,
      writes,
      visible_everywhere_p50_ms: round(median(visible)),
      visible_everywhere_p99_ms: round(percentile(visible, 99)),
      visible_everywhere_max_ms: round(Math.max(...visible)),
      baseline_client_writes_every_agent_p50_ms: round(median(naive)),
      baseline_client_writes_every_agent_p99_ms: round(percentile(naive, 99)),
    };
  } finally {
    await cluster.stop();
  }
}

async function catchUp(keys: number, valueSize: number): Promise<Record<string, number>> {
  const cluster = new LocalCluster();
  try {
    const agents = await cluster.start({ n: 3, logLevel: 'info' });
    await cluster.converged(3);
    const [a, b, x] = agents;
    await x.stop('SIGKILL');
    console.log(`writing ${keys} keys while ${x.name} is down...`);
    let changed = 0;
    const writers = [a, b];
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys) {
          const i = next++;
          const key = `bench/c/${String(i).padStart(6, '0')}`;
          const value = randomBytes(valueSize);
          changed += Buffer.byteLength(key) + value.length;
          await put(writers[i % 2], key, value);
        }
      }),
    );
    await sleep(2000);
    const restarted = await cluster.spawn(
      x.name,
      'default',
      ['--log-level', 'info'],
      a.addrs[0],
      x.dataDir,
    );
    cluster.agents.push(restarted);
    const t0 = performance.now();
    await waitFor(
      async () => {
        const r = await restarted.http('GET', '/v1/kv?prefix=bench/c/');
        return (r.json as unknown[]).length === keys;
      },
      { timeout: 120_000, interval: 100, message: 'catch-up' },
    );
    const ms = performance.now() - t0;
    const bytes = await metric(restarted, /^edgeswarm_replication_bytes_total\{[^}]*\} (\d+)/);
    const tcp = await rawTcp(bytes);
    return {
      catchup_keys: keys,
      catchup_value_bytes: valueSize,
      catchup_ms: round(ms),
      catchup_changed_data_bytes: changed,
      catchup_bytes_exchanged: bytes,
      catchup_bytes_ratio: round(bytes / changed, 3),
      baseline_raw_tcp_same_bytes_ms: round(tcp),
    };
  } finally {
    await cluster.stop();
  }
}

function round(v: number, d = 1): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

export default {
  description: 'write→visible on every agent at N=50; catch-up of 10,000 missed keys (time, bytes)',
  async run(args: string[]): Promise<void> {
    const o = benchOptions(args, { values: ['n', 'writes', 'keys', 'value-size'] });
    const n = o.int('n', 50);
    const writes = o.int('writes', 100);
    const keys = o.int('keys', 10_000);
    const valueSize = o.int('value-size', 256);
    const startedAt = new Date().toISOString();
    const prop = await propagation(n, writes);
    const cu = await catchUp(keys, valueSize);
    const figures = { ...prop, ...cu };
    const report: BenchReport = {
      name: 'kv',
      startedAt,
      host: { cpus: cpus().length, node: process.version },
      figures,
      targets: [
        {
          what: `write visible on every agent, p99, N=${n}`,
          target: '<= 1000 ms',
          measured: `${prop.visible_everywhere_p99_ms} ms`,
          met: prop.visible_everywhere_p99_ms <= 1000,
        },
        {
          what: `catch-up of ${keys} keys`,
          target: '<= 10 s',
          measured: `${(cu.catchup_ms / 1000).toFixed(2)} s`,
          met: cu.catchup_ms <= 10_000,
        },
        {
          what: 'catch-up bytes / changed data',
          target: '<= 1.2',
          measured: String(cu.catchup_bytes_ratio),
          met: cu.catchup_bytes_ratio <= 1.2,
        },
      ],
      notes: [
        'bytes exchanged are the state-sync payload bytes at the caught-up agent (both directions), before libp2p framing and encryption',
        'catch-up runs in its own 3-agent cluster; the restarted agent gets the keys from one anti-entropy session',
      ],
    };
    writeReport(report);
  },
};
