// Cluster commands: status, join, leave.
import type { Command } from 'commander';
import type { AgentInfo } from '../../agent.js';
import type { ClientOptions } from '../client.js';
import { table, formatTags } from '../format.js';
import { clientCommand, clientFrom, printJson } from '../program.js';

type Opts = ClientOptions & { json?: boolean };

export function registerClusterCommands(program: Command): void {
  clientCommand(
    program.command('status').description('one-screen overview of this agent and the cluster'),
  ).action(async (opts: Opts) => {
    const client = clientFrom(opts);
    const agent = await client.json<AgentInfo>('GET', '/v1/agent');
    if (opts.json) {
      printJson({ agent });
      return;
    }
    const lines = [
      `agent    ${agent.name} (${agent.id})`,
      `site     ${agent.site}`,
      `tags     ${formatTags(agent.tags) || '-'}`,
      `version  ${agent.version}, up ${agent.uptimeSeconds}s`,
      `addrs    ${agent.addrs.join('\n         ')}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
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
