// Service commands: services register|deregister|ls|pass|fail, and discover.
import type { Command } from 'commander';
import { EdgeswarmError, UsageError } from '../../errors.js';
import { pathSegment, type ClientOptions } from '../client.js';
import { table } from '../format.js';
import { clientCommand, clientFrom, printJson } from '../program.js';

type Opts = ClientOptions & { json?: boolean };

const collect = (value: string, previous: string[] = []) => [...previous, value];

interface LocalService {
  id: string;
  name: string;
  port: number;
  address?: string;
  tags: string[];
  health: string;
  output?: string;
  check?: { http?: string; tcp?: string; ttl?: number };
}

interface Instance {
  id: string;
  name: string;
  node: string;
  site: string;
  address: string;
  port: number;
  tags: string[];
  health: string;
  stale: boolean;
  ageSeconds: number;
}

/** "--check http://URL | tcp:HOST:PORT | ttl:30s" → the API's check object. */
export function parseCheck(spec: string, interval?: string): Record<string, string> {
  let check: Record<string, string>;
  if (/^https?:\/\//.test(spec)) check = { http: spec };
  else if (spec.startsWith('tcp:')) check = { tcp: spec.slice(4) };
  else if (spec.startsWith('ttl:')) check = { ttl: spec.slice(4) };
  else
    throw new UsageError(
      `--check: expected http://URL, tcp:HOST:PORT or ttl:DURATION, got ${JSON.stringify(spec)}`,
    );
  if (interval !== undefined) check.interval = interval;
  return check;
}

/** "http", "tcp" or "ttl": the kind of a check as the API gives it. */
function checkKind(c: NonNullable<LocalService['check']>): string {
  return c.http !== undefined ? 'http' : c.tcp !== undefined ? 'tcp' : 'ttl';
}

function intArg(v: string, name: string, min = 0): number {
  if (!/^\d+$/.test(v))
    throw new UsageError(`${name}: expected a whole number, got ${JSON.stringify(v)}`);
  if (Number(v) < min) throw new UsageError(`${name}: must be at least ${min}`);
  return Number(v);
}

export function registerServiceCommands(program: Command): void {
  const services = program
    .command('services')
    .description('register and list the services of this agent');

  clientCommand(
    services
      .command('register')
      .description('register a service on this agent (replaces one with the same id)')
      .requiredOption('--name <name>', 'service name (a lower-case DNS label)')
      .requiredOption('--port <port>', 'port clients connect to')
      .option('--id <id>', 'instance id, unique on this agent (default: the name)')
      .option('--address <ip>', "address clients connect to (default: the agent's address)")
      .option('--tag <tag>', 'tag, repeatable', collect)
      .option('--check <check>', 'health check: http://URL (2xx passes), tcp:HOST:PORT or ttl:30s')
      .option('--interval <duration>', 'check interval for http and tcp checks (default 10s)'),
  ).action(
    async (
      opts: Opts & {
        name: string;
        port: string;
        id?: string;
        address?: string;
        tag?: string[];
        check?: string;
        interval?: string;
      },
    ) => {
      if (opts.name === '') throw new UsageError('--name must not be empty');
      // checked here, not left to the agent: the id defaults to the name, and the agent reports a
      // bad id (the path) before a bad name
      const { SERVICE_NAME_RE, SERVICE_NAME_RULE } =
        await import('../../../membership/catalog/names.js');
      if (!SERVICE_NAME_RE.test(opts.name))
        throw new UsageError(`--name ${JSON.stringify(opts.name)}: ${SERVICE_NAME_RULE}`);
      const id = pathSegment(opts.id ?? opts.name, '--id');
      const body: Record<string, unknown> = { name: opts.name, port: intArg(opts.port, '--port') };
      if (opts.address) body.address = opts.address;
      if (opts.tag) body.tags = opts.tag;
      if (opts.check) body.check = parseCheck(opts.check, opts.interval);
      else if (opts.interval) throw new UsageError('--interval needs --check');
      const res = await clientFrom(opts).json<LocalService>('PUT', `/v1/services/${id}`, body);
      if (opts.json) printJson(res);
      else
        process.stdout.write(
          `registered ${res.id} (${res.name} on port ${res.port}, ${res.health})\n`,
        );
    },
  );

  clientCommand(
    services.command('deregister').description('remove a service from this agent').argument('<id>'),
  ).action(async (id: string, opts: Opts) => {
    const res = await clientFrom(opts).json<unknown>(
      'DELETE',
      `/v1/services/${pathSegment(id, 'ID')}`,
    );
    if (opts.json) printJson(res);
    else process.stdout.write(`deregistered ${id}\n`);
  });

  clientCommand(services.command('ls').description('services registered on this agent')).action(
    async (opts: Opts) => {
      const list = await clientFrom(opts).json<LocalService[]>('GET', '/v1/services');
      if (opts.json) return printJson(list);
      process.stdout.write(
        `${table(
          ['ID', 'NAME', 'PORT', 'ADDRESS', 'TAGS', 'CHECK', 'HEALTH'],
          list.map((s) => [
            s.id,
            s.name,
            s.port,
            s.address ?? '-',
            s.tags.join(',') || '-',
            s.check ? checkKind(s.check) : '-',
            s.health,
          ]),
        )}\n`,
      );
    },
  );

  for (const verb of ['pass', 'fail'] as const) {
    clientCommand(
      services
        .command(verb)
        .description(`report a ttl check as ${verb === 'pass' ? 'passing' : 'failing'}`)
        .argument('<id>')
        .option('--output <text>', "what to show as the check's output (at most 512 characters)"),
    ).action(async (id: string, opts: Opts & { output?: string }) => {
      const res = await clientFrom(opts).json<LocalService>(
        'PUT',
        `/v1/services/${pathSegment(id, 'ID')}/ttl`,
        { status: verb, ...(opts.output !== undefined && { output: opts.output }) },
      );
      if (opts.json) printJson(res);
      else process.stdout.write(`${id}: ${res.health}\n`);
    });
  }

  clientCommand(
    program
      .command('discover')
      .description(
        'find instances of a service, best first, from the local agent (a name it has never seen is looked up in the DHT for up to 1 s)',
      )
      .argument('<name>')
      .option(
        '--strategy <s>',
        'nearest (same site, then network coordinates), score (lowest load) or round-robin',
        'nearest',
      )
      .option('--site <site>', 'only this site')
      .option('--tag <tag>', 'only instances with this tag, repeatable', collect)
      .option('--client <id>', 'round-robin rotation is kept per client id')
      .option('--limit <n>', 'at most n instances')
      .option('--all', 'include failing instances'),
  ).action(
    async (
      name: string,
      opts: Opts & {
        strategy: string;
        site?: string;
        tag?: string[];
        client?: string;
        limit?: string;
        all?: boolean;
      },
    ) => {
      const q = new URLSearchParams({ strategy: opts.strategy });
      if (opts.site) q.set('site', opts.site);
      for (const t of opts.tag ?? []) q.append('tag', t);
      if (opts.client) q.set('client', opts.client);
      if (opts.limit !== undefined) q.set('limit', String(intArg(opts.limit, '--limit', 1)));
      if (opts.all) q.set('all', 'true');
      const list = await clientFrom(opts).json<Instance[]>(
        'GET',
        `/v1/discover/${pathSegment(name, 'NAME')}?${q}`,
      );
      if (opts.json) printJson(list);
      if (list.length === 0) {
        // a failure (exit 1, with --json too, after its []), its reason on stderr; an unknown
        // name is not a service whose instances all fail: say which
        const known = (
          await clientFrom(opts).json<Array<{ name: string; instances: number }>>(
            'GET',
            '/v1/catalog',
          )
        ).find((c) => c.name === name);
        const site = opts.site;
        const siteKnown =
          site === undefined ||
          (await clientFrom(opts).json<Array<{ site: string }>>('GET', '/v1/sites')).some(
            (s) => s.site === site,
          );
        throw new EdgeswarmError(
          'not_found',
          !known
            ? `no service named ${name} is known in the cluster`
            : !siteKnown
              ? `no member is in site ${site}`
              : `no ${opts.all ? '' : 'passing '}instances of ${name}${opts.all || opts.site || opts.tag ? '' : ` (${known.instances} registered; --all shows failing ones)`}`,
        );
      }
      if (opts.json) return;
      process.stdout.write(
        `${table(
          ['ID', 'NODE', 'SITE', 'ADDRESS', 'TAGS', 'HEALTH'],
          list.map((i) => [
            i.id,
            i.node,
            i.site,
            `${i.address}:${i.port}`,
            i.tags.join(',') || '-',
            i.stale ? `${i.health} (stale ${i.ageSeconds}s)` : i.health,
          ]),
        )}\n`,
      );
    },
  );
}
