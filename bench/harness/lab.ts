// The lab: hosts in Linux network namespaces joined by a bridge, with real faults — bandwidth
// (tc tbf on both ends of a host's link), cuts between hosts and isolated groups (iptables DROP),
// random packet loss (iptables -m statistic). Agents run in the hosts as separate processes.
// Everything a Lab creates is removed by destroy(), which also runs on process exit; labs left by
// a crashed run are swept at the next start (names start with LAB_PREFIX).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { NODE_ARGS, type AgentProcess } from './agent-process.js';
import { TestCluster, type ProcessAgentOptions } from './test-cluster.js';
import { waitFor } from './wait.js';

export const LAB_PREFIX = 'eslab';
/** The port agents listen on for peer-to-peer traffic inside a lab host. */
export const P2P_PORT = 7946;
export const API_PORT = 7780;
export const DNS_PORT = 8600;

function sh(
  cmd: string,
  args: string[],
  opts: { ignoreError?: boolean; input?: string } = {},
): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input });
  if (r.status !== 0 && !opts.ignoreError) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr.trim()}`);
  }
  return r.stdout;
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

/** Whether the lab can run here; a one-line reason when it cannot. */
export function labAvailability(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: 'lab tests need Linux network namespaces' };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'lab tests need root (network namespaces, tc, iptables)' };
  for (const c of ['ip', 'iptables', 'tc']) {
    if (!which(c))
      return { ok: false, reason: `lab tests need '${c}' (apt-get install iproute2 iptables)` };
  }
  const probe = `${LAB_PREFIX}probe${process.pid}`;
  const r = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (r.status !== 0)
    return { ok: false, reason: `cannot create network namespaces here: ${r.stderr.trim()}` };
  spawnSync('ip', ['netns', 'del', probe]);
  return { ok: true };
}

/** Removes namespaces, bridges and FORWARD rules left by labs of processes that no longer run. */
export function sweepStaleLabs(): void {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const line of sh('ip', ['netns', 'list'], { ignoreError: true }).split('\n')) {
    const ns = line.split(' ')[0];
    const m = new RegExp(`^${LAB_PREFIX}(\\d+)x`).exec(ns);
    if (m && !alive(Number(m[1]))) sh('ip', ['netns', 'del', ns], { ignoreError: true });
  }
  for (const line of sh('ip', ['-o', 'link', 'show', 'type', 'bridge'], {
    ignoreError: true,
  }).split('\n')) {
    const m = /^\d+:\s+(esb[0-9a-f]+)[:@]/.exec(line);
    if (m && !labBridgesInUse.has(m[1])) {
      const owner = Number(sh('cat', [`/run/${m[1]}.pid`], { ignoreError: true }).trim());
      if (!owner || !alive(owner)) {
        sh('ip', ['link', 'del', m[1]], { ignoreError: true });
        sh('iptables', ['-D', 'FORWARD', '-i', m[1], '-o', m[1], '-j', 'ACCEPT'], {
          ignoreError: true,
        });
        sh('rm', ['-f', `/run/${m[1]}.pid`], { ignoreError: true });
      }
    }
  }
}

const labBridgesInUse = new Set<string>();
const liveLabs = new Set<Lab>();
process.on('exit', () => {
  for (const lab of liveLabs) lab.destroySync();
});

export interface Host {
  name: string;
  ns: string;
  ip: string;
  /** The veth end inside the namespace (its egress = the host's upload). */
  inner: string;
  /** The veth end on the bridge (its egress = the host's download). */
  outer: string;
}

export class Lab {
  readonly id: string;
  readonly bridge: string;
  readonly subnet: string;
  /** The bridge's own address: how the test runner reaches agents' HTTP APIs. */
  readonly gateway: string;
  readonly hosts: Host[] = [];
  readonly cluster = new TestCluster();
  #destroyed = false;

  constructor() {
    sweepStaleLabs();
    const rnd = randomBytes(2);
    this.id = rnd.toString('hex');
    this.bridge = `esb${this.id}`;
    // 10.213.X.0/24 with X random per lab, so two labs (or a real network) rarely collide
    this.subnet = `10.213.${rnd[0]}`;
    this.gateway = `${this.subnet}.254`;
    labBridgesInUse.add(this.bridge);
    liveLabs.add(this);
    sh('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    sh('sh', ['-c', `echo ${process.pid} > /run/${this.bridge}.pid`]);
    sh('ip', ['addr', 'add', `${this.gateway}/24`, 'dev', this.bridge]);
    sh('ip', ['link', 'set', this.bridge, 'up']);
    // with br_netfilter loaded, bridged frames traverse FORWARD: let ours through whatever the policy
    sh('iptables', ['-I', 'FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'], {
      ignoreError: true,
    });
  }

  /** Adds a host (a namespace with one veth on the bridge). */
  addHost(name: string): Host {
    const idx = this.hosts.length + 1;
    if (idx > 250) throw new Error('a lab holds at most 250 hosts');
    const ns = `${LAB_PREFIX}${process.pid}x${this.id}-${name}`;
    const inner = `esv${this.id}${idx}`;
    const outer = `esp${this.id}${idx}`;
    const ip = `${this.subnet}.${idx}`;
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', inner, 'type', 'veth', 'peer', 'name', outer]);
    sh('ip', ['link', 'set', inner, 'netns', ns]);
    sh('ip', ['link', 'set', outer, 'master', this.bridge]);
    sh('ip', ['link', 'set', outer, 'up']);
    this.exec(ns, 'ip', ['addr', 'add', `${ip}/24`, 'dev', inner]);
    this.exec(ns, 'ip', ['link', 'set', inner, 'up']);
    this.exec(ns, 'ip', ['link', 'set', 'lo', 'up']);
    const host = { name, ns, ip, inner, outer };
    this.hosts.push(host);
    return host;
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no lab host ${name}`);
    return h;
  }

  exec(ns: string, cmd: string, args: string[], opts: { ignoreError?: boolean } = {}): string {
    return sh('ip', ['netns', 'exec', ns, cmd, ...args], opts);
  }

  /** Shapes a host's link to `rate` (e.g. "100mbit") in both directions with tc tbf. */
  shape(host: Host, rate: string, opts: { burst?: string; latency?: string } = {}): void {
    const burst = opts.burst ?? '256kb';
    const latency = opts.latency ?? '50ms';
    this.exec(host.ns, 'tc', [
      'qdisc',
      'replace',
      'dev',
      host.inner,
      'root',
      'tbf',
      'rate',
      rate,
      'burst',
      burst,
      'latency',
      latency,
    ]);
    sh('tc', [
      'qdisc',
      'replace',
      'dev',
      host.outer,
      'root',
      'tbf',
      'rate',
      rate,
      'burst',
      burst,
      'latency',
      latency,
    ]);
  }

  unshape(host: Host): void {
    this.exec(host.ns, 'tc', ['qdisc', 'del', 'dev', host.inner, 'root'], { ignoreError: true });
    sh('tc', ['qdisc', 'del', 'dev', host.outer, 'root'], { ignoreError: true });
  }

  #drop(host: Host, peer: string, add: boolean): void {
    const op = add ? '-A' : '-D';
    this.exec(host.ns, 'iptables', [op, 'INPUT', '-s', peer, '-j', 'DROP'], { ignoreError: !add });
    this.exec(host.ns, 'iptables', [op, 'OUTPUT', '-d', peer, '-j', 'DROP'], { ignoreError: !add });
  }

  /** Cuts the link between two hosts (both directions dropped at both ends). */
  cut(a: Host, b: Host): void {
    this.#drop(a, b.ip, true);
    this.#drop(b, a.ip, true);
  }

  heal(a: Host, b: Host): void {
    this.#drop(a, b.ip, false);
    this.#drop(b, a.ip, false);
  }

  /** Isolates `group` from every other host (each side drops the other's traffic). */
  isolate(group: Host[]): void {
    const inside = new Set(group.map((h) => h.name));
    for (const a of group) for (const b of this.hosts) if (!inside.has(b.name)) this.cut(a, b);
  }

  /** Removes every cut and loss rule of every host. */
  healAll(): void {
    for (const h of this.hosts) {
      this.exec(h.ns, 'iptables', ['-F', 'INPUT'], { ignoreError: true });
      this.exec(h.ns, 'iptables', ['-F', 'OUTPUT'], { ignoreError: true });
    }
  }

  /**
   * Drops a fraction `p` of the host's packets to and from other lab hosts, in each direction
   * (the runner's traffic through the gateway is spared, so the test can still watch).
   */
  loss(host: Host, p: number): void {
    for (const [chain, dir] of [
      ['INPUT', '-s'],
      ['OUTPUT', '-d'],
    ] as const) {
      this.exec(host.ns, 'iptables', ['-I', chain, '1', dir, this.gateway, '-j', 'ACCEPT']);
      this.exec(host.ns, 'iptables', [
        '-A',
        chain,
        dir,
        `${this.subnet}.0/24`,
        '-m',
        'statistic',
        '--mode',
        'random',
        '--probability',
        String(p),
        '-j',
        'DROP',
      ]);
    }
  }

  /** Runs an agent process inside a host, reachable at the host's IP. */
  async startAgent(host: Host, opts: ProcessAgentOptions = {}): Promise<AgentProcess> {
    return this.cluster.spawnAgent({
      name: host.name,
      ...opts,
      listen: `/ip4/${host.ip}/tcp/${P2P_PORT}`,
      api: `${host.ip}:${API_PORT}`,
      dns: opts.dns ?? `${host.ip}:${DNS_PORT}`,
      command: ['ip', 'netns', 'exec', host.ns, process.execPath, ...NODE_ARGS],
    });
  }

  /**
   * Starts one agent in each host, in site `site(host)`: the first, then the others joining it,
   * and waits until every agent sees all of them alive.
   */
  async startCluster(
    hosts: Host[],
    site: (host: Host) => string,
    args: string[] = [],
  ): Promise<AgentProcess[]> {
    const first = await this.startAgent(hosts[0], { site: site(hosts[0]), args });
    const rest = await Promise.all(
      hosts
        .slice(1)
        .map((h) => this.startAgent(h, { site: site(h), join: [this.addr(hosts[0])], args })),
    );
    const agents = [first, ...rest];
    await waitFor(
      async () => {
        for (const a of agents) {
          const ms = (await a.http('GET', '/v1/members')).json as Array<{ state: string }>;
          if (ms.filter((m) => m.state === 'alive').length !== agents.length) return false;
        }
        return true;
      },
      { timeout: 60_000, interval: 250, message: `all ${agents.length} agents alive everywhere` },
    );
    return agents;
  }

  /** The multiaddr agents in a host listen on. */
  addr(host: Host): string {
    return `/ip4/${host.ip}/tcp/${P2P_PORT}`;
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    await this.cluster.cleanup();
    this.destroySync();
  }

  /** Synchronous teardown (also used from the process exit handler). */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const p of this.cluster.processes) {
      try {
        p.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const h of this.hosts) {
      // kill anything still running in the namespace, then delete it (removes its veth pair too)
      const pids = sh('ip', ['netns', 'pids', h.ns], { ignoreError: true })
        .split('\n')
        .filter(Boolean);
      for (const pid of pids) spawnSync('kill', ['-9', pid]);
      sh('ip', ['netns', 'del', h.ns], { ignoreError: true });
      sh('ip', ['link', 'del', h.outer], { ignoreError: true });
    }
    sh('iptables', ['-D', 'FORWARD', '-i', this.bridge, '-o', this.bridge, '-j', 'ACCEPT'], {
      ignoreError: true,
    });
    sh('ip', ['link', 'del', this.bridge], { ignoreError: true });
    sh('rm', ['-f', `/run/${this.bridge}.pid`], { ignoreError: true });
    labBridgesInUse.delete(this.bridge);
    liveLabs.delete(this);
  }
}
