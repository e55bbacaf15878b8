// The command tree of the `edgeswarm` binary. Exit codes: 0 success, 1 failure (one line on
// stderr), 2 bad usage.
import { Command, CommanderError, Option } from 'commander';
import { ApiError, ConfigError, EdgeswarmError, UsageError } from '../errors.js';
import { VERSION } from '../version.js';
import { registerAgentCommands } from './agent-command.js';
import { ApiClient, DEFAULT_API, type ClientOptions } from './client.js';
import { registerClusterCommands } from './commands/cluster.js';
import { registerImageCommands } from './commands/image.js';
import { registerKvCommands } from './commands/kv.js';
import { registerServiceCommands } from './commands/services.js';

/** Exit code for a failed operation. */
export const EXIT_FAILURE = 1;
/** Exit code for bad usage or a bad config value. */
export const EXIT_USAGE = 2;

/** Adds --api, --token, --data and --json to a client command. */
export function clientCommand(cmd: Command): Command {
  return cmd
    .option('--api <url>', `agent HTTP API (env EDGESWARM_API; default ${DEFAULT_API})`)
    .option('--token <token>', 'admin token (env EDGESWARM_TOKEN; default: DATA/admin.token)')
    .option(
      '--data <dir>',
      'agent data directory, to find admin.token (env EDGESWARM_DATA; default ./.edgeswarm)',
    )
    .option('--json', 'print JSON for scripts instead of a table');
}

export function clientFrom(opts: ClientOptions): ApiClient {
  return new ApiClient(opts);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function buildProgram(): Command {
  const program = new Command('edgeswarm')
    .description(
      'Peer-to-peer cluster agent for edge sites: membership, service discovery, image and state replication.\n' +
        'Run `edgeswarm agent` on every node; the other commands talk to the local agent over its HTTP API.',
    )
    .version(VERSION, '-V, --version')
    // program options only before the command: `image pull --version N` is the pull's own option
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false })
    .exitOverride();
  program.addHelpText(
    'after',
    '\nExit codes: 0 success, 1 failure (reason on stderr), 2 bad usage.\nDocs: README.md and docs/ in the source tree.',
  );
  registerAgentCommands(program);
  registerClusterCommands(program);
  registerServiceCommands(program);
  registerKvCommands(program);
  registerImageCommands(program);
  // every subcommand throws instead of exiting, so main() owns the exit code
  const walk = (c: Command) => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}

/** Maps an error to a one-line message on stderr and an exit code. */
export function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    // commander already printed its message (or the help, when no command was given: `edgeswarm`,
    // `edgeswarm kv`)
    return err.exitCode === 0 ? 0 : EXIT_USAGE;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`edgeswarm: invalid configuration: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`edgeswarm: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ApiError && err.status === 400) {
    // the agent refused a value given on the command line: bad usage, as when the CLI catches it
    process.stderr.write(`edgeswarm: ${err.message}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ApiError || err instanceof EdgeswarmError) {
    process.stderr.write(`edgeswarm: ${err.message}\n`);
    return EXIT_FAILURE;
  }
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`edgeswarm: ${msg}\n`);
  return EXIT_FAILURE;
}

export { Option };
