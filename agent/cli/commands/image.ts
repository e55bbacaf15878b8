// image push|pull|ls|status|rm.
import {
  closeSync,
  createReadStream,
  createWriteStream,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { LocalFileError, UsageError, fileErrorReason } from '../../errors.js';
import type { ClientOptions } from '../client.js';
import { formatBytes, Progress, table } from '../format.js';
import { clientCommand, clientFrom, printJson } from '../program.js';

type Opts = ClientOptions & { json?: boolean };

/** "name:tag" → the URL path of the image; usage error naming the problem. */
export function imagePath(ref: string): string {
  const i = ref.lastIndexOf(':');
  if (i <= 0 || i === ref.length - 1 || ref.slice(i).includes('/'))
    throw new UsageError(`expected NAME:TAG, got ${JSON.stringify(ref)}`);
  return `/v1/images/${encodeURIComponent(ref.slice(0, i))}/${encodeURIComponent(ref.slice(i + 1))}`;
}

function counter(progress: Progress): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      progress.update(n);
      cb(null, chunk);
    },
  });
}

interface Status {
  name: string;
  tag: string;
  version: number;
  digest: string;
  size: number;
  chunks: number;
  placement: { sites: 'all' | string[]; copies: number };
  local: { state: string; bytes: number; paused?: { reason: string; retryInMs: number } };
  versions?: number[];
  sites?: Array<{
    site: string;
    placed: boolean;
    wanted: number;
    complete: string[];
    bytesHeld: number;
  }>;
}

/**
 * Opens OUTPUT.partial for writing. OUTPUT a directory is bad usage; a directory that does not
 * exist or is not writable is a failure (LocalFileError).
 */
