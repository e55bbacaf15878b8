// The foundation's acceptance: join, cluster keys, identity across restarts, durability across
// SIGKILL, bad input (flags, config, HTTP) answered clearly.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { generateClusterKey, parseClusterKey } from '../../agent/identity.js';
import { LevelStore } from '../../storage/index.js';
import { CLI, requireBuild, useCluster } from '../helpers/agents.js';
import { sleep, waitFor } from '../helpers/wait.js';

const cluster = useCluster();

function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  requireBuild();
  const r = spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 20_000,
    // a CLI that hangs deaf to SIGTERM (it did, under /proc) fails its test instead of outliving it
    killSignal: 'SIGKILL',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('joining', () => {
  it('two agents with the same cluster key connect within 2 s of a join', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a' });
    const t0 = Date.now();
    const b = await c.startAgent({ name: 'b', join: [a.addrs()[0]] });
    await waitFor(
      () =>
        b.node.getConnections(a.node.peerId).length > 0 &&
        a.node.getConnections(b.node.peerId).length > 0,
      {
        timeout: 2000,
        interval: 10,
        message: 'a and b to connect',
      },
    );
    expect(Date.now() - t0).toBeLessThan(2000 + 1500); // includes b's own start
  });

  it('an agent with another cluster key never connects', async () => {
    const c = cluster.current;
    const a = await c.startAgent({ name: 'a' });
    const otherKey = join(c.root, 'other.key');
    writeFileSync(otherKey, generateClusterKey());
    const b = await c.startAgent({ name: 'b', clusterKey: otherKey });
    const res = await b.join([a.addrs()[0]]);
    expect(res[0].peerId).toBeUndefined();
    // the other side resets the connection (said as a key mismatch; it was "read ECONNRESET"),
    // or, when its reset is lost, the dial times out, which says so too
    expect(res[0].error).toMatch(/another cluster key|wrong cluster key/);
    await sleep(300);
    expect(a.node.getConnections(b.node.peerId)).toHaveLength(0);
    expect(b.node.getConnections(a.node.peerId)).toHaveLength(0);
  });

  it('--join keeps retrying in the background until the peer is up', async () => {
    const c = cluster.current;
    // a port below the kernel's ephemeral range, free now: nothing else here binds it meanwhile
    // (a port freed by a stopped agent could be handed to another test's listener)
    const addr = `/ip4/127.0.0.1/tcp/${await freeFixedPort()}`;
    const b = await c.startAgent({ name: 'b', join: [addr] });
    await sleep(700);
    const a2 = await c.startAgent({ name: 'a', listen: [addr] });
    await waitFor(() => b.node.getConnections(a2.node.peerId).length > 0, {
      timeout: 8000,
      message: 'b to reach a after it started',
    });
  });
});

