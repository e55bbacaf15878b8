// The load score an agent publishes for the `score` discovery strategy. Lower is better.
//
//   score = 0.4 × cpu + 0.2 × net + 0.2 × disk + 0.2 × clients, rounded to 3 decimals, where
//   cpu     = 1-minute load average / number of CPUs            (capped at 4)
//   net     = bytes/s in+out on non-loopback interfaces / LOAD_NET_CAPACITY   (capped at 1)
//   disk    = bytes/s read+written on block devices / LOAD_DISK_CAPACITY      (capped at 1)
//   clients = established TCP connections to this agent's registered service ports
//             / LOAD_CLIENT_CAPACITY                                          (capped at 1)
// Rates are measured over the refresh interval from /proc (Linux); elsewhere only cpu counts. The
// client count is refreshed less often (LOAD_CLIENTS_REFRESH_MS): see there.
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

/** How often the score is recomputed (ms). */
export const LOAD_REFRESH_MS = 10_000;
/** A new score is published when it moved by at least this much, or after LOAD_MAX_AGE_MS. */
export const LOAD_PUBLISH_DELTA = 0.05;
export const LOAD_MAX_AGE_MS = 60_000;
/** Network throughput that counts as fully loaded: 1 Gbit/s (bytes/s). */
export const LOAD_NET_CAPACITY = 125_000_000;
/** Disk throughput that counts as fully loaded: 200 MB/s. */
export const LOAD_DISK_CAPACITY = 200_000_000;
/** Connected clients that count as fully loaded. */
export const LOAD_CLIENT_CAPACITY = 1000;
/**
 * How often the client count is re-read (ms), and at once when the registered ports change.
 * Reading /proc/net/tcp walks the kernel's whole established-socket hash table, however few
 * sockets there are: 5 ms of CPU for one socket on the test machine, 12 ms with tcp6 and 1,356
 * sockets. At the 10 s refresh that was 0.5-1.2 ms/s for every agent with a service, and 3-6%
 * of a core for 50 agents sharing a host (the discovery bench).
 */
export const LOAD_CLIENTS_REFRESH_MS = 60_000;

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Total bytes received + sent on non-loopback interfaces (/proc/net/dev). */
export function netBytes(text = readProc('/proc/net/dev')): number | undefined {
  if (!text) return undefined;
  let total = 0;
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    total += (f[0] || 0) + (f[8] || 0);
  }
  return total;
}

/** Total bytes read + written on whole block devices (/proc/diskstats, 512-byte sectors). */
export function diskBytes(text = readProc('/proc/diskstats')): number | undefined {
  if (!text) return undefined;
  let sectors = 0;
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const name = f[2];
    // whole disks only (sda, vda, nvme0n1), not partitions (sda1, nvme0n1p1) or virtual devices
    if (!/^(sd[a-z]+|vd[a-z]+|xvd[a-z]+|nvme\d+n\d+)$/.test(name)) continue;
    sectors += Number(f[5]) + Number(f[9]);
  }
  return sectors * 512;
}

/** Established TCP connections whose local port is one of `ports` (/proc/net/tcp and tcp6). */
export function establishedOnPorts(
  ports: ReadonlySet<number>,
  texts?: Array<string | undefined>,
): number {
  // read only when there is something to count: /proc/net/tcp lists every socket of the host, and
  // an agent with no services read it every refresh for nothing
  if (ports.size === 0) return 0;
  texts ??= [readProc('/proc/net/tcp'), readProc('/proc/net/tcp6')];
  let n = 0;
  for (const text of texts) {
    if (!text) continue;
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '01') continue; // 01 = ESTABLISHED
      const port = parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16);
      if (ports.has(port)) n++;
    }
  }
  return n;
}

export interface LoadSample {
  at: number;
  net?: number;
  disk?: number;
}

export function computeScore(parts: {
  cpu: number;
  net: number;
  disk: number;
  clients: number;
}): number {
  const cpu = Math.min(4, Math.max(0, parts.cpu));
  const net = Math.min(1, Math.max(0, parts.net));
  const disk = Math.min(1, Math.max(0, parts.disk));
  const clients = Math.min(1, Math.max(0, parts.clients));
  return Math.round((0.4 * cpu + 0.2 * net + 0.2 * disk + 0.2 * clients) * 1000) / 1000;
}

/** Where a LoadMonitor reads its figures (the /proc readers above unless a test gives others). */
export interface LoadSources {
  cpu(): number;
  net(): number | undefined;
  disk(): number | undefined;
  clients(ports: ReadonlySet<number>): number;
}

const procSources: LoadSources = {
  cpu: () => loadavg()[0] / Math.max(1, cpus().length),
  net: () => netBytes(),
  disk: () => diskBytes(),
  clients: (ports) => establishedOnPorts(ports),
};

export class LoadMonitor {
  #prev: LoadSample | undefined;
  #timer: NodeJS.Timeout | undefined;
  #published: { score: number; at: number } | undefined;
  /** The last client count, the ports it was taken for and when. */
  #clients: { n: number; ports: string; at: number } | undefined;
  readonly #ports: () => number[];
  readonly #publish: (score: number) => void;
  readonly #src: LoadSources;
  score = 0;

  constructor(opts: {
    servicePorts: () => number[];
    publish: (score: number) => void;
    sources?: Partial<LoadSources>;
  }) {
    this.#ports = opts.servicePorts;
    this.#publish = opts.publish;
    this.#src = { ...procSources, ...opts.sources };
  }

  /** Connected clients: re-read when the ports changed or the last count is too old. */
  #clientCount(now: number): number {
    const ports = [...new Set(this.#ports())].sort((a, b) => a - b);
    const key = ports.join(',');
    const last = this.#clients;
    if (last && last.ports === key && now - last.at < LOAD_CLIENTS_REFRESH_MS) return last.n;
    const n = this.#src.clients(new Set(ports));
    this.#clients = { n, ports: key, at: now };
    return n;
  }

  /** Measures now; returns the score. */
  sample(now = Date.now()): number {
    const cur: LoadSample = { at: now, net: this.#src.net(), disk: this.#src.disk() };
    const prev = this.#prev;
    this.#prev = cur;
    const dt = prev ? Math.max(0.001, (now - prev.at) / 1000) : 0;
    const rate = (a?: number, b?: number) =>
      dt > 0 && a !== undefined && b !== undefined ? Math.max(0, (a - b) / dt) : 0;
    const score = computeScore({
      cpu: this.#src.cpu(),
      net: rate(cur.net, prev?.net) / LOAD_NET_CAPACITY,
      disk: rate(cur.disk, prev?.disk) / LOAD_DISK_CAPACITY,
      clients: this.#clientCount(now) / LOAD_CLIENT_CAPACITY,
    });
    this.score = score;
    return score;
  }

  #tick(): void {
    const now = Date.now();
    const score = this.sample(now);
    const last = this.#published;
    if (
      !last ||
      Math.abs(score - last.score) >= LOAD_PUBLISH_DELTA ||
      now - last.at >= LOAD_MAX_AGE_MS
    ) {
      this.#published = { score, at: now };
      this.#publish(score);
    }
  }

  start(): void {
    if (this.#timer) return;
    this.sample();
    this.#timer = setInterval(() => this.#tick(), LOAD_REFRESH_MS);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
