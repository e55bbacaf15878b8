// kv put|get|del|ls|watch: the replicated key/value store.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { EdgeswarmError, LocalFileError, UsageError, fileErrorReason } from '../../errors.js';
import { pathSegment, type ClientOptions } from '../client.js';
import { table } from '../format.js';
import { clientCommand, clientFrom, printJson } from '../program.js';

type Opts = ClientOptions & { json?: boolean };

const path = (key: string) => {
  // a URL resolves a path segment . or .. (also as %2E) before it is sent
  if (key === '.' || key === '..')
    throw new UsageError(
      `KEY ${JSON.stringify(key)} cannot be sent in a URL; use the HTTP API with the path as is (curl --path-as-is)`,
    );
  // an empty KEY made GET /v1/kv/ (the whole list) or a 405 about a method
  return `/v1/kv/${pathSegment(key, 'KEY')}`;
};

/** A value for --json: as text when it is UTF-8, else as base64 (`valueBase64`). */
function jsonValue(bytes: Uint8Array): { value: string } | { valueBase64: string } {
  try {
    return { value: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    return { valueBase64: Buffer.from(bytes).toString('base64') };
  }
}

/** Reads server-sent events from a response body, calling `onEvent` with each data payload. */
export async function readSse(
  body: ReadableStream<Uint8Array>,
  onEvent: (data: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const data = block
        .split('\n')
        .filter((l) => l.startsWith('data: '))
        .map((l) => l.slice(6))
        .join('\n');
      if (data) onEvent(data);
    }
  }
}

export function registerKvCommands(program: Command): void {
  const kv = program
    .command('kv')
    .description(
      'the replicated key/value store (readable and writable at every site, even cut off)',
    );

  clientCommand(
    kv
      .command('put')
      .description('write a value (acknowledged once on disk at this agent; replicated everywhere)')
      .argument('<key>', 'the key, a path such as config/feature-x')
      .argument('[value]', 'the value (or use --file)')
      .option('--file <file>', 'read the value from a file (- for stdin)'),
  ).action(async (key: string, value: string | undefined, opts: Opts & { file?: string }) => {
    if ((value === undefined) === (opts.file === undefined))
      throw new UsageError('give either VALUE or --file FILE');
    let body: Uint8Array;
    if (opts.file !== undefined) {
      try {
        body = readFileSync(opts.file === '-' ? 0 : opts.file);
      } catch (err) {
        throw new LocalFileError(`--file: cannot read ${opts.file}: ${fileErrorReason(err)}`);
      }
    } else body = new TextEncoder().encode(value);
    const res = await clientFrom(opts).raw('PUT', path(key), {
      body: body as Uint8Array<ArrayBuffer>,
      headers: { 'content-type': 'application/octet-stream' },
    });
    const out = (await res.json()) as { key: string; version: string };
    if (opts.json) printJson(out);
    else process.stdout.write(`${out.key} = ${body.length} bytes (version ${out.version})\n`);
  });

  clientCommand(
    kv
      .command('get')
      .description(
        'print a value to stdout; exit 1 if the key is absent (--json: {key, version, value}, or valueBase64 for a value that is not UTF-8)',
      )
      .argument('<key>', 'the key, a path such as config/feature-x'),
  ).action(async (key: string, opts: Opts) => {
    const res = await clientFrom(opts).raw('GET', path(key));
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (opts.json)
      printJson({
        key,
        version: res.headers.get('x-edgeswarm-version'),
        ...jsonValue(bytes),
      });
    else {
      process.stdout.write(bytes);
      // the value as stored, byte for byte; on a terminal, a newline so the prompt is not glued on
      if (process.stdout.isTTY && bytes.length > 0 && bytes[bytes.length - 1] !== 0x0a)
        process.stdout.write('\n');
    }
  });

  clientCommand(
    kv
      .command('del')
      .description('delete a key')
      .argument('<key>', 'the key, a path such as config/feature-x'),
  ).action(async (key: string, opts: Opts) => {
    const res = await clientFrom(opts).json<{ key: string; version: string }>('DELETE', path(key));
    if (opts.json) printJson(res);
    else process.stdout.write(`deleted ${res.key}\n`);
  });

  clientCommand(
    kv.command('ls').description('list keys (with a prefix: only those)').argument('[prefix]'),
  ).action(async (prefix: string | undefined, opts: Opts) => {
    const q = prefix ? `?prefix=${encodeURIComponent(prefix)}` : '';
    const list = await clientFrom(opts).json<Array<{ key: string; size: number; version: string }>>(
      'GET',
      `/v1/kv${q}`,
    );
    if (opts.json) return printJson(list);
    process.stdout.write(
      `${table(
        ['KEY', 'SIZE', 'VERSION'],
        list.map((e) => [e.key, e.size, e.version]),
      )}\n`,
    );
  });

  clientCommand(
    kv
      .command('watch')
      .description('print one line per change under a prefix until Ctrl-C')
      .argument('[prefix]'),
  ).action(async (prefix: string | undefined, opts: Opts) => {
    const q = prefix ? `?prefix=${encodeURIComponent(prefix)}` : '';
    const res = await clientFrom(opts).raw('GET', `/v1/watch${q}`);
    // the stream ends only when the agent ends it (Ctrl-C ends us first): say so, exit 1 (it was
    // "edgeswarm: terminated", or nothing)
    const closed = () =>
      new EdgeswarmError('watch_closed', 'the agent closed the watch (it stopped or restarted)');
    if (!res.body) throw closed();
    await readSse(res.body, (data) => {
      if (opts.json) {
        process.stdout.write(`${data}\n`);
        return;
      }
      const e = JSON.parse(data) as { key: string; op: string; size: number; version: string };
      process.stdout.write(
        `${e.op} ${e.key}${e.op === 'put' ? ` (${e.size} bytes)` : ''} version ${e.version}\n`,
      );
    }).catch(() => undefined);
    throw closed();
  });
}
