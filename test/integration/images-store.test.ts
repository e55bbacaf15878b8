// Disk-heavy tests of the image store: SIGKILL of a writer at random instants (while it puts,
// flushes, deletes and compacts), and a durable (fsync) import/export of a bigger image.
import { spawn } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChunkStore, quarantinedChunks } from '../../storage/chunks/index.js';
import { exportImage, importImage } from '../../storage/images/index.js';

const ROOT = join(import.meta.dirname, '..', '..');
// The chunk store and what it imports, transpiled for a child process (packages, i.e. `level`,
// come from the repository's node_modules through a symlink).
const SOURCES = [
  'storage/errors.ts',
  ...(await readdir(join(ROOT, 'storage/chunks')))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `storage/chunks/${f}`),
  ...(await readdir(join(ROOT, 'storage/kv')))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => `storage/kv/${f}`),
];

// Puts chunks (mostly ~16 KiB, some up to 1 MiB) with several in flight, some with flush and
// some without (acknowledged after the flush() that follows), deletes some of its own chunks and
// compacts now and then. Prints "+hash" once a chunk is acknowledged as durable and "-hash"
// before it starts deleting one (a deleted chunk may come back after a crash, or not).
const WRITER = `
import { randomBytes } from 'node:crypto';
import { ChunkStore } from './storage/chunks/store.js';
const store = await ChunkStore.open(process.argv[2], { packBytes: 4 << 20 });
process.stdout.write('ready\\n');
const mine = [];
const size = () =>
  Math.random() < 0.8 ? 4096 + Math.floor(Math.random() * 24576) : 1 + Math.floor(Math.random() * (1 << 20));
async function writer() {
  for (let i = 0; ; i++) {
    if (i % 5 === 0) {
      const batch = Array.from({ length: 8 }, () => randomBytes(size()));
      const added = await Promise.all(batch.map((b) => store.add(b, { flush: false })));
      await store.flush();
      for (const { hash } of added) {
        mine.push(hash);
        process.stdout.write('+' + hash + '\\n');
      }
    } else {
      const { hash } = await store.add(randomBytes(size()));
      mine.push(hash);
      process.stdout.write('+' + hash + '\\n'); // acknowledged: put() resolved
    }
  }
}
async function reaper() {
  for (;;) {
    await new Promise((r) => setTimeout(r, 5));
    for (let k = 0; k < 20 && mine.length > 8; k++) {
      const [hash] = mine.splice(Math.floor(Math.random() * mine.length), 1);
      process.stdout.write('-' + hash + '\\n');
      await store.delete(hash);
    }
    if (Math.random() < 0.3) await store.compact({ minDeadFraction: 0.3 });
  }
}
await Promise.all([writer(), writer(), writer(), writer(), reaper()]);
`;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'es-images-int-'));
  const out = join(work, 'child');
  for (const src of SOURCES) {
    const code = ts.transpileModule(await readFile(join(ROOT, src), 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText;
    const dest = join(out, src.replace(/\.ts$/, '.js'));
    await mkdir(dirname(dest), { recursive: true });
    await writeFile(dest, code);
  }
  await writeFile(join(out, 'package.json'), '{"type":"module"}');
  await writeFile(join(out, 'writer.js'), WRITER);
  await symlink(join(ROOT, 'node_modules'), join(out, 'node_modules'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Runs the writer, waits a random moment after it is ready, SIGKILLs it; returns its output. */
function runAndKill(storeDir: string, killAfterMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(work, 'child', 'writer.js'), storeDir], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    let buf = '';
    let timer: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) {
        if (l === 'ready') timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        else lines.push(l);
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(lines);
      else reject(new Error(`writer exited with ${code ?? signal}`));
    });
  });
}

describe('chunk store under SIGKILL', () => {
  it('never serves a half-written chunk and keeps every acknowledged one', async () => {
    const storeDir = join(work, 'killed');
    const required = new Set<string>();
    let acked = 0;
    let deleted = 0;
    for (let round = 0; round < 10; round++) {
      for (const l of await runAndKill(storeDir, 50 + Math.floor(Math.random() * 400))) {
        if (l.startsWith('+')) {
          required.add(l.slice(1));
          acked++;
        } else if (l.startsWith('-')) {
          required.delete(l.slice(1));
          deleted++;
        }
      }
      const store = await ChunkStore.open(storeDir);
      let n = 0;
      for await (const hash of store.list()) {
        const bytes = await store.get(hash); // verifies: throws ChunkCorruptError if torn
        expect(createHash('sha256').update(bytes!).digest('hex')).toBe(hash);
        n++;
      }
      for (const h of required) expect(await store.has(h), h).toBe(true);
      expect(store.stats().chunks).toBe(n);
      expect(await quarantinedChunks(storeDir)).toEqual([]);
      await store.close();
    }
    expect(acked).toBeGreaterThan(50);
    expect(deleted).toBeGreaterThan(0);
  });
});

describe('durable import and export', () => {
  it('imports and exports 64 MiB with fsync on', async () => {
    const store = await ChunkStore.open(join(work, 'big'));
    const size = 64 << 20;
    const cipher = createCipheriv('aes-128-ctr', Buffer.alloc(16), Buffer.alloc(16));
    const zeros = Buffer.alloc(1 << 20);
    const whole = createHash('sha256');
    async function* source(): AsyncIterable<Uint8Array> {
      for (let o = 0; o < size; o += zeros.length) {
        const b = cipher.update(zeros);
        whole.update(b);
        yield b;
      }
    }
    const t0 = performance.now();
    const r = await importImage(source(), store);
    const t1 = performance.now();
    expect(r.digest).toBe(`sha256:${whole.digest('hex')}`);
    const manifest = {
      name: 'big',
      tag: 't',
      ...r,
      creator: '',
      createdAt: 0,
      version: 1,
      placement: { sites: 'all' as const, copies: 1 },
      signature: new Uint8Array(64),
    };
    const check = createHash('sha256');
    let n = 0;
    for await (const b of exportImage(manifest, store)) {
      check.update(b);
      n += b.length;
    }
    const t2 = performance.now();
    expect(n).toBe(size);
    expect(`sha256:${check.digest('hex')}`).toBe(r.digest);
    console.log(
      `import ${(size / 1e6 / ((t1 - t0) / 1000)).toFixed(0)} MB/s (fsync), ` +
        `export ${(size / 1e6 / ((t2 - t1) / 1000)).toFixed(0)} MB/s, ${r.chunks.length} chunks`,
    );
    await store.close();
  });
});
