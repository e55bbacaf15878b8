// `edgeswarm agent` (run an agent in the foreground) and `edgeswarm keygen`.
import type { Command } from 'commander';
import type { Agent } from '../agent.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface AgentFlags {
  config?: string;
  name?: string;
  site?: string;
  tag?: string[];
  data?: string;
  listen?: string[];
  join?: string[];
  api?: string;
  dns?: string;
  clusterKey?: string;
  preset?: string;
  logLevel?: string;
}

export function registerAgentCommands(program: Command): void {
  program
    .command('agent')
    .description('run an agent in the foreground (logs JSON lines to stdout)')
    .option(
      '--config <file>',
      'YAML config file with the same keys in camelCase (env EDGESWARM_CONFIG)',
    )
    .option('--name <name>', 'member name, unique in the cluster (default: host name)')
    .option('--site <site>', 'the site (PoP) this agent belongs to (default: default)')
    .option('--tag <k=v>', 'member metadata, repeatable, e.g. --tag role=storage', collect)
    .option('--data <dir>', 'directory for all persistent state (default: ./.edgeswarm)')
    .option(
      '--listen <multiaddr>',
      'peer-to-peer listen address, repeatable (default: /ip4/0.0.0.0/tcp/7946)',
      collect,
    )
    .option(
      '--join <multiaddr>',
      'peer to join through, repeatable; retried in the background',
      collect,
    )
    .option('--api <host:port|off>', 'HTTP API address (default: 127.0.0.1:7780)')
    .option('--dns <host:port|off>', 'DNS interface address, UDP and TCP (default: 127.0.0.1:8600)')
    .option(
      '--cluster-key <file>',
      'pre-shared cluster key (default: DATA/cluster.key); created if missing, to be copied to the other agents',
    )
    .option('--preset <lan|wan>', 'membership timing preset (default: lan)')
    .option(
      '--log-level <level>',
      'trace, debug, info, warn, error, fatal or silent (default: info)',
    )
    .addHelpText(
      'after',
      '\nEvery flag can also be set as EDGESWARM_<FLAG> (e.g. EDGESWARM_LOG_LEVEL=debug; lists comma-separated)\n' +
        'or as a camelCase key in the --config file. Precedence: flag > environment > file > default.\n' +
        'SIGINT/SIGTERM: the agent tells the cluster it is leaving and exits 0 within 5 s.',
    )
    .action(async (flags: AgentFlags) => {
      // imported here (like the agent below) so that client commands do not pay for loading the
      // config schema and what it checks against
      const { loadConfig } = await import('../config/load.js');
      const { config } = loadConfig({
        flags: {
          config: flags.config,
          name: flags.name,
          site: flags.site,
          tags: flags.tag,
          data: flags.data,
          listen: flags.listen,
          join: flags.join,
          api: flags.api,
          dns: flags.dns,
          clusterKey: flags.clusterKey,
          preset: flags.preset,
          logLevel: flags.logLevel,
        },
      });
      const { Agent } = await import('../agent.js');
      await runAgent(new Agent({ config, onExit: () => process.exit(0) }));
    });

  program
    .command('keygen')
    .description('print a new cluster key (agents with different keys never connect)')
    .action(async () => {
      const { generateClusterKey } = await import('../identity.js');
      process.stdout.write(generateClusterKey());
    });
}

/** Runs an agent until SIGINT/SIGTERM, then stops it (leaving the cluster) and exits 0. */
export async function runAgent(agent: Agent): Promise<void> {
  const { STOP_TIMEOUT_MS } = await import('../agent.js');
  const { tuneHeap } = await import('../heap.js');
  tuneHeap();
  const log = agent.logger;
  process.on('uncaughtException', (err) => {
    log.error({ err }, 'uncaught exception (the agent keeps running)');
  });
  process.on('unhandledRejection', (err) => {
    log.error({ err }, 'unhandled rejection (the agent keeps running)');
  });
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: leaving the cluster');
    const hard = setTimeout(() => {
      log.warn('stop took too long; exiting anyway');
      process.exit(0);
    }, STOP_TIMEOUT_MS + 800);
    hard.unref();
    void agent.stop({ leave: true }).finally(() => process.exit(0));
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  await agent.start();
}