function openPartial(output: string): { path: string; fd: number } {
  let isDir = false;
  try {
    isDir = statSync(output).isDirectory();
  } catch {
    // does not exist yet: the usual case
  }
  if (isDir) throw new UsageError(`-o: ${output} is a directory; give the path of a file`);
  const path = `${output}.partial`;
  try {
    return { path, fd: openSync(path, 'w') };
  } catch (err) {
    throw new LocalFileError(`-o: cannot write ${output}: ${fileErrorReason(err)}`);
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

export function registerImageCommands(program: Command): void {
  const image = program
    .command('image')
    .description('workload images: push once, replicated to every site that should hold them');

  clientCommand(
    image
      .command('push')
      .description(
        'push a file as NAME:TAG (a new version if it exists); only changed chunks travel; a progress bar on a terminal',
      )
      .argument('<file>')
      .argument('<name:tag>')
      .option(
        '--sites <sites>',
        '"all" or a comma-separated list of sites that must hold it',
        'all',
      )
      .option('--copies <n>', 'full copies per site', '1'),
  ).action(async (file: string, ref: string, opts: Opts & { sites: string; copies: string }) => {
    const path = imagePath(ref);
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) throw new UsageError(`cannot push ${file}: not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new LocalFileError(`cannot read ${file}: ${fileErrorReason(err)}`);
    }
    const progress = new Progress('push', size);
    // a read error (the file vanished, EIO) ends the upload with that error; pipe() alone would
    // leave it unhandled
    const read = createReadStream(file);
    const counted = counter(progress);
    read.on('error', (err) => counted.destroy(err));
    const body = Readable.toWeb(read.pipe(counted)) as unknown as ReadableStream<Uint8Array>;
    const q = new URLSearchParams({ sites: opts.sites, copies: opts.copies });
    const res = await clientFrom(opts).raw('PUT', `${path}?${q}`, {
      body,
      duplex: 'half',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    progress.finish();
    const out = (await res.json()) as {
      name: string;
      tag: string;
      version: number;
      digest: string;
      size: number;
      chunks: number;
      emptySites?: string[];
    };
    for (const site of out.emptySites ?? [])
      process.stderr.write(
        `warning: no live member is in site ${site}; the image waits there until one joins\n`,
      );
    if (opts.json) printJson(out);
    else
      process.stdout.write(
        `pushed ${out.name}:${out.tag} version ${out.version}: ${formatBytes(out.size)} in ${out.chunks} chunks, ${out.digest}\n`,
      );
  });

  clientCommand(
    image
      .command('pull')
      .description(
        'write NAME:TAG to a file, fetching what this agent lacks from its peers; a progress bar on a terminal',
      )
      .argument('<name:tag>')
      .requiredOption('-o, --output <file>', 'where to write it (- for stdout)')
      .option('--version <n>', 'an earlier version kept for rollback'),
  ).action(async (ref: string, opts: Opts & { output: string; version?: string }) => {
    if (opts.output === '-' && opts.json)
      throw new UsageError('--json cannot be used with -o -: standard output carries the image');
    const path = imagePath(ref);
    // a file that cannot be written is found before anything is fetched, not after
    const tmp = opts.output === '-' ? undefined : openPartial(opts.output);
    let res: Response;
    try {
      const q = opts.version ? `?version=${encodeURIComponent(opts.version)}` : '';
      res = await clientFrom(opts).raw('GET', `${path}/content${q}`);
    } catch (err) {
      if (tmp) {
        closeSync(tmp.fd);
        removeQuietly(tmp.path);
      }
      throw err;
    }
    const size = Number(res.headers.get('content-length') ?? 0);
    const progress = new Progress('pull', size);
    const body = Readable.fromWeb(res.body as never);
    if (!tmp) {
      await pipeline(body, counter(progress), process.stdout);
    } else {
      // write to a temporary name and rename at the end, so a failed pull leaves no half file
      let broken = false;
      body.once('error', () => (broken = true));
      try {
        await pipeline(body, counter(progress), createWriteStream(tmp.path, { fd: tmp.fd }));
        renameSync(tmp.path, opts.output);
      } catch (err) {
        removeQuietly(tmp.path);
        // a local failure (ENOSPC, EIO) names the file; a broken download keeps its own message
        const code = (err as NodeJS.ErrnoException).code;
        if (!broken && code)
          throw new LocalFileError(`cannot write ${opts.output}: ${fileErrorReason(err)}`);
        throw err;
      }
    }
    progress.finish();
    const digest = res.headers.get('x-edgeswarm-digest');
    const version = Number(res.headers.get('x-edgeswarm-version'));
    if (opts.json) {
      const i = ref.lastIndexOf(':');
      printJson({
        name: ref.slice(0, i),
        tag: ref.slice(i + 1),
        version,
        digest,
        size,
        output: opts.output,
      });
    } else if (tmp)
      process.stderr.write(`wrote ${formatBytes(size)} to ${opts.output} (${digest})\n`);
  });

  clientCommand(
    image.command('ls').description('images known to the cluster and what this agent holds'),
  ).action(async (opts: Opts) => {
    const list = await clientFrom(opts).json<Status[]>('GET', '/v1/images');
    if (opts.json) return printJson(list);
    process.stdout.write(
      `${table(
        ['IMAGE', 'VERSION', 'SIZE', 'PLACEMENT', 'HERE', 'DIGEST'],
        list.map((i) => [
          `${i.name}:${i.tag}`,
          i.version,
          formatBytes(i.size),
          `${i.placement.sites === 'all' ? 'all' : i.placement.sites.join(',')} x${i.placement.copies}`,
          i.local.state === 'pulling'
            ? `${i.local.paused ? 'paused' : 'pulling'} ${Math.floor((100 * i.local.bytes) / Math.max(1, i.size))}%`
            : i.local.state,
          `${i.digest.slice(0, 19)}…`,
        ]),
      )}\n`,
    );
    process.stdout.write(list.map(pausedLine).join(''));
  });

  clientCommand(
    image
      .command('status')
      .description('per site: members with a full copy, bytes held')
      .argument('<name:tag>'),
  ).action(async (ref: string, opts: Opts) => {
    const s = await clientFrom(opts).json<Status>('GET', imagePath(ref));
    if (opts.json) return printJson(s);
    process.stdout.write(
      `${s.name}:${s.tag} version ${s.version} (kept: ${(s.versions ?? []).join(', ')}), ${formatBytes(s.size)}, ${s.digest}\n`,
    );
    process.stdout.write(
      `${table(
        ['SITE', 'PLACED', 'COPIES', 'FULL COPIES ON', 'BYTES HELD'],
        (s.sites ?? []).map((x) => [
          x.site,
          x.placed ? 'yes' : 'no',
          x.placed
            ? `${x.complete.length}/${x.wanted}${x.wanted === 0 ? ' (no live member)' : ''}`
            : '-',
          x.complete.join(',') || '-',
          formatBytes(x.bytesHeld),
        ]),
      )}\n`,
    );
    process.stdout.write(pausedLine(s));
  });

  clientCommand(
    image
      .command('rm')
      .description('remove NAME:TAG (all versions) everywhere')
      .argument('<name:tag>'),
  ).action(async (ref: string, opts: Opts) => {
    const res = await clientFrom(opts).json<{ removed: string }>('DELETE', imagePath(ref));
    if (opts.json) printJson(res);
    else process.stdout.write(`removed ${res.removed}\n`);
  });
}

/** A line saying why this agent's pull of the image is paused, or nothing. */
function pausedLine(i: Status): string {
  const p = i.local.paused;
  if (!p) return '';
  return `${i.name}:${i.tag}: pull paused here (${p.reason}); next try in ${Math.ceil(p.retryInMs / 1000)} s\n`;
}