describe('identity and durability', () => {
  it('a restarted agent keeps its peer id and its token', async () => {
    const c = cluster.current;
    const p1 = await c.spawnAgent({ name: 'r' });
    const id = p1.peerId;
    const token = p1.token;
    await p1.stop('SIGTERM');
    expect(p1.exitCode).toBe(0);
    const p2 = await c.spawnAgent({ name: 'r', dataDir: p1.dataDir });
    expect(p2.peerId).toBe(id);
    expect(p2.token).toBe(token);
  });

  it('state under a data directory made 0755 beforehand is kept 0700, and the agent warns', async () => {
    const c = cluster.current;
    const dir = c.dataDir('open-perms');
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    // what an agent before the fix left there: level's own 0755
    mkdirSync(join(dir, 'chunks'), { mode: 0o755 });
    chmodSync(join(dir, 'chunks'), 0o755);
    const p = await c.spawnAgent({ name: 'perms', dataDir: dir });
    expect((await p.http('PUT', '/v1/kv/secret', 'value')).status).toBe(200);
    // db/ was 0755 and its files 0644: every local user could read the KV store
    for (const sub of ['db', 'chunks'])
      expect((statSync(join(dir, sub)).mode & 0o777).toString(8), sub).toBe('700');
    expect(
      p.logs.find((l) => String(l.msg).startsWith('the data directory is open to other')),
    ).toMatchObject({ level: 'warn', mode: '0755' });
  });

  it('SIGTERM stops the agent with exit 0 within 5 s', async () => {
    const p = await cluster.current.spawnAgent({ name: 't' });
    const t0 = Date.now();
    p.kill('SIGTERM');
    await p.exited;
    expect(p.exitCode).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('a write acknowledged by the store survives SIGKILL right after it', async () => {
    const dir = cluster.current.dataDir('kill');
    const script = `
      import('${join(process.cwd(), 'dist/storage/index.js')}').then(async ({ LevelStore }) => {
        const s = await LevelStore.open(${JSON.stringify(join(dir, 'db'))});
        await s.put('acked', new TextEncoder().encode('yes'), { sync: true });
        process.stdout.write('written\\n');
        setInterval(() => {}, 1000);
      });`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => d.toString().includes('written') && resolve()),
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    const s = await LevelStore.open(join(dir, 'db'));
    expect(new TextDecoder().decode(await s.get('acked'))).toBe('yes');
    await s.close();
  });
});

describe('the CLI', () => {
  it('client commands load the CLI alone, not the agent (config schema, libp2p, stores)', () => {
    requireBuild();
    // a module hook that writes down every module resolved
    const hooks = `import { appendFileSync } from 'node:fs';
export async function resolve(s, c, next) { const r = await next(s, c); appendFileSync(process.env.LOADED_LOG, r.url + '\\n'); return r; }`;
    const register = `import { register } from 'node:module'; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)});`;
    const log = join(cluster.current.dataDir('cli-load'), 'loaded.log');
    for (const args of [['--help'], ['kv', 'get', 'x', '--api', '127.0.0.1:2']]) {
      writeFileSync(log, '');
      const r = spawnSync(
        process.execPath,
        ['--import', `data:text/javascript,${encodeURIComponent(register)}`, CLI, ...args],
        { env: { ...process.env, LOADED_LOG: log }, encoding: 'utf8', timeout: 20_000 },
      );
      expect(r.error).toBeUndefined();
      const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      expect(loaded.some((u) => u.endsWith('/dist/agent/cli/program.js'))).toBe(true);
      const heavy = loaded.filter(
        (u) =>
          /\/dist\/(membership|storage|edge-sites)\//.test(u) ||
          /node_modules\/(?!commander\/)/.test(u),
      );
      expect(heavy, args.join(' ')).toEqual([]);
    }
  });
});

describe('bad input', () => {
  it('a bad flag names the flag and exits 2', () => {
    const r = runCli(['agent', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--no-such-flag/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('a bad benchmark option is named, exit 2, no stack', () => {
    requireBuild();
    const run = join(CLI, '..', '..', '..', 'bench', 'run.js');
    const r = spawnSync(process.execPath, [run, 'discovery', '--registrations', 'many'], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('discovery: --registrations takes a positive integer, not "many"\n');
  });

  it('a bad flag value is one line naming the key, exit 2', () => {
    const r = runCli(['agent', '--api', 'nonsense', '--data', cluster.current.dataDir('bad')]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^edgeswarm: invalid configuration: api: .*nonsense.*--api/);
    // a port fetch refuses (the CLI could never reach it: "bad port"), in the agent and the CLI
    const blocked = runCli([
      'agent',
      '--api',
      '127.0.0.1:6666',
      '--data',
      cluster.current.dataDir('bad'),
    ]);
    expect(blocked.code).toBe(2);
    expect(blocked.stderr).toMatch(
      /^edgeswarm: invalid configuration: api: port 6666 is one that fetch/,
    );
    const client = runCli(['status', '--api', 'http://127.0.0.1:6666']);
    expect([client.code, client.stderr]).toEqual([
      2,
      'edgeswarm: --api: port 6666 is one that fetch (the edgeswarm CLI, browsers) refuses to connect to; choose another\n',
    ]);
    // another scheme is not a host named after it ("cannot reach the agent at http://ftp")
    const ftp = runCli(['status', '--api', 'ftp://127.0.0.1:7780']);
    expect([ftp.code, ftp.stderr]).toEqual([
      2,
      'edgeswarm: --api: "ftp://127.0.0.1:7780" is not a URL like http://127.0.0.1:7780\n',
    ]);
  });

  it('a listen or join address that is well-formed but wrong is named, exit 2', () => {
    const dir = cluster.current.dataDir('addr');
    for (const [args, re] of [
      [['--listen', '/ip4/999.0.0.1/tcp/1'], /^listen\[0\]: Invalid IPv4 address "999\.0\.0\.1"/],
      [['--listen', '/ip4/127.0.0.1/tcp/99999'], /^listen\[0\]: port 99999 is not 1-65535/],
      [['--join', '/ip4/999.1.1.1/tcp/1'], /^join\[0\]: Invalid IPv4 address/],
      [['--join', '10.0.0.1:0'], /^join\[0\]: port 0 is not 1-65535/],
    ] as const) {
      const r = runCli(['agent', '--data', dir, ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.replace('edgeswarm: invalid configuration: ', '')).toMatch(re);
    }
  });

  it('a listen address already in use is one line naming it, exit 1', async () => {
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
    const port = (busy.address() as AddressInfo).port;
    try {
      const r = runCli([
        'agent',
        '--data',
        cluster.current.dataDir('busy'),
        '--listen',
        `/ip4/127.0.0.1/tcp/${port}`,
        '--api',
        'off',
        '--dns',
        'off',
        '--log-level',
        'error',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `edgeswarm: listen: cannot listen on /ip4/127.0.0.1/tcp/${port} (address in use)\n`,
      );
      // the API and DNS ports say which setting it was (they gave only Node's message)
      const base = ['agent', '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'error'];
      const api = runCli([
        ...base,
        ...['--data', cluster.current.dataDir('busy-api'), '--api', `127.0.0.1:${port}`],
        ...['--dns', 'off'],
      ]);
      expect([api.code, api.stderr]).toEqual([
        1,
        `edgeswarm: api: cannot listen on 127.0.0.1:${port} (address in use)\n`,
      ]);
      const dns = runCli([
        ...base,
        ...['--data', cluster.current.dataDir('busy-dns'), '--api', 'off'],
        ...['--dns', `127.0.0.1:${port}`],
      ]);
      expect([dns.code, dns.stderr]).toEqual([
        1,
        `edgeswarm: dns: cannot listen on 127.0.0.1:${port} (address in use)\n`,
      ]);
    } finally {
      busy.close();
    }
  });

  it('a corrupted database in the data directory is one line saying what to do, exit 1', async () => {
    // LevelDB's own "Corruption: ..." was all an operator got: no file named, no way out
    for (const part of ['manifest', 'table'] as const) {
      const dir = cluster.current.dataDir(`corrupt-${part}`);
      const db = join(dir, 'db');
      // written, closed and opened again: the reopen turns the log into a table file
      for (let round = 0; round < 2; round++) {
        const s = await LevelStore.open(db);
        if (round === 0) {
          const m = s.namespace('membership');
          await m.put('incarnation', new TextEncoder().encode('5'));
          for (let i = 0; i < 100; i++) await m.put(`pad${i}`, new Uint8Array(100).fill(i));
        }
        await s.close();
      }
      const files = readdirSync(db);
      const victim =
        part === 'manifest'
          ? files.find((f) => f.startsWith('MANIFEST-'))
          : files.find((f) => f.endsWith('.ldb'));
      expect(victim, files.join(' ')).toBeDefined();
      const path = join(db, victim!);
      writeFileSync(path, Buffer.alloc(statSync(path).size, 0x5a));
      const r = runCli([
        'agent',
        ...['--data', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--api', 'off', '--dns', 'off'],
        ...['--log-level', 'error'],
      ]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(
        `edgeswarm: a database in the data directory ${dir} is corrupted (Corruption: `,
      );
      expect(r.stderr).toContain('start this agent with an empty data directory');
    }
  });

  it('a bad environment value names the key and the variable', () => {
    const r = runCli(['agent', '--data', cluster.current.dataDir('bad')], {
      EDGESWARM_PRESET: 'moon',
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/preset: .*EDGESWARM_PRESET/);
  });

  it('a bad config-file value and an unknown key are named', () => {
    const dir = cluster.current.dataDir('cfg');
    const file = join(dir, 'agent.yaml');
    const cases: Array<[yaml: string, stderr: RegExp]> = [
      ['site: Not_A_Label\n', /site: must be a lower-case DNS label/],
      ['sitee: paris\n', /sitee: unknown key \(from file .*agent\.yaml\)$/m],
      ['catalog:\n  dhtAnnounce: sometimes\n', /catalog\.dhtAnnounce: /],
      // anti-entropy intervals are bounded: 0 ran rounds back to back, 1000h fired every 1 ms
      ['kv:\n  syncInterval: 0\n', /kv\.syncInterval: must be at least 100ms/],
      ['catalog:\n  syncInterval: 1000h\n', /catalog\.syncInterval: must be at most 24h/],
      // a value over one replication message could never reach the other agents
      ['kv:\n  maxValueSize: 8MiB\n', /kv\.maxValueSize: expected 1B to 3MiB/],
      // two services with one id (the name, by default) would replace each other
      [
        'services:\n  - {name: web, port: 80}\n  - {name: web, port: 81}\n',
        /services\[1\]\.id: "web" is used by an earlier entry/,
      ],
      [
        'membership:\n  probeInterval: abc\n',
        /membership\.probeInterval: expected a duration like/,
      ],
      ['site: [unclosed\n', /not valid YAML/],
    ];
    for (const [yaml, stderr] of cases) {
      writeFileSync(file, yaml);
      const r = runCli(['agent', '--config', file, '--data', dir]);
      expect(r.code, yaml).toBe(2);
      expect(r.stderr, yaml).toMatch(stderr);
    }
    // an endless file is not read forever
    const r = runCli(['agent', '--config', '/dev/zero', '--data', dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config: \/dev\/zero is larger than 1048576 bytes/);
  });

  it('a --cluster-key file that does not exist is created (0600), and is said; IPv6 addresses are URLs', async () => {
    const dir = cluster.current.dataDir('new-key');
    mkdirSync(dir, { recursive: true });
    const keyFile = join(dir, 'made.key');
    // it was refused ("does not exist"), where the contract says created at first start
    const p = await cluster.current.spawnAgent({
      name: 'v6',
      clusterKeyFile: keyFile,
      api: '[::1]:0',
      dns: '[::1]:0',
    });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(() => parseClusterKey(readFileSync(keyFile, 'utf8'), keyFile)).not.toThrow();
    expect(
      p.logs.find((l) => String(l.msg).startsWith('created a new cluster key'))?.clusterKey,
    ).toBe(keyFile);
    // "http://::1:PORT" was no URL
    expect(p.api).toMatch(/^http:\/\/\[::1\]:\d+$/);
    expect(p.dns).toMatch(/^\[::1\]:\d+$/);
    expect((await p.http('GET', '/v1/health')).status).toBe(200);
    // its directory must exist: a mistyped path is not made into a tree of directories
    const r = runCli(['agent', '--data', dir, '--cluster-key', join(dir, 'nope', 'k.key')]);
    expect([r.code, r.stderr]).toEqual([
      2,
      `edgeswarm: invalid configuration: clusterKey: cannot create ${join(dir, 'nope', 'k.key')}: ${join(dir, 'nope')} does not exist (create it, or the key with 'edgeswarm keygen > ${join(dir, 'nope', 'k.key')}')\n`,
    ]);
  });

  it('a bad cluster key file is named, exit 2', () => {
    const dir = cluster.current.dataDir('key');
    const file = join(dir, 'bad.key');
    writeFileSync(file, 'hello');
    const r = runCli([
      'agent',
      '--cluster-key',
      file,
      '--data',
      dir,
      '--api',
      'off',
      '--dns',
      'off',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/clusterKey: .*not a cluster key/);
    // refused before anything is made, and not logged as an agent that stopped
    expect(existsSync(join(dir, 'peer.key'))).toBe(false);
    expect(r.stdout).not.toMatch(/agent stopped/);
    // a directory as the key file, a file as the data directory: named, exit 2 (were EISDIR and
    // EEXIST, exit 1, naming no key)
    const off = ['--api', 'off', '--dns', 'off'];
    const asDir = runCli(['agent', '--cluster-key', dir, '--data', dir, ...off]);
    expect(asDir.code).toBe(2);
    expect(asDir.stderr).toMatch(/clusterKey: cannot read .*: is a directory \(EISDIR\)/);
    // the same for the default DATA/cluster.key
    const data = cluster.current.dataDir('key-default');
    mkdirSync(join(data, 'cluster.key'), { recursive: true });
    const defaultAsDir = runCli(['agent', '--data', data, ...off]);
    expect(defaultAsDir.code).toBe(2);
    expect(defaultAsDir.stderr).toMatch(
      /clusterKey: cannot read .*cluster\.key: is a directory \(EISDIR\)/,
    );
    const asFile = runCli(['agent', '--data', file, ...off]);
    expect(asFile.code).toBe(2);
    expect(asFile.stderr).toMatch(
      /data: cannot use .* as the data directory: it \(or a parent\) is a file/,
    );
    // under a file, too; and under /proc, where Node's recursive mkdir looped forever at full CPU
    // and ignored SIGTERM
    const underFile = runCli(['agent', '--data', join(file, 'sub'), ...off]);
    expect(underFile.stderr).toMatch(/data: cannot use .* it \(or a parent\) is a file/);
    if (existsSync('/proc/self')) {
      const proc = runCli(['agent', '--data', '/proc/edgeswarm-nope', ...off]);
      expect([proc.code, proc.stderr]).toEqual([
        2,
        'edgeswarm: invalid configuration: data: cannot use /proc/edgeswarm-nope as the data directory: ENOENT\n',
      ]);
    }
  });

  it('the API answers 401 without a token and 400 naming the problem for bad JSON', async () => {
    const p = await cluster.current.spawnAgent({ name: 'h' });
    const health = await fetch(`${p.api}/v1/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const noToken = await fetch(`${p.api}/v1/agent`);
    expect(noToken.status).toBe(401);
    expect(((await noToken.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    const wrong = await fetch(`${p.api}/v1/agent`, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const bad = await p.http('POST', '/v1/join', '{"addrs": [');
    expect(bad.status).toBe(400);
    expect((bad.json as { error: { code: string; message: string } }).error.message).toMatch(
      /not valid JSON/,
    );
    const wrongField = await p.http('POST', '/v1/join', { addrs: [42] });
    expect(wrongField.status).toBe(400);
    expect((wrongField.json as { error: { message: string } }).error.message).toMatch(
      /^addrs\[0\]:/,
    );
    // addresses of the right shape that no one could dial: 400 naming the one, not a 502 later
    for (const [addr, why] of [
      ['/ip4/999.1.1.1/tcp/1', /Invalid IPv4 address/],
      ['/ip4/127.0.0.1/tcp/99999', /port 99999 is not 1-65535/],
      ['127.0.0.1:0', /port 0 is not 1-65535/],
      ['/ip4/127.0.0.1/tcp/1/p2p/abc', /\/p2p\/abc is not a peer id/],
    ] as const) {
      const r = await p.http('POST', '/v1/join', { addrs: ['/ip4/127.0.0.1/tcp/1', addr] });
      expect(r.status).toBe(400);
      expect((r.json as { error: { message: string } }).error.message).toMatch(/^addrs\[1\]: /);
      expect((r.json as { error: { message: string } }).error.message).toMatch(why);
    }
    const extra = await p.http('POST', '/v1/join', { addrs: ['/ip4/127.0.0.1/tcp/1'], bogus: 1 });
    expect(extra.status).toBe(400);
    expect((extra.json as { error: { message: string } }).error.message).toMatch(
      /bogus: unknown field/,
    );
    // what Node's HTTP parser refuses still gets a JSON error naming the problem
    const rawHttp = (request: string) =>
      new Promise<string>((resolve, reject) => {
        const api = new URL(p.api);
        const sock = connect(Number(api.port), api.hostname, () => sock.end(request));
        let got = '';
        sock.on('data', (d) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      });
    const fooMethod = await rawHttp('FOO /v1/agent HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(fooMethod).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(fooMethod).toMatch(
      /\{"error":\{"code":"bad_method","message":"unknown HTTP method"\}\}$/,
    );
    const longUrl = await rawHttp(`GET /v1/kv/${'x'.repeat(100_000)} HTTP/1.1\r\nhost: x\r\n\r\n`);
    expect(longUrl).toMatch(/^HTTP\/1\.1 431 /);
    expect(longUrl).toMatch(/"code":"headers_too_large"/);
    const garbage = await rawHttp('\x00\x01\x02 nonsense\r\n\r\n');
    expect(garbage).toMatch(/^HTTP\/1\.1 400 /);
    expect(garbage).toMatch(/"code":"(bad_request|bad_method)"/);
    // the agent is unharmed
    expect((await p.http('GET', '/v1/health')).status).toBe(200);
    const notFound = await p.http('GET', '/v1/nope');
    expect(notFound.status).toBe(404);
    const method = await p.http('DELETE', '/v1/agent');
    expect(method.status).toBe(405);
    const info = await p.http('GET', '/v1/agent');
    expect(info.status).toBe(200);
    expect(info.json).toMatchObject({
      id: p.peerId,
      name: 'h',
      site: 'default',
      version: expect.any(String),
    });
    const metrics = await fetch(`${p.api}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/edgeswarm_http_requests_total\{route="GET \/v1\/agent",code="401"\} 2/);
    // a streamed upload refused before its body is read: fetch stops sending and closes, which
    // was counted as one more malformed request besides the 400
    async function* upload() {
      for (let i = 0; i < 64; i++) {
        yield new Uint8Array(64 * 1024);
        await sleep(2);
      }
    }
    const early = await fetch(`${p.api}/v1/images/app/1?copies=0`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${p.token}` },
      body: Readable.toWeb(Readable.from(upload())) as unknown as ReadableStream<Uint8Array>,
      duplex: 'half',
    } as RequestInit);
    expect(early.status).toBe(400);
    await early.text();
    // (the closed upload reached the parser within a few ms here; room for a loaded machine)
    await sleep(1000);
    const after = await (await fetch(`${p.api}/metrics`)).text();
    expect(after).toMatch(/edgeswarm_http_requests_total\{route="unparsed",code="400"\} 2\n/);
  });

  it('client commands: status works, bad usage exits 2, an unreachable agent exits 1', async () => {
    const p = await cluster.current.spawnAgent({ name: 'cli' });
    const ok = runCli(['status', '--api', p.api, '--data', p.dataDir, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).agent.id).toBe(p.peerId);
    const human = runCli(['status', '--api', p.api, '--token', p.token]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/agent\s+cli/);
    const usage = runCli(['join']);
    expect(usage.code).toBe(2);
    // no command at all, or a group without its subcommand: help on stderr, bad usage
    expect(runCli([]).code).toBe(2);
    expect(runCli(['kv']).code).toBe(2);
    expect(runCli(['--help']).code).toBe(0);
    // a value the agent refuses (400) is bad usage too, exit 2 like one the CLI catches itself
    const refused = runCli([
      'services',
      'register',
      '--name',
      'web',
      '--port',
      '80',
      '--check',
      'ttl:1000h',
      '--api',
      p.api,
      '--token',
      p.token,
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe('edgeswarm: check.ttl: must be at most 24h\n');
    const api = ['--api', p.api, '--token', p.token];
    // an empty id or name is bad usage naming it (they were route errors: "DELETE is not allowed
    // on /v1/services/; use GET", and `pass ''` registered nothing under the id "ttl")
    for (const [args, what] of [
      [['services', 'deregister', ''], 'ID'],
      [['services', 'pass', ''], 'ID'],
      [['services', 'register', '--name', '', '--port', '80'], '--name'],
      [['services', 'register', '--name', 'web', '--id', '', '--port', '80'], '--id'],
      [['discover', ''], 'NAME'],
    ] as const) {
      const r = runCli([...args, ...api]);
      expect([r.code, r.stderr], args.join(' ')).toEqual([
        2,
        `edgeswarm: ${what} must not be empty\n`,
      ]);
    }
    // a bad name is said to be the name (the id defaults to it, and the agent named the id), and
    // an interval without a unit is milliseconds, which the message says
    const register = (name: string) => ['services', 'register', '--name', name, '--port', '80'];
    for (const [args, err] of [
      [register('web!!'), '--name "web!!": must be a lower-case DNS label (a-z 0-9 -, at most 63)'],
      [
        [...register('web'), '--check', 'tcp:127.0.0.1:1', '--interval', '2'],
        'check.interval: must be at least 100ms (a number without a unit is milliseconds: write 10s for seconds)',
      ],
    ] as const) {
      const r = runCli([...args, ...api]);
      expect([r.code, r.stderr], args.join(' ')).toEqual([2, `edgeswarm: ${err}\n`]);
    }
    const reg = ['services', 'register', '--name', 'web', '--port', '80', '--check', 'ttl:30s'];
    expect(runCli([...reg, ...api]).code).toBe(0);
    const ls = runCli(['services', 'ls', ...api]);
    expect(ls.stdout).toMatch(/^web\s+web\s+80\s+-\s+-\s+ttl\s+failing$/m);
    expect(JSON.parse(runCli(['services', 'ls', '--json', ...api]).stdout)[0].check).toEqual({
      ttl: 30_000,
    });
    // nothing passing, and an unknown name, are told apart (both said "no passing instances"),
    // as failures with the reason on stderr (it was on stdout, and --json exited 0)
    const failing = runCli(['discover', 'web', ...api]);
    expect([failing.code, failing.stdout, failing.stderr]).toEqual([
      1,
      '',
      'edgeswarm: no passing instances of web (1 registered; --all shows failing ones)\n',
    ]);
    const unknown = runCli(['discover', 'nosuch', ...api]);
    expect([unknown.code, unknown.stdout, unknown.stderr]).toEqual([
      1,
      '',
      'edgeswarm: no service named nosuch is known in the cluster\n',
    ]);
    // a site no member is in says so (it said "no passing instances of web")
    const typo = runCli(['discover', 'web', '--site', 'defualt', ...api]);
    expect([typo.code, typo.stderr]).toEqual([1, 'edgeswarm: no member is in site defualt\n']);
    const none = runCli(['discover', 'web', '--json', ...api]);
    expect([none.code, JSON.parse(none.stdout), none.stderr]).toEqual([
      1,
      [],
      'edgeswarm: no passing instances of web (1 registered; --all shows failing ones)\n',
    ]);
    // a ttl report carries the output given (it was accepted and replaced by "ttl passed")
    const passed = runCli([
      'services',
      'pass',
      'web',
      '--output',
      'queue drained',
      '--json',
      ...api,
    ]);
    expect([passed.code, JSON.parse(passed.stdout).output]).toEqual([0, 'queue drained']);
    const found = runCli(['discover', 'web', '--json', ...api]);
    expect([found.code, JSON.parse(found.stdout).length]).toEqual([0, 1]);
    // reporting a ttl for a service without a ttl check is a failure (exit 1, a 409), not bad
    // usage: the command line was right, the service is not one that takes reports
    const plain = ['services', 'register', '--name', 'db', '--port', '5432', '--id', 'db1'];
    expect(runCli([...plain, ...api]).code).toBe(0);
    const notTtl = runCli(['services', 'fail', 'db1', ...api]);
    expect([notTtl.code, notTtl.stderr]).toEqual([1, 'edgeswarm: service db1 has no ttl check\n']);
    const notTtlHttp = await p.http('PUT', '/v1/services/db1/ttl', { status: 'pass' });
    expect(notTtlHttp.status).toBe(409);
    // an empty KV key is bad usage (`kv get ""` printed the whole key list)
    for (const args of [
      ['get', ''],
      ['put', '', 'v'],
      ['del', ''],
    ]) {
      const r = runCli(['kv', ...args, '--api', p.api, '--token', p.token]);
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('edgeswarm: KEY must not be empty\n');
    }
    // a discovery limit of 0 is bad usage, from the CLI and the API alike (it exited 1, "no
    // passing instances", as if none were registered)
    const zero = runCli(['discover', 'web', '--limit', '0', '--api', p.api, '--token', p.token]);
    expect(zero.code).toBe(2);
    expect(zero.stderr).toBe('edgeswarm: --limit: must be at least 1\n');
    expect((await p.http('GET', '/v1/discover/web?limit=0')).status).toBe(400);
    // (port 1 is one fetch refuses outright: this was never a connection refused)
    const down = runCli(['status', '--api', `http://127.0.0.1:${await freeFixedPort()}`]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/cannot reach the agent/);
    const unauth = runCli(['status', '--api', p.api, '--token', 'wrong']);
    expect(unauth.code).toBe(1);
    expect(unauth.stderr).toMatch(/token/);
    const keygen = runCli(['keygen']);
    expect(keygen.code).toBe(0);
    expect(keygen.stdout).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/);
  });

  it('image commands: pull --version N gets that version; pushing a directory is bad usage', async () => {
    const p = await cluster.current.spawnAgent({ name: 'img' });
    const dir = cluster.current.dataDir('img-files');
    const auth = ['--api', p.api, '--token', p.token];
    const v1 = randomBytes(200_000);
    const v2 = Buffer.concat([v1.subarray(0, 100_000), randomBytes(100_000)]);
    writeFileSync(join(dir, 'v1'), v1);
    writeFileSync(join(dir, 'v2'), v2);
    expect(runCli(['image', 'push', join(dir, 'v1'), 'app:v1', ...auth]).code).toBe(0);
    expect(runCli(['image', 'push', join(dir, 'v2'), 'app:v1', ...auth]).code).toBe(0);
    // `--version` here is the pull's option, not the program's (which printed 0.1.0 and exited 0)
    const old = runCli([
      'image',
      'pull',
      'app:v1',
      '-o',
      join(dir, 'out1'),
      '--version',
      '1',
      ...auth,
    ]);
    expect(old.code).toBe(0);
    expect(readFileSync(join(dir, 'out1')).equals(v1)).toBe(true);
    expect(runCli(['image', 'pull', 'app:v1', '-o', join(dir, 'out2'), ...auth]).code).toBe(0);
    expect(readFileSync(join(dir, 'out2')).equals(v2)).toBe(true);
    // a directory: one line naming it, exit 2 (it was an unhandled EISDIR with a stack)
    const bad = runCli(['image', 'push', dir, 'app:v2', ...auth]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe(`edgeswarm: cannot push ${dir}: not a regular file\n`);
    // a file that cannot be read is a failure, exit 1, not bad usage (it was 2)
    const gone = runCli(['image', 'push', join(dir, 'nope'), 'app:v2', ...auth]);
    expect([gone.code, gone.stderr]).toEqual([
      1,
      `edgeswarm: cannot read ${join(dir, 'nope')}: no such file or directory (ENOENT)\n`,
    ]);
    const kvGone = runCli(['kv', 'put', 'k', '--file', join(dir, 'nope'), ...auth]);
    expect([kvGone.code, kvGone.stderr]).toEqual([
      1,
      `edgeswarm: --file: cannot read ${join(dir, 'nope')}: no such file or directory (ENOENT)\n`,
    ]);
    // a placement in a site no member is in is accepted with a warning (it was silent), and
    // status says why nothing is there
    const nowhere = runCli([
      'image',
      'push',
      join(dir, 'v1'),
      'far:v1',
      '--sites',
      'nosuchsite',
      ...auth,
    ]);
    expect(nowhere.code).toBe(0);
    expect(nowhere.stderr).toContain(
      'warning: no live member is in site nosuchsite; the image waits there until one joins\n',
    );
    const farStatus = runCli(['image', 'status', 'far:v1', ...auth]);
    expect(farStatus.stdout).toMatch(/^nosuchsite\s+yes\s+0\/0 \(no live member\)/m);
    // pulling to a directory is bad usage, and into a missing one a failure, both found before
    // anything is fetched (a directory was an EISDIR with a stack after the whole download)
    const toDir = runCli(['image', 'pull', 'app:v1', '-o', dir, ...auth]);
    expect(toDir.code).toBe(2);
    expect(toDir.stderr).toBe(`edgeswarm: -o: ${dir} is a directory; give the path of a file\n`);
    const missing = join(dir, 'nope', 'out');
    const toMissing = runCli(['image', 'pull', 'app:v1', '-o', missing, ...auth]);
    expect(toMissing.code).toBe(1);
    expect(toMissing.stderr).toBe(
      `edgeswarm: -o: cannot write ${missing}: no such file or directory (ENOENT)\n`,
    );
    // an unknown image: the agent's 404, and no partial file left behind
    const unknown = runCli(['image', 'pull', 'app:v9', '-o', join(dir, 'out3'), ...auth]);
    expect(unknown.code).toBe(1);
    expect(existsSync(join(dir, 'out3.partial'))).toBe(false);
    expect(existsSync(join(dir, 'out3'))).toBe(false);
    // --json describes what was written (it printed nothing); with -o - stdout is the image
    const json = runCli(['image', 'pull', 'app:v1', '-o', join(dir, 'out4'), '--json', ...auth]);
    expect(json.code).toBe(0);
    const out = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(out).toMatchObject({ name: 'app', tag: 'v1', version: 2, size: v2.length });
    expect(out.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(runCli(['image', 'pull', 'app:v1', '-o', '-', '--json', ...auth]).code).toBe(2);
  });
});

/** A random TCP port in 20000-29999 (below Linux's ephemeral range) that nothing listens on. */
async function freeFixedPort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
}
