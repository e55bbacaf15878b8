// Cluster commands: status, join, leave.
import type { Command } from 'commander';
import type { AgentInfo } from '../../agent.js';
import type { ClientOptions } from '../client.js';
import { table, formatTags } from '../format.js';
import { clientCommand, clientFrom, printJson } from '../program.js';

type Opts = ClientOptions & { json?: boolean };

interface Member {
  id: string;
  name: string;
  site: string;
  state: string;
  incarnation: number;
  addrs: string[];
  tags: Record<string, string>;
  load?: number;
  rttMs?: number;
  self?: boolean;
}

interface Site {
  site: string;
  members: { alive: number; suspect: number; dead: number; left: number };
  images?: { complete: number; total: number };
}

export function registerClusterCommands(program: Command): void {
  clientCommand(
    program.command('status').description('one-screen overview of this agent and the cluster'),
  ).action(async (opts: Opts) => {
    const client = clientFrom(opts);
    const [agent, members, sites] = await Promise.all([
      client.json<AgentInfo>('GET', '/v1/agent'),
      client.json<Member[]>('GET', '/v1/members'),
      client.json<Site[]>('GET', '/v1/sites'),
    ]);
    if (opts.json) {
      printJson({ agent, members, sites });
      return;
    }
    const count = (s: string) => members.filter((m) => m.state === s).length;
    const lines = [
      `agent    ${agent.name} (${agent.id})`,
      `site     ${agent.site}`,
      `tags     ${formatTags(agent.tags) || '-'}`,
      `version  ${agent.version}, up ${agent.uptimeSeconds}s`,
      `addrs    ${agent.addrs.join('\n         ')}`,
      `cluster  ${members.length} members: ${count('alive')} alive, ${count('suspect')} suspect, ${count('dead')} dead, ${count('left')} left; ${sites.length} site(s)`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  });

  clientCommand(
    program.command('members').description('members: name, site, state, address, tags'),
  ).action(async (opts: Opts) => {
    const members = await clientFrom(opts).json<Member[]>('GET', '/v1/members');
    if (opts.json) return printJson(members);
    members.sort((a, b) => (a.site + a.name < b.site + b.name ? -1 : 1));
    process.stdout.write(
      `${table(
        ['NAME', 'SITE', 'STATE', 'ADDRESS', 'RTT', 'LOAD', 'TAGS'],
        members.map((m) => [
          m.self ? `${m.name} *` : m.name,
          m.site,
          m.state,
          shortAddr(m.addrs),
          m.rttMs === undefined ? '-' : `${m.rttMs.toFixed(1)}ms`,
          m.load === undefined ? '-' : m.load.toFixed(2),
          formatTags(m.tags) || '-',
        ]),
      )}\n`,
    );
  });

  clientCommand(
    program.command('sites').description('per site: members alive/suspect/dead, images complete'),
  ).action(async (opts: Opts) => {
    const sites = await clientFrom(opts).json<Site[]>('GET', '/v1/sites');
    if (opts.json) return printJson(sites);
    process.stdout.write(
      `${table(
        ['SITE', 'ALIVE', 'SUSPECT', 'DEAD', 'LEFT', 'IMAGES'],
        sites.map((s) => [
          s.site,
          s.members.alive,
          s.members.suspect,
          s.members.dead,
          s.members.left,
          s.images ? `${s.images.complete}/${s.images.total}` : '-',
        ]),
      )}\n`,
    );
  });

  clientCommand(
    program
      .command('join')
      .description('join more peers (multiaddrs like /ip4/10.0.0.1/tcp/7946, or HOST:PORT)')
      .argument('<multiaddr...>', 'addresses of agents to join through'),
  ).action(async (addrs: string[], opts: Opts) => {
    const res = await clientFrom(opts).json<{
      joined: number;
      peers: string[];
      failed: Array<{ addr: string; error: string }>;
    }>('POST', '/v1/join', { addrs });
    if (opts.json) {
      printJson(res);
      return;
    }
    process.stdout.write(`joined ${res.joined} of ${addrs.length}\n`);
    if (res.failed.length > 0)
      process.stdout.write(
        `${table(
          ['address', 'error'],
          res.failed.map((f) => [f.addr, f.error]),
        )}\n`,
      );
  });

  clientCommand(
    program.command('leave').description('this agent leaves the cluster gracefully and stops'),
  ).action(async (opts: Opts) => {
    const res = await clientFrom(opts).json<{ leaving: boolean }>('POST', '/v1/leave');
    if (opts.json) printJson(res);
    else process.stdout.write('leaving\n');
  });
}

/** "/ip4/10.0.0.1/tcp/7946/p2p/12D3..." → "10.0.0.1:7946". */
function shortAddr(addrs: string[]): string {
  for (const a of addrs) {
    const m = /^\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(a);
    if (m) return `${m[1]}:${m[2]}`;
  }
  return addrs[0] ?? '-';
}
